//! Hostile files: every reader (IDX plain and gzip, ONNX, Predify's `.pth` checkpoints,
//! safetensors) answers crafted and mutated inputs with an error naming the file or with a valid
//! result — never a panic, an abort, unbounded memory or a long wait — and accepts nothing
//! corrupt (non-finite weights, impossible sizes, integer weights, a bad √C).
//!
//! The inputs are built here, small: IDX files with `idx::to_bytes`, `.pth` checkpoints with a
//! little pickle and zip writer (the layout `scripts/make_pth_fixtures.py` writes, without
//! Python), ONNX models by editing `models/mnist-8.onnx`'s protobuf.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use predify::data::idx::{self, IdxArray};
use predify::onnx::{proto, OnnxModel};
use predify::zoo::feedback;
use predify::zoo::mnist8::{self, Mnist8, PMnist8};
use predify::Predified;
use prost::Message;
use proptest::prelude::*;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Each case must finish well within this.
const CASE_TIME: Duration = Duration::from_secs(1);

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("predify-hostile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The process's peak resident memory in bytes (Linux), to show a bomb was not unpacked.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

fn assert_peak_below(limit: u64) {
    if let Some(peak) = peak_rss() {
        assert!(peak < limit, "peak memory {peak} bytes");
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Mutations shared by the property tests.

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    /// Overwrite 4 bytes with a little- or big-endian u32 (sizes and counts live in such fields).
    Word(usize, u32, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Mutation::Flip(at, x)),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        1 => (any::<usize>(), 1usize..32).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), prop_oneof![Just(0u32), Just(u32::MAX), Just(0x7FFF_FFFF), Just(0xFFFF), any::<u32>()], any::<bool>())
            .prop_map(|(at, v, le)| Mutation::Word(at, v, le)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..4)
}

fn mutate(base: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut b = base.to_vec();
    for m in ms {
        let len = b.len().max(1);
        match m {
            Mutation::Flip(at, x) => {
                if let Some(byte) = b.get_mut(at % len) {
                    *byte ^= x;
                }
            }
            Mutation::Insert(at, bytes) => {
                let at = at % (b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
            Mutation::Truncate(at) => b.truncate(at % len),
            Mutation::Word(at, v, le) => {
                let at = at % len;
                let word = if *le { v.to_le_bytes() } else { v.to_be_bytes() };
                for (k, w) in word.iter().enumerate() {
                    if let Some(byte) = b.get_mut(at + k) {
                        *byte = *w;
                    }
                }
            }
        }
    }
    b
}

/// Run `f`, which must not panic, within [`CASE_TIME`].
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < CASE_TIME, "{what}: took {:?}", start.elapsed());
    out
}

// ---------------------------------------------------------------------------------------------
// IDX

fn small_images() -> IdxArray {
    IdxArray::new(vec![2, 3, 4], (0..24).map(|i| i as u8 * 7).collect()).unwrap()
}

/// A read IDX array is consistent: its data fills its dims.
fn check_idx(r: predify::data::Result<IdxArray>, path: &Path) {
    match r {
        Ok(a) => assert_eq!(a.data().len(), a.dims().iter().product::<usize>()),
        Err(e) => {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(e.to_string().contains(name), "error does not name the file: {e}");
        }
    }
}

