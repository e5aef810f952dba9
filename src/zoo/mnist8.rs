//! The ONNX Model Zoo's MNIST CNN (`mnist-8.onnx`, MIT), rebuilt natively.
//!
//! Conv 5×5 1→8 (SAME) + bias, ReLU, MaxPool 2/2, Conv 5×5 8→16 (SAME) + bias, ReLU,
//! MaxPool 3/3 (→ 16×4×4), flatten (NCHW), Linear 256→10. Input `[N, 1, 28, 28]` with pixels
//! in `[0, 1]`; output `[N, 10]` logits. It scores 98.9% on the MNIST test set.
//!
//! The repository ships the model file as `models/mnist-8.onnx` ([`MODEL_FILE`]); see
//! `models/LICENSE-mnist-8.txt`. Weight names here: `conv1.weight` `[8,1,5,5]`,
//! `conv1.bias` `[8]`, `conv2.weight` `[16,8,5,5]`, `conv2.bias` `[16]`, `fc.weight`
//! `[10,256]`, `fc.bias` `[10]`.
//!
//! [`Mnist8`] is annotated with `templates/pmnist8.toml`, which generates [`PMnist8`]: pcoders
//! at `relu1` (`[8,28,28]`) and `relu2` (`[16,14,14]`), the ReLU that ends each conv block,
//! before its pooling, as PVGG16 does.
//!
//! ```no_run
//! use predify::candle_core::{DType, Device, Module, Tensor};
//! use predify::candle_nn::{VarBuilder, VarMap};
//! use predify::zoo::mnist8::{Mnist8, PMnist8};
//! use predify::Predified;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let net = Mnist8::from_onnx("models/mnist-8.onnx")?;
//! let feedback = VarMap::new(); // or Predify checkpoints, see `zoo::feedback`
//! let pnet = PMnist8::new(net, VarBuilder::from_varmap(&feedback, DType::F32, &Device::Cpu))?;
//! let x = Tensor::zeros((4, 1, 28, 28), DType::F32, &Device::Cpu)?;
//! let (logits, state) = pnet.run(&x, 5)?; // logits of timesteps 0..5
//! # Ok(()) }
//! ```

use super::conv2d_spec;
use crate::{predify, Result};
use candle_core::{Module, Tensor};
use predify_runtime::chain::{chain_backward, chain_forward, no_segment, LayerRef, Segmented};
use predify_runtime::layers::{Conv, Flatten, Linear, MaxPool, Relu};
use predify_runtime::Predified;

/// Where the repository keeps `mnist-8.onnx`, relative to its root.
pub const MODEL_FILE: &str = "models/mnist-8.onnx";

/// The MNIST CNN; fields run in declaration order.
#[predify(spec = "templates/pmnist8.toml")]
#[derive(Debug, Clone)]
pub struct Mnist8 {
    /// Conv 5×5, 1→8, padding 2, bias.
    pub conv1: Conv,
    /// ReLU.
    pub relu1: Relu,
    /// MaxPool 2×2, stride 2: 28 → 14.
    pub pool1: MaxPool,
    /// Conv 5×5, 8→16, padding 2, bias.
    pub conv2: Conv,
    /// ReLU.
    pub relu2: Relu,
    /// MaxPool 3×3, stride 3: 14 → 4.
    pub pool2: MaxPool,
    /// Flatten `[N, 16, 4, 4]` → `[N, 256]` (channel-major, as ONNX's Reshape).
    pub flatten: Flatten,
    /// Linear 256 → 10 (ONNX: MatMul by `[256, 10]`, then Add).
    pub fc: Linear,
}

