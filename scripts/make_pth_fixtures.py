#!/usr/bin/env python3
"""Write the small PyTorch checkpoints under tests/fixtures/ that tests/zoo_feedback.rs reads.

They have the layout of Predify's published feedback checkpoints, one file per pcoder:
    torch.save({'pcoderweights': pnet.pcoder{i}.state_dict(),
                'optimizer': optimizer.state_dict(), 'epoch': epoch},
               f'pnet_pretrained_pc{i}_{epoch:03d}.pth')
for the two pcoders of templates/pmnist8.toml (PMnist8):
    pcoder1.pmodule = ConvTranspose2d(8, 1, kernel_size=5, padding=2)          -> pmodule.weight, pmodule.bias
    pcoder2.pmodule = Sequential(ConvTranspose2d(16, 8, 10, 2, 4), ReLU())     -> pmodule.0.weight, pmodule.0.bias
plus the PCoderN buffer C_sqrt (5.0 in pc1, Predify's "not estimated" -1 in pc2) and SGD
momentum buffers in pc1's optimizer state.

Torch itself is not needed: this writes torch.save's zip format directly (the format PyTorch has
used since 1.6): archive/data.pkl is a protocol-2 pickle in which every tensor is
torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())
and every storage a persistent id ('storage', torch.FloatStorage, key, 'cpu', numel) whose
little-endian bytes are archive/data/<key>; archive/version and archive/byteorder as torch writes
them. Stand-in `torch` modules make pickle emit the same GLOBAL opcodes torch would.

Tensor values are exact in float32: element k of the t-th tensor is ((k * 37 + t * 11) % 101 - 50) / 64.
Run from the repository root: python3 scripts/make_pth_fixtures.py
"""
import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile

# Stand-ins for the torch names a checkpoint's pickle refers to.
torch_mod = types.ModuleType("torch")
utils_mod = types.ModuleType("torch._utils")


class FloatStorage:  # pickled by reference as GLOBAL 'torch FloatStorage'
    pass


FloatStorage.__module__ = "torch"
torch_mod.FloatStorage = FloatStorage


def _rebuild_tensor_v2(*args):  # pickled by reference as GLOBAL 'torch._utils _rebuild_tensor_v2'
    raise RuntimeError("only for pickling")


_rebuild_tensor_v2.__module__ = "torch._utils"
utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2
torch_mod._utils = utils_mod
sys.modules["torch"] = torch_mod
sys.modules["torch._utils"] = utils_mod


class Storage:
    def __init__(self, key, values):
        self.key = key
        self.values = values


class Tensor:
    def __init__(self, storage, shape):
        self.storage = storage
        self.shape = tuple(shape)

    def __reduce__(self):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (_rebuild_tensor_v2, (self.storage, 0, self.shape, tuple(stride), False, collections.OrderedDict()))


class Checkpoint:
    def __init__(self):
        self.storages = []

    def tensor(self, shape, values=None):
        n = 1
        for d in shape:
            n *= d
        t = len(self.storages)
        if values is None:
            values = [((k * 37 + t * 11) % 101 - 50) / 64 for k in range(n)]
        s = Storage(str(t), values)
        self.storages.append(s)
        return Tensor(s, shape)

    def save(self, obj, path):
        buf = io.BytesIO()

        class P(pickle.Pickler):
            def persistent_id(self, o):
                if isinstance(o, Storage):
                    return ("storage", FloatStorage, o.key, "cpu", len(o.values))
                return None

        P(buf, protocol=2).dump(obj)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", buf.getvalue())
            z.writestr("archive/byteorder", "little")
            for s in self.storages:
                z.writestr(f"archive/data/{s.key}", struct.pack(f"<{len(s.values)}f", *s.values))
            z.writestr("archive/version", "3\n")


def state_dict(items):
    sd = collections.OrderedDict(items)
    # torch's state_dict carries per-module metadata as an attribute (pickled through BUILD).
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("pmodule", {"version": 1})])
    return sd


def pcoder_checkpoint(path, params, c_sqrt, epoch, momentum):
    ck = Checkpoint()
    tensors = [(name, ck.tensor(shape)) for name, shape in params]
    tensors.append(("C_sqrt", ck.tensor((), [c_sqrt])))
    # SGD momentum buffers: more tensors in the file that are not the pcoder's.
    state = {i: {"momentum_buffer": ck.tensor(shape)} for i, (_, shape) in enumerate(params)} if momentum else {}
    optimizer = {
        "state": state,
        "param_groups": [{"lr": 0.01, "momentum": 0.9, "dampening": 0, "weight_decay": 5e-4,
                          "nesterov": False, "params": list(range(len(params)))}],
    }
    ck.save({"pcoderweights": state_dict(tensors), "optimizer": optimizer, "epoch": epoch}, path)


def main():
    out = os.path.join("tests", "fixtures")
    os.makedirs(out, exist_ok=True)
    pcoder_checkpoint(os.path.join(out, "pmnist8_pc1_004.pth"),
                      [("pmodule.weight", (8, 1, 5, 5)), ("pmodule.bias", (1,))], 5.0, 4, True)
    pcoder_checkpoint(os.path.join(out, "pmnist8_pc2_004.pth"),
                      [("pmodule.0.weight", (16, 8, 10, 10)), ("pmodule.0.bias", (8,))], -1.0, 4, False)


if __name__ == "__main__":
    main()