#[test]
fn idx_gzip_bomb_is_refused_after_what_the_header_allows() {
    let d = TempDir::new("idx-bomb");
    // A valid header for 10 images of 28×28, then 4 GiB of zeros: 4096 gzip members of 1 MiB
    // each, ~4 MB on disk.
    let mut header = vec![0u8, 0, 8, 3];
    for dim in [10u32, 28, 28] {
        header.extend_from_slice(&dim.to_be_bytes());
    }
    let mut file = gzip(&header);
    let member = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..4096 {
        file.extend_from_slice(&member);
    }
    assert!(file.len() < 8 << 20);
    let p = d.write("bomb-idx3-ubyte.gz", &file);
    let e = timed("gzip bomb", || idx::read_images(&p)).unwrap_err().to_string();
    assert!(e.contains("bomb-idx3-ubyte.gz") && e.contains("unexpected bytes after the 7840 data bytes"), "{e}");
    // The same bytes through the whole-file reader: capped, not unpacked.
    assert_peak_below(1 << 30);

    // A header claiming more than the reader accepts: refused before any data is read.
    let mut huge = vec![0u8, 0, 8, 3];
    for dim in [65535u32, 65535, 65535] {
        huge.extend_from_slice(&dim.to_be_bytes());
    }
    let p = d.write("huge.gz", &gzip(&huge));
    let e = timed("huge header", || idx::read(&p)).unwrap_err().to_string();
    assert!(e.contains("huge.gz") && e.contains("more than the 2147483648"), "{e}");
    // Plain: a 16-byte file claiming 2^31 data bytes and more.
    let p = d.write("huge", &huge);
    let e = timed("huge plain header", || idx::read(&p)).unwrap_err().to_string();
    assert!(e.contains("huge") && e.contains("more than"), "{e}");
    // Dimensions whose product overflows.
    let mut overflow = vec![0u8, 0, 8, 8];
    for _ in 0..8 {
        overflow.extend_from_slice(&u32::MAX.to_be_bytes());
    }
    let p = d.write("overflow", &overflow);
    let e = idx::read(&p).unwrap_err().to_string();
    assert!(e.contains("overflow"), "{e}");
    // A plain file shorter than its claim: reported from its length, nothing read.
    let mut short = vec![0u8, 0, 8, 1];
    short.extend_from_slice(&(1u32 << 30).to_be_bytes());
    let p = d.write("short", &short);
    let e = idx::read(&p).unwrap_err().to_string();
    assert!(e.contains("short") && e.contains("truncated") && e.contains("the file has 0"), "{e}");
    // The in-memory parser and the whole-file reader have the same limits.
    assert!(idx::parse(&huge, Path::new("mem")).unwrap_err().to_string().contains("more than"));
    assert_peak_below(1 << 30);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256), gz in any::<bool>()) {
        let d = TempDir::new("idx-any");
        let bytes = if gz { gzip(&bytes) } else { bytes };
        let p = d.write("any-idx", &bytes);
        check_idx(timed("idx", || idx::read(&p)), &p);
    }

    #[test]
    fn idx_mutated(ms in mutations(), mode in 0u8..3) {
        let d = TempDir::new("idx-mut");
        let valid = idx::to_bytes(&small_images());
        // Mutate the plain bytes, the bytes before gzipping, or the gzip stream itself.
        let bytes = match mode {
            0 => mutate(&valid, &ms),
            1 => gzip(&mutate(&valid, &ms)),
            _ => mutate(&gzip(&valid), &ms),
        };
        let p = d.write("mut-idx", &bytes);
        check_idx(timed("idx", || idx::read(&p)), &p);
        check_idx(timed("idx images", || idx::read_images(&p)), &p);
    }
}

// ---------------------------------------------------------------------------------------------
// ONNX

fn mnist8_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(mnist8::MODEL_FILE)
}

fn mnist8_proto() -> proto::ModelProto {
    proto::ModelProto::decode(std::fs::read(mnist8_path()).unwrap().as_slice()).unwrap()
}

fn graph(m: &mut proto::ModelProto) -> &mut proto::GraphProto {
    m.graph.as_mut().unwrap()
}

fn initializer<'m>(m: &'m mut proto::ModelProto, name: &str) -> &'m mut proto::TensorProto {
    graph(m).initializer.iter_mut().find(|t| t.name == name).unwrap()
}

/// The node index of the `k`-th node with op `op`.
fn node_of(m: &mut proto::ModelProto, op: &str, k: usize) -> usize {
    graph(m).node.iter().enumerate().filter(|(_, n)| n.op_type == op).nth(k).unwrap().0
}

/// The name of the shape constant of the Reshape of a weight (`constant`) or of the flatten.
fn reshape_shape(m: &mut proto::ModelProto, constant: bool) -> String {
    let g = graph(m);
    let inits: Vec<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    let node = g.node.iter().find(|n| n.op_type == "Reshape" && inits.contains(&n.input[0]) == constant).unwrap();
    node.input[1].clone()
}