impl Mnist8 {
    /// Load the weights from `vb` under this module's names (see the module docs).
    pub fn load(vb: candle_nn::VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: Conv::load(&conv2d_spec(1, 8, 5, 1, 2, 1, true), false, vb.pp("conv1"), "conv1")?,
            relu1: Relu,
            pool1: MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, "pool1")?,
            conv2: Conv::load(&conv2d_spec(8, 16, 5, 1, 2, 1, true), false, vb.pp("conv2"), "conv2")?,
            relu2: Relu,
            pool2: MaxPool::new(2, &[3, 3], &[3, 3], &[0, 0], &[1, 1], false, "pool2")?,
            flatten: Flatten { start_dim: 1 },
            fc: Linear::load(256, 10, true, vb.pp("fc"), "fc")?,
        })
    }

    /// Read `mnist-8.onnx` and build the network from its initializers (on the CPU).
    #[cfg(feature = "onnx")]
    pub fn from_onnx(path: impl AsRef<std::path::Path>) -> std::result::Result<Self, crate::onnx::Error> {
        Self::from_onnx_model(&crate::onnx::OnnxModel::read(path)?)
    }

    /// Build the network from a decoded `mnist-8.onnx` (see [`onnx_tensors`]); every weight
    /// is checked (shape, float type, finite) before the network exists, errors name the file.
    #[cfg(feature = "onnx")]
    pub fn from_onnx_model(model: &crate::onnx::OnnxModel) -> std::result::Result<Self, crate::onnx::Error> {
        let tensors = onnx_tensors(model)?;
        let vb = candle_nn::VarBuilder::from_tensors(tensors, candle_core::DType::F32, &candle_core::Device::Cpu);
        // The layers reject non-finite weights (naming them) while loading.
        Self::load(vb).map_err(|e| model.graph_error(format!("building the network: {e}")))
    }
}

impl Module for Mnist8 {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let h = Module::forward(&self.conv1, xs)?;
        let h = Module::forward(&self.pool1, &self.relu1.forward(&h)?)?;
        let h = Module::forward(&self.conv2, &h)?;
        let h = Module::forward(&self.pool2, &self.relu2.forward(&h)?)?;
        Module::forward(&self.fc, &self.flatten.forward(&h)?)
    }
}

impl PMnist8 {
    /// The backbone layers of segment `k` (see [`Segmented`]).
    fn segment_layers(&self, k: usize) -> Result<Vec<LayerRef<'_>>> {
        let b = self.backbone();
        Ok(match k {
            0 => vec![LayerRef::Conv(&b.conv1), LayerRef::Relu],
            1 => vec![LayerRef::MaxPool(&b.pool1), LayerRef::Conv(&b.conv2), LayerRef::Relu],
            2 => vec![LayerRef::MaxPool(&b.pool2), LayerRef::Flatten(1), LayerRef::Linear(&b.fc)],
            _ => return no_segment(k, self.pnet().len()),
        })
    }
}

/// The backbone cut at `relu1` and `relu2`: what hyperparameter tuning differentiates.
impl Segmented for PMnist8 {
    fn segment_forward(&self, k: usize, x: &Tensor) -> Result<Tensor> {
        chain_forward(&self.segment_layers(k)?, x)
    }
    fn segment_backward(&self, k: usize, x: &Tensor, g: &Tensor) -> Result<Tensor> {
        chain_backward(&self.segment_layers(k)?, x, g)
    }
}