/// Read the edited model through the file reader and the mnist-8 builder; the error, which
/// must name the file.
fn onnx_error(d: &TempDir, name: &str, m: &proto::ModelProto) -> String {
    let p = d.write(name, &m.encode_to_vec());
    let r = timed(name, || OnnxModel::read(&p).and_then(|model| Mnist8::from_onnx_model(&model)));
    let e = r.err().unwrap_or_else(|| panic!("{name}: accepted")).to_string();
    assert!(e.contains(name), "{name}: error does not name the file: {e}");
    e
}

#[test]
fn onnx_crafted_graphs_are_errors() {
    let d = TempDir::new("onnx");
    // The unedited model is fine.
    Mnist8::from_onnx(mnist8_path()).unwrap();

    // A Conv node without its weight (and bias) input.
    let mut m = mnist8_proto();
    let k = node_of(&mut m, "Conv", 0);
    graph(&mut m).node[k].input.truncate(1);
    let e = onnx_error(&d, "no-weight.onnx", &m);
    assert!(e.contains("no weight input"), "{e}");

    // An empty shape constant for the flatten.
    let mut m = mnist8_proto();
    let shape_name = reshape_shape(&mut m, false);
    let t = initializer(&mut m, &shape_name);
    (t.dims, t.int64_data, t.raw_data) = (vec![0], vec![], vec![]);
    let e = onnx_error(&d, "empty-shape.onnx", &m);
    assert!(e.contains("flatten"), "{e}");

    // Initializer dimensions whose product overflows, with and without raw data.
    let mut m = mnist8_proto();
    let name = graph(&mut m).initializer[0].name.clone();
    initializer(&mut m, &name).dims = vec![1 << 32, 1 << 32, 2];
    let e = onnx_error(&d, "dims-overflow.onnx", &m);
    assert!(e.contains("overflow"), "{e}");
    let mut m = mnist8_proto();
    let t = initializer(&mut m, &name);
    (t.dims, t.data_type, t.raw_data, t.float_data) = (vec![1 << 62], 1, vec![0; 8], vec![]);
    let e = onnx_error(&d, "raw-overflow.onnx", &m);
    assert!(e.contains("overflow"), "{e}");

    // A constant Reshape to [2^40, 2^40].
    let mut m = mnist8_proto();
    let shape_name = reshape_shape(&mut m, true);
    let t = initializer(&mut m, &shape_name);
    (t.dims, t.int64_data, t.raw_data) = (vec![2], vec![1 << 40, 1 << 40], vec![]);
    let e = onnx_error(&d, "reshape-overflow.onnx", &m);
    assert!(e.contains("cannot reshape"), "{e}");

    // NaN and ±inf in backbone weights, integer weights.
    for (tag, value) in [("nan", f32::NAN), ("inf", f32::INFINITY), ("neginf", f32::NEG_INFINITY)] {
        let mut m = mnist8_proto();
        let k = node_of(&mut m, "Conv", 1);
        let w = graph(&mut m).node[k].input[1].clone();
        let t = initializer(&mut m, &w);
        if t.raw_data.is_empty() {
            t.float_data[5] = value;
        } else {
            t.raw_data[20..24].copy_from_slice(&value.to_le_bytes());
        }
        let e = onnx_error(&d, &format!("{tag}.onnx"), &m);
        assert!(e.contains("conv2.weight") && e.contains("NaN or infinite"), "{e}");
    }
    let mut m = mnist8_proto();
    let k = node_of(&mut m, "Conv", 0);
    let w = graph(&mut m).node[k].input[1].clone();
    let t = initializer(&mut m, &w);
    (t.data_type, t.int64_data, t.raw_data, t.float_data) = (7, vec![1; 200], vec![], vec![]);
    let e = onnx_error(&d, "int-weights.onnx", &m);
    assert!(e.contains("conv1.weight") && e.contains("float"), "{e}");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn onnx_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let r = timed("onnx", || OnnxModel::from_bytes(&bytes, "any.onnx").and_then(|m| Mnist8::from_onnx_model(&m)));
        if let Err(e) = r {
            prop_assert!(e.to_string().contains("any.onnx"), "{}", e);
        }
    }

    #[test]
    fn onnx_mutated(ms in mutations()) {
        static VALID: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let valid = VALID.get_or_init(|| std::fs::read(mnist8_path()).unwrap());
        let bytes = mutate(valid, &ms);
        let r = timed("onnx", || OnnxModel::from_bytes(&bytes, "mut.onnx").and_then(|m| Mnist8::from_onnx_model(&m)));
        match r {
            // A network that loads has finite weights and runs.
            Ok(net) => {
                let x = Tensor::zeros((1, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
                let y = candle_core::Module::forward(&net, &x).unwrap();
                prop_assert_eq!(y.dims(), &[1, 10]);
            }
            Err(e) => prop_assert!(e.to_string().contains("mut.onnx"), "{}", e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PyTorch checkpoints: a pickle writer and a zip writer, enough for torch.save's layout.

/// Protocol-2 pickle opcodes, as `torch.save` emits them for a state dict.
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.op(s.as_bytes())
    }
    fn int(&mut self, v: i64) -> &mut Self {
        if let Ok(v) = i32::try_from(v) {
            self.0.push(b'J');
            self.op(&v.to_le_bytes())
        } else {
            self.op(&[0x8a, 8]).op(&v.to_le_bytes())
        }
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(b"c").op(module.as_bytes()).op(b"\n").op(name.as_bytes()).op(b"\n")
    }
    fn ints(&mut self, v: &[i64]) -> &mut Self {
        self.op(b"(");
        for &x in v {
            self.int(x);
        }
        self.op(b"t")
    }
    /// `torch._utils._rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict())`.
    fn tensor(&mut self, storage_class: &str, key: &str, storage_numel: i64, shape: &[i64]) -> &mut Self {
        let mut stride = vec![1i64; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1].wrapping_mul(shape[i + 1]);
        }
        self.global("torch._utils", "_rebuild_tensor_v2").op(b"(");
        self.op(b"(").str("storage").global("torch", storage_class).str(key).str("cpu").int(storage_numel).op(b"tQ");
        self.int(0).ints(shape).ints(&stride).op(b"\x89");
        self.global("collections", "OrderedDict").op(b")R");
        self.op(b"tR")
    }
}

/// One tensor of a checkpoint: name, storage class, shape, and its storage's bytes.
struct PthTensor {
    name: String,
    class: &'static str,
    shape: Vec<i64>,
    numel: i64,
    data: Vec<u8>,
}

fn f32_tensor(name: &str, shape: &[i64], values: &[f32]) -> PthTensor {
    PthTensor {
        name: name.into(),
        class: "FloatStorage",
        shape: shape.to_vec(),
        numel: values.len() as i64,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// The pickle of `{'pcoderweights': OrderedDict(tensors), 'epoch': 4}` (or of the bare state
/// dict when `wrap` is false).
fn state_dict_pickle(tensors: &[PthTensor], wrap: bool) -> Vec<u8> {
    let mut p = Pickle::default();
    p.op(b"\x80\x02");
    if wrap {
        p.op(b"}q\x00(").str("pcoderweights");
    }
    p.global("collections", "OrderedDict").op(b")Rq\x01(");
    for (k, t) in tensors.iter().enumerate() {
        p.str(&t.name).tensor(t.class, &k.to_string(), t.numel, &t.shape);
    }
    p.op(b"u");
    if wrap {
        p.str("epoch").int(4).op(b"u");
    }
    p.op(b".");
    p.0
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// A stored (uncompressed) zip of `entries`, optionally with zip64 records as PyTorch's writer
/// may emit them; `method` is written into every header (0 = stored).
fn zip(entries: &[(String, Vec<u8>)], zip64: bool, method: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let u16le = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    for (name, data) in entries {
        let offset = out.len() as u64;
        let crc = crc32(data);
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20);
        u16le(&mut out, 0);
        u16le(&mut out, method);
        u32le(&mut out, 0);
        u32le(&mut out, crc);
        u32le(&mut out, data.len() as u32);
        u32le(&mut out, data.len() as u32);
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, 0);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, 45);
        u16le(&mut central, 20);
        u16le(&mut central, 0);
        u16le(&mut central, method);
        u32le(&mut central, 0);
        u32le(&mut central, crc);
        let big = if zip64 { u32::MAX } else { 0 };
        u32le(&mut central, big.max(data.len() as u32));
        u32le(&mut central, big.max(data.len() as u32));
        u16le(&mut central, name.len() as u16);
        u16le(&mut central, if zip64 { 28 } else { 0 });
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u32le(&mut central, 0);
        u32le(&mut central, big.max(offset as u32));
        central.extend_from_slice(name.as_bytes());
        if zip64 {
            u16le(&mut central, 1);
            u16le(&mut central, 24);
            for v in [data.len() as u64, data.len() as u64, offset] {
                central.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    let dir_offset = out.len() as u64;
    out.extend_from_slice(&central);
    let n = entries.len() as u64;
    if zip64 {
        let at = out.len() as u64;
        u32le(&mut out, 0x0606_4b50);
        out.extend_from_slice(&44u64.to_le_bytes());
        u16le(&mut out, 45);
        u16le(&mut out, 45);
        u32le(&mut out, 0);
        u32le(&mut out, 0);
        for v in [n, n, central.len() as u64, dir_offset] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        u32le(&mut out, 0x0706_4b50);
        u32le(&mut out, 0);
        out.extend_from_slice(&at.to_le_bytes());
        u32le(&mut out, 1);
    }
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    let (count, size, offset) = if zip64 { (u16::MAX, u32::MAX, u32::MAX) } else { (n as u16, central.len() as u32, dir_offset as u32) };
    u16le(&mut out, count);
    u16le(&mut out, count);
    u32le(&mut out, size);
    u32le(&mut out, offset);
    u16le(&mut out, 0);
    out
}

/// A torch.save checkpoint holding `pickle` and the tensors' storages.
fn pth_from(pickle: Vec<u8>, tensors: &[PthTensor], zip64: bool) -> Vec<u8> {
    let mut entries = vec![("archive/data.pkl".to_string(), pickle)];
    for (k, t) in tensors.iter().enumerate() {
        entries.push((format!("archive/data/{k}"), t.data.clone()));
    }
    entries.push(("archive/version".to_string(), b"3\n".to_vec()));
    zip(&entries, zip64, 0)
}

fn pth(tensors: &[PthTensor]) -> Vec<u8> {
    pth_from(state_dict_pickle(tensors, true), tensors, false)
}

/// PMnist8's pcoder 1 (`ConvTranspose2d(8, 1, 5, padding=2)`), with √C 5.
fn pcoder1() -> Vec<PthTensor> {
    vec![
        f32_tensor("pmodule.weight", &[8, 1, 5, 5], &(0..200).map(|i| (i as f32 - 100.0) / 64.0).collect::<Vec<_>>()),
        f32_tensor("pmodule.bias", &[1], &[0.25]),
        f32_tensor("C_sqrt", &[], &[5.0]),
    ]
}

fn random_backbone() -> Mnist8 {
    let vm = VarMap::new();
    Mnist8::load(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap()
}

/// A loaded pcoder map is what the runtime may use: f32, finite, √C positive.
fn check_feedback(r: predify::Result<HashMap<String, Tensor>>, path: &Path) {
    match r {
        Ok(map) => {
            for (name, t) in &map {
                assert_eq!(t.dtype(), DType::F32, "{name}");
                let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                assert!(v.iter().all(|x| x.is_finite()), "{name}: {v:?}");
                if name.ends_with("C_sqrt") {
                    assert!(v.len() == 1 && v[0] > 0.0, "{name}: {v:?}");
                }
            }
        }
        Err(e) => {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(e.to_string().contains(name), "error does not name the file: {e}");
        }
    }
}

fn pcoder_error(d: &TempDir, name: &str, bytes: &[u8]) -> String {
    let p = d.write(name, bytes);
    let e = timed(name, || feedback::load_pcoder_checkpoint(&p, 1)).err().unwrap_or_else(|| panic!("{name}: accepted")).to_string();
    assert!(e.contains(name), "{name}: error does not name the file: {e}");
    e
}

#[test]
fn pth_written_here_loads_like_predify_checkpoints() {
    let d = TempDir::new("pth-ok");
    for zip64 in [false, true] {
        let p = d.write("ok_pc1.pth", &pth_from(state_dict_pickle(&pcoder1(), true), &pcoder1(), zip64));
        let m = feedback::load_pcoder_checkpoint(&p, 1).unwrap();
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort();
        assert_eq!(keys, ["pcoder1.C_sqrt", "pcoder1.pmodule.bias", "pcoder1.pmodule.weight"]);
        assert_eq!(m["pcoder1.pmodule.weight"].dims(), &[8, 1, 5, 5]);
        assert_eq!(m["pcoder1.C_sqrt"].to_scalar::<f32>().unwrap(), 5.0);
    }
    // A bare state dict.
    let p = d.write("bare_pc1.pth", &pth_from(state_dict_pickle(&pcoder1(), false), &pcoder1(), false));
    assert_eq!(feedback::load_pcoder_checkpoint(&p, 1).unwrap().len(), 3);
}

#[test]
fn pth_crafted_checkpoints_are_errors() {
    let d = TempDir::new("pth-bad");
    // A tensor claiming 65536 × 65536 × 1024 floats (16 TiB) from a 4-byte storage.
    let mut t = pcoder1();
    t[0].shape = vec![65536, 65536, 1024];
    let e = pcoder_error(&d, "huge.pth", &pth(&t));
    assert!(e.contains("pmodule.weight") && e.contains("holds 800 bytes"), "{e}");
    // The storage claiming to be that large, too.
    t[0].numel = 65536 * 65536 * 1024;
    let e = pcoder_error(&d, "huge2.pth", &pth(&t));
    assert!(e.contains("pmodule.weight"), "{e}");
    // Dimensions whose product overflows.
    let mut t = pcoder1();
    t[0].shape = vec![1 << 40, 1 << 40, 1 << 40];
    pcoder_error(&d, "overflow.pth", &pth(&t));
    assert_peak_below(1 << 30);

    // _rebuild_tensor_v2 with too few arguments: Candle's reader would index past them.
    let mut p = Pickle::default();
    p.op(b"\x80\x02}(").str("pmodule.weight").global("torch._utils", "_rebuild_tensor_v2").op(b"(").int(0).op(b"tRu.");
    let e = pcoder_error(&d, "few-args.pth", &pth_from(p.0, &pcoder1(), false));
    assert!(e.contains("few-args.pth"), "{e}");
    let mut p = Pickle::default();
    p.op(b"\x80\x02}(").str("w").global("torch._tensor", "_rebuild_from_type_v2").op(b")Ru.");
    pcoder_error(&d, "few-args2.pth", &pth_from(p.0, &pcoder1(), false));

    // Integer weights, non-finite weights, bad √C: named.
    let mut t = pcoder1();
    t[1] = PthTensor { name: "pmodule.bias".into(), class: "LongStorage", shape: vec![1], numel: 1, data: 7i64.to_le_bytes().to_vec() };
    let e = pcoder_error(&d, "int.pth", &pth(&t));
    assert!(e.contains("pmodule.bias") && e.contains("I64"), "{e}");
    for (tag, v) in [("nan", f32::NAN), ("inf", f32::INFINITY)] {
        let mut t = pcoder1();
        t[0].data[40..44].copy_from_slice(&v.to_le_bytes());
        let e = pcoder_error(&d, &format!("{tag}.pth"), &pth(&t));
        assert!(e.contains("pmodule.weight") && e.contains("NaN or infinite"), "{e}");
    }
    for (tag, c) in [("zero", 0.0f32), ("neg", -2.0), ("nanc", f32::NAN), ("infc", f32::INFINITY)] {
        let mut t = pcoder1();
        t[2] = f32_tensor("C_sqrt", &[], &[c]);
        let e = pcoder_error(&d, &format!("c-{tag}.pth"), &pth(&t));
        assert!(e.contains("C_sqrt") && e.contains("> 0"), "{e}");
    }
    let mut t = pcoder1();
    t[2] = f32_tensor("C_sqrt", &[2], &[1.0, 2.0]);
    let e = pcoder_error(&d, "c-two.pth", &pth(&t));
    assert!(e.contains("C_sqrt") && e.contains("2 values"), "{e}");
    // Predify's "not yet estimated" -1 is dropped, not rejected.
    let mut t = pcoder1();
    t[2] = f32_tensor("C_sqrt", &[], &[-1.0]);
    let p = d.write("c-unset_pc1.pth", &pth(&t));
    assert!(!feedback::load_pcoder_checkpoint(&p, 1).unwrap().contains_key("pcoder1.C_sqrt"));

    // Wrong shapes: refused by the network, naming the tensor, before any weight is used.
    let mut t = pcoder1();
    t[0] = f32_tensor("pmodule.weight", &[8, 1, 4, 5], &[0.5; 160]);
    let p = d.write("shape_pc1.pth", &pth(&t));
    let mut w = feedback::load_pcoder_checkpoint(&p, 1).unwrap();
    let vm = VarMap::new();
    let pc2 = PMnist8::new(random_backbone(), VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    for (name, var) in pc2.feedback_vars() {
        if name.starts_with("pcoder2") {
            w.insert(name, var.as_tensor().clone());
        }
    }
    let e = PMnist8::new(random_backbone(), VarBuilder::from_tensors(w, DType::F32, &Device::Cpu)).err().unwrap().to_string();
    assert!(e.contains("pcoder1.pmodule.weight"), "{e}");

    // The pickle: a string longer than the file, objects copied exponentially through the
    // memo, nesting a recursive drop would overflow the stack on, unknown opcodes.
    let mut p = Pickle::default();
    p.op(b"\x80\x02X\xff\xff\xff\xff.");
    let e = pcoder_error(&d, "long-string.pth", &pth_from(p.0, &[], false));
    assert!(e.contains("4294967295 bytes"), "{e}");
    let mut p = Pickle::default();
    p.op(b"\x80\x02]q\x00");
    for _ in 0..64 {
        p.op(b"h\x00h\x00\x86q\x00");
    }
    p.op(b".");
    let e = pcoder_error(&d, "laughs.pth", &pth_from(p.0, &[], false));
    assert!(e.contains("bytes of objects"), "{e}");
    let mut p = Pickle::default();
    p.op(b"\x80\x02)");
    p.op(&[0x85; 100_000]);
    p.op(b".");
    let e = pcoder_error(&d, "deep.pth", &pth_from(p.0, &[], false));
    assert!(e.contains("nested"), "{e}");
    let e = pcoder_error(&d, "opcode.pth", &pth_from(b"\x80\x02\xff.".to_vec(), &[], false));
    assert!(e.contains("opcode"), "{e}");
    assert_peak_below(1 << 30);

    // The archive: compressed entries, a corrupted storage (CRC), an entry past the end.
    let mut entries = vec![("archive/data.pkl".to_string(), state_dict_pickle(&pcoder1(), true))];
    for (k, t) in pcoder1().iter().enumerate() {
        entries.push((format!("archive/data/{k}"), t.data.clone()));
    }
    let e = pcoder_error(&d, "deflated.pth", &zip(&entries, false, 8));
    assert!(e.contains("compressed"), "{e}");
    let mut bytes = pth(&pcoder1());
    let at = bytes.windows(4).position(|w| w == 0.25f32.to_le_bytes()).unwrap();
    bytes[at] ^= 1;
    let e = pcoder_error(&d, "crc.pth", &bytes);
    assert!(e.contains("CRC"), "{e}");
    let mut bytes = pth(&pcoder1());
    let cd = bytes.windows(4).position(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
    bytes[cd + 24..cd + 28].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    bytes[cd + 20..cd + 24].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    pcoder_error(&d, "past-end.pth", &bytes);
    assert_peak_below(1 << 30);
}

#[test]
fn safetensors_crafted_files_are_errors() {
    let d = TempDir::new("st-bad");
    let st = |header: &str, data: &[u8]| -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        b
    };
    // A shape of 16 TiB over 4 bytes of data.
    let bytes = st(r#"{"pcoder1.pmodule.weight":{"dtype":"F32","shape":[65536,65536,1024],"data_offsets":[0,4]}}"#, &[0; 4]);
    let p = d.write("huge.safetensors", &bytes);
    let e = timed("safetensors", || feedback::load_network_file(&p)).unwrap_err().to_string();
    assert!(e.contains("huge.safetensors"), "{e}");
    // A header length past the file.
    let mut bytes = st("{}", &[]);
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let p = d.write("len.safetensors", &bytes);
    assert!(feedback::load_network_file(&p).unwrap_err().to_string().contains("len.safetensors"));
    // Integer weights, NaN, a bad √C.
    let bytes = st(r#"{"pcoder1.pmodule.weight":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, &[1, 0, 0, 0, 0, 0, 0, 0]);
    let p = d.write("int.safetensors", &bytes);
    let e = feedback::load_network_file(&p).unwrap_err().to_string();
    assert!(e.contains("pcoder1.pmodule.weight") && e.contains("I64"), "{e}");
    let bytes = st(r#"{"pcoder1.pmodule.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, &f32::NAN.to_le_bytes());
    let p = d.write("nan.safetensors", &bytes);
    let e = feedback::load_network_file(&p).unwrap_err().to_string();
    assert!(e.contains("pcoder1.pmodule.weight") && e.contains("NaN"), "{e}");
    let header = r#"{"pcoder1.C_sqrt":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"pcoder1.pmodule.weight":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let mut data = 0f32.to_le_bytes().to_vec();
    data.extend_from_slice(&1f32.to_le_bytes());
    let p = d.write("c.safetensors", &st(header, &data));
    let e = feedback::load_network_file(&p).unwrap_err().to_string();
    assert!(e.contains("pcoder1.C_sqrt") && e.contains("> 0"), "{e}");
    assert_peak_below(1 << 30);
}

fn valid_safetensors() -> Vec<u8> {
    let mut m = HashMap::new();
    for t in pcoder1() {
        let shape: Vec<usize> = t.shape.iter().map(|&s| s as usize).collect();
        let v: Vec<f32> = t.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        m.insert(format!("pcoder1.{}", t.name), Tensor::from_vec(v, shape, &Device::Cpu).unwrap());
    }
    let d = TempDir::new("st-valid");
    let p = d.0.join("v.safetensors");
    candle_core::safetensors::save(&m, &p).unwrap();
    std::fs::read(&p).unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pth_mutated_files(ms in mutations()) {
        static VALID: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let valid = VALID.get_or_init(|| pth(&pcoder1()));
        let d = TempDir::new("pth-mut");
        let p = d.write("mut_pc1.pth", &mutate(valid, &ms));
        check_feedback(timed("pth", || feedback::load_pcoder_checkpoint(&p, 1)), &p);
        check_feedback(timed("pth", || feedback::load_network_file(&p)), &p);
    }

    /// The pickle mutated and zipped again with correct sizes and CRCs, so the mutation reaches
    /// the pickle reader.
    #[test]
    fn pth_mutated_pickles(ms in mutations(), wrap in any::<bool>(), zip64 in any::<bool>()) {
        let d = TempDir::new("pkl-mut");
        let pickle = mutate(&state_dict_pickle(&pcoder1(), wrap), &ms);
        let p = d.write("pkl_pc1.pth", &pth_from(pickle, &pcoder1(), zip64));
        check_feedback(timed("pickle", || feedback::load_pcoder_checkpoint(&p, 1)), &p);
    }

    #[test]
    fn pth_arbitrary_pickles(bytes in proptest::collection::vec(
        prop_oneof![any::<u8>(), proptest::sample::select(b"\x80}]()tRuhqsbaeXJKMQN.\x85\x86\x87\x89c\n".to_vec())],
        0..200,
    )) {
        let d = TempDir::new("pkl-any");
        let p = d.write("any_pc1.pth", &pth_from(bytes, &pcoder1(), false));
        check_feedback(timed("pickle", || feedback::load_pcoder_checkpoint(&p, 1)), &p);
    }

    #[test]
    fn checkpoint_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), head in 0u8..3) {
        let d = TempDir::new("ckpt-any");
        // Make the content look like a zip or a safetensors file often enough to get past the sniffing.
        let mut b = match head {
            0 => b"PK\x03\x04".to_vec(),
            1 => { let mut h = (bytes.len().min(40) as u64).to_le_bytes().to_vec(); h.push(b'{'); h }
            _ => Vec::new(),
        };
        b.extend_from_slice(&bytes);
        let p = d.write("any_pc1.bin", &b);
        check_feedback(timed("checkpoint", || feedback::load_pcoder_checkpoint(&p, 1)), &p);
    }

    #[test]
    fn safetensors_mutated(ms in mutations()) {
        static VALID: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let valid = VALID.get_or_init(valid_safetensors);
        let d = TempDir::new("st-mut");
        let p = d.write("mut_pc1.safetensors", &mutate(valid, &ms));
        check_feedback(timed("safetensors", || feedback::load_network_file(&p)), &p);
        check_feedback(timed("safetensors", || feedback::load_pcoder_checkpoint(&p, 1)), &p);
    }
}