/// Map `mnist-8.onnx`'s graph onto [`Mnist8`]'s weight names, checking every node on the way:
/// the data path must be Conv, Add, Relu, MaxPool, Conv, Add, Relu, MaxPool, Reshape, MatMul,
/// Add, with the kernel sizes, paddings, strides and shapes of the module docs. Nodes whose
/// inputs are all initializers (the model reshapes its `[16,4,4,10]` weight to `[256,10]`)
/// are evaluated here.
#[cfg(feature = "onnx")]
pub fn onnx_tensors(model: &crate::onnx::OnnxModel) -> std::result::Result<std::collections::HashMap<String, Tensor>, crate::onnx::Error> {
    use crate::onnx::{attr_int, attr_ints, attr_string};
    use std::collections::HashMap;

    let fail = |m: String| model.graph_error(m);
    let mut consts: HashMap<String, Tensor> = model.initializers()?;
    let cerr = |e: candle_core::Error| model.graph_error(e.to_string());

    // Fold constant nodes (Reshape of an initializer) and keep the data path.
    let mut path = Vec::new();
    for node in model.nodes() {
        if !node.input.is_empty() && node.input.iter().all(|i| consts.contains_key(i)) {
            if node.op_type != "Reshape" || node.input.len() != 2 || node.output.len() != 1 {
                return Err(fail(format!("unexpected constant node {} ({})", node.name, node.op_type)));
            }
            let (Some(x), Some(shape)) = (consts.get(&node.input[0]), consts.get(&node.input[1])) else {
                return Err(fail(format!("{}: inputs of the constant Reshape are missing", node.name)));
            };
            let shape = shape.to_vec1::<i64>().map_err(cerr)?;
            let dims = reshape_dims(x.elem_count(), &shape).ok_or_else(|| fail(format!("{}: cannot reshape {:?} to {shape:?}", node.name, x.dims())))?;
            let y = x.reshape(dims).map_err(cerr)?;
            consts.insert(node.output[0].clone(), y);
        } else {
            path.push(node);
        }
    }
    let ops: Vec<&str> = path.iter().map(|n| n.op_type.as_str()).collect();
    let want = ["Conv", "Add", "Relu", "MaxPool", "Conv", "Add", "Relu", "MaxPool", "Reshape", "MatMul", "Add"];
    if ops != want {
        return Err(fail(format!("expected the mnist-8 graph {want:?}, found {ops:?}")));
    }
    // Each data-path node must consume the previous node's output.
    let mut current = model.graph().input.first().map(|i| i.name.clone()).unwrap_or_default();
    let mut other_inputs = Vec::new();
    for n in &path {
        let Some(pos) = n.input.iter().position(|i| *i == current) else {
            return Err(fail(format!("node {} ({}) does not consume `{current}`", n.name, n.op_type)));
        };
        let others: Vec<&String> = n.input.iter().enumerate().filter(|&(k, _)| k != pos).map(|(_, s)| s).collect();
        for o in &others {
            if !consts.contains_key(*o) {
                return Err(fail(format!("node {}: input `{o}` is not a constant", n.name)));
            }
        }
        other_inputs.push(others.into_iter().cloned().collect::<Vec<_>>());
        current = n.output.first().cloned().unwrap_or_default();
    }
    // The `j`-th constant input of data-path node `k`; a node without it is an error.
    let constant = |k: usize, j: usize, what: &str| -> std::result::Result<&Tensor, crate::onnx::Error> {
        other_inputs
            .get(k)
            .and_then(|o| o.get(j))
            .and_then(|name| consts.get(name))
            .ok_or_else(|| fail(format!("node {} ({}): no {what} input", path[k].name, path[k].op_type)))
    };
    // Weights must be floats (an integer tensor would be converted silently).
    let float = |t: &Tensor, what: &str| -> std::result::Result<(), crate::onnx::Error> {
        if t.dtype().is_float() {
            Ok(())
        } else {
            Err(fail(format!("{what}: expected float values, found {:?}", t.dtype())))
        }
    };

    let mut out = HashMap::new();
    for (k, layer, cin, cout) in [(0usize, "conv1", 1usize, 8usize), (4, "conv2", 8, 16)] {
        let conv = path[k];
        let ks = attr_ints(conv, "kernel_shape").unwrap_or_else(|| vec![5, 5]);
        let strides = attr_ints(conv, "strides").unwrap_or_else(|| vec![1, 1]);
        let dil = attr_ints(conv, "dilations").unwrap_or_else(|| vec![1, 1]);
        let group = attr_int(conv, "group").unwrap_or(1);
        let same = matches!(attr_string(conv, "auto_pad").as_deref(), Some("SAME_UPPER" | "SAME_LOWER"));
        let pads = attr_ints(conv, "pads").unwrap_or_else(|| vec![0; 4]);
        if ks != [5, 5] || strides != [1, 1] || dil != [1, 1] || group != 1 || !(same || pads == [2, 2, 2, 2]) {
            return Err(fail(format!(
                "{layer} ({}): expected a 5×5 SAME convolution, stride 1, found kernel {ks:?} strides {strides:?} dilations {dil:?} group {group} pads {pads:?}",
                conv.name
            )));
        }
        let w = constant(k, 0, "weight")?;
        float(w, &format!("{layer}.weight"))?;
        if w.dims() != [cout, cin, 5, 5] {
            return Err(fail(format!("{layer}.weight: expected [{cout}, {cin}, 5, 5], found {:?}", w.dims())));
        }
        let b = constant(k + 1, 0, "bias")?;
        float(b, &format!("{layer}.bias"))?;
        if b.elem_count() != cout {
            return Err(fail(format!("{layer}.bias: expected {cout} values, found {:?}", b.dims())));
        }
        out.insert(format!("{layer}.weight"), w.clone());
        out.insert(format!("{layer}.bias"), b.flatten_all().map_err(cerr)?);
    }
    for (k, pool, size) in [(3usize, "pool1", 2i64), (7, "pool2", 3)] {
        let node = path[k];
        let ks = attr_ints(node, "kernel_shape").unwrap_or_default();
        let strides = attr_ints(node, "strides").unwrap_or_else(|| vec![1, 1]);
        let pads = attr_ints(node, "pads").unwrap_or_else(|| vec![0; 4]);
        let auto_pad = attr_string(node, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        if ks != [size, size] || strides != [size, size] || pads.iter().any(|&p| p != 0) || !(auto_pad == "NOTSET" || auto_pad == "VALID") {
            return Err(fail(format!(
                "{pool} ({}): expected MaxPool {size}×{size} stride {size} without padding, found kernel {ks:?} strides {strides:?} pads {pads:?} auto_pad {auto_pad}",
                node.name
            )));
        }
    }
    let shape = constant(8, 0, "shape")?.to_vec1::<i64>().map_err(cerr)?;
    if shape.get(1..).and_then(|rest| reshape_dims(256, rest)).map(|d| d == [256]) != Some(true) {
        return Err(fail(format!("flatten ({}): expected a reshape to [N, 256], found shape {shape:?}", path[8].name)));
    }
    let w = constant(9, 0, "weight")?;
    float(w, "fc.weight")?;
    if w.dims() != [256, 10] {
        return Err(fail(format!("fc.weight: expected MatMul by [256, 10], found {:?}", w.dims())));
    }
    let b = constant(10, 0, "bias")?;
    float(b, "fc.bias")?;
    if b.elem_count() != 10 {
        return Err(fail(format!("fc.bias: expected 10 values, found {:?}", b.dims())));
    }
    out.insert("fc.weight".into(), w.t().and_then(|t| t.contiguous()).map_err(cerr)?);
    out.insert("fc.bias".into(), b.flatten_all().map_err(cerr)?);
    Ok(out)
}

/// ONNX Reshape semantics for a constant: `-1` infers one dimension (`0`, "copy", is not
/// meaningful for a constant here and is rejected). Checked arithmetic: the shape comes from
/// the file.
#[cfg(feature = "onnx")]
fn reshape_dims(numel: usize, shape: &[i64]) -> Option<Vec<usize>> {
    let inferred = shape.iter().filter(|&&d| d == -1).count();
    if shape.iter().any(|&d| d == 0 || d < -1) || inferred > 1 {
        return None;
    }
    let known = shape
        .iter()
        .filter(|&&d| d > 0)
        .try_fold(1usize, |a, &d| a.checked_mul(usize::try_from(d).ok()?))?;
    let dims: Vec<usize> = shape
        .iter()
        .map(|&d| if d == -1 { numel / known } else { d as usize })
        .collect();
    (dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) == Some(numel)).then_some(dims)
}
