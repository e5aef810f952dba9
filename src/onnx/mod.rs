//! Reading ONNX models: the graph and its initializers (weights) as Candle tensors.
//!
//! The protobuf decoding is prost's, on types generated from `proto/onnx.proto` (the part of
//! ONNX's schema this crate reads, with ONNX's field numbers; everything else in a file is
//! skipped) into the checked-in [`proto`] module: pure Rust, no `protoc` at build time. After
//! editing the schema, regenerate with `scripts/onnx-proto.sh` (protox + prost-build, also pure
//! Rust); `scripts/onnx-proto.sh --check` verifies the checked-in file. This module adds
//! file-named errors and a checked conversion of `TensorProto`s. It does not evaluate graphs: a
//! network is rebuilt natively from its initializers (see
//! [`crate::zoo::mnist8::Mnist8::from_onnx`]).
//!
//! Needs the `onnx` feature (on by default).

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// ONNX's protobuf messages (`ModelProto`, `GraphProto`, `NodeProto`, `TensorProto`, …), generated
/// by `scripts/onnx-proto.sh` from `proto/onnx.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!("proto.rs");
}

/// Errors while reading an ONNX file; each names the file or tensor concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid ONNX protobuf.
    #[error("{path}: not a valid ONNX model: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the decoder reported.
        message: String,
    },
    /// An initializer cannot be turned into a tensor.
    #[error("{path}: initializer `{name}`: {message}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The initializer's name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The graph does not have the structure the caller expects.
    #[error("{path}: {message}")]
    Graph {
        /// The file.
        path: PathBuf,
        /// What was expected and found.
        message: String,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A decoded ONNX model and the file it came from.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    path: PathBuf,
    model: proto::ModelProto,
}

impl OnnxModel {
    /// Read and decode an `.onnx` file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(source) => return Err(Error::Io { path, source }),
        };
        Self::from_bytes(&bytes, path)
    }

    /// Decode the bytes of an `.onnx` file; `path` names the source in errors.
    ///
    /// The decoder allocates only for what the bytes hold (every length is checked against
    /// the bytes left) and limits message nesting; a panic inside it would be reported as an
    /// error, not propagated.
    pub fn from_bytes(bytes: &[u8], path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let decoded = std::panic::catch_unwind(|| <proto::ModelProto as prost::Message>::decode(bytes));
        let model = match decoded {
            Ok(Ok(model)) => model,
            Ok(Err(e)) => return Err(Error::Decode { path, message: e.to_string() }),
            Err(_) => return Err(Error::Decode { path, message: "the protobuf decoder panicked".into() }),
        };
        if model.graph.is_none() {
            return Err(Error::Decode { path, message: "the model has no graph".into() });
        }
        Ok(Self { path, model })
    }

    /// The file the model was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole protobuf message.
    pub fn proto(&self) -> &proto::ModelProto {
        &self.model
    }

    /// The main graph.
    pub fn graph(&self) -> &proto::GraphProto {
        // `read` checked that the graph exists.
        self.model.graph.as_ref().expect("checked in OnnxModel::read")
    }

    /// The graph's nodes in file (topological) order.
    pub fn nodes(&self) -> &[proto::NodeProto] {
        &self.graph().node
    }

    /// Names of the initializers in file order.
    pub fn initializer_names(&self) -> Vec<&str> {
        self.graph().initializer.iter().map(|t| t.name.as_str()).collect()
    }

    /// One initializer as a tensor.
    pub fn initializer(&self, name: &str) -> Result<Tensor> {
        match self.graph().initializer.iter().find(|t| t.name == name) {
            Some(t) => tensor_from_proto(t).map_err(|message| self.tensor_err(name, message)),
            None => Err(self.tensor_err(name, "no initializer of that name".into())),
        }
    }

    /// Every initializer as a tensor, by name.
    pub fn initializers(&self) -> Result<HashMap<String, Tensor>> {
        self.graph()
            .initializer
            .iter()
            .map(|t| Ok((t.name.clone(), tensor_from_proto(t).map_err(|m| self.tensor_err(&t.name, m))?)))
            .collect()
    }

    /// An error about the graph's structure, naming this file.
    pub fn graph_error(&self, message: impl Into<String>) -> Error {
        Error::Graph { path: self.path.clone(), message: message.into() }
    }

    fn tensor_err(&self, name: &str, message: String) -> Error {
        Error::Tensor { path: self.path.clone(), name: name.to_string(), message }
    }
}

/// Convert a `TensorProto` holding `FLOAT`, `DOUBLE` or `INT64` values (typed fields or
/// little-endian `raw_data`) into a CPU tensor; `f32` and `f64` stay as they are, `INT64`
/// becomes `i64`. Externally stored data and other element types are reported, not guessed.
pub fn tensor_from_proto(t: &proto::TensorProto) -> std::result::Result<Tensor, String> {
    use proto::tensor_proto::{DataLocation, DataType};
    if t.data_location == DataLocation::External as i32 {
        return Err("the data is stored in an external file, which is not supported".into());
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        dims.push(usize::try_from(d).map_err(|_| format!("negative dimension in {:?}", t.dims))?);
    }
    // Checked: the dimensions come from the file. Every tensor is built from values the file
    // holds (their count is compared below), so its size is bounded by the file's.
    let numel = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| format!("dims {dims:?} overflow"))?;
    let dtype = DataType::try_from(t.data_type).map_err(|_| format!("unknown data type {}", t.data_type))?;
    let (candle_dtype, elem_size) = match dtype {
        DataType::Float => (DType::F32, 4),
        DataType::Double => (DType::F64, 8),
        DataType::Int64 => (DType::I64, 8),
        other => return Err(format!("unsupported element type {other:?}")),
    };
    let typed_len = match dtype {
        DataType::Float => t.float_data.len(),
        DataType::Double => t.double_data.len(),
        _ => t.int64_data.len(),
    };
    let cpu = &Device::Cpu;
    let err = |e: candle_core::Error| e.to_string();
    if !t.raw_data.is_empty() {
        let need = numel.checked_mul(elem_size).ok_or_else(|| format!("dims {dims:?} × {elem_size} bytes overflow"))?;
        if t.raw_data.len() != need {
            return Err(format!("raw_data has {} bytes, {dims:?} × {elem_size} bytes needs {need}", t.raw_data.len()));
        }
        // Decode little-endian explicitly (no alignment or host-endianness assumptions).
        let raw = &t.raw_data;
        return match dtype {
            DataType::Float => {
                let v: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                Tensor::from_vec(v, dims, cpu).map_err(err)
            }
            DataType::Double => {
                let v: Vec<f64> = raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
                Tensor::from_vec(v, dims, cpu).map_err(err)
            }
            _ => {
                let v: Vec<i64> = raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
                Tensor::from_vec(v, dims, cpu).map_err(err)
            }
        };
    }
    if typed_len != numel {
        return Err(format!("{typed_len} values for shape {dims:?} ({numel} expected)"));
    }
    let tensor = match dtype {
        DataType::Float => Tensor::from_slice(&t.float_data, dims, cpu),
        DataType::Double => Tensor::from_slice(&t.double_data, dims, cpu),
        _ => Tensor::from_slice(&t.int64_data, dims, cpu),
    };
    let tensor = tensor.map_err(err)?;
    debug_assert_eq!(tensor.dtype(), candle_dtype);
    Ok(tensor)
}

/// The integer-list attribute `name` of a node (`kernel_shape`, `pads`, `strides`, …).
pub fn attr_ints(node: &proto::NodeProto, name: &str) -> Option<Vec<i64>> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.ints.clone())
}

/// The string attribute `name` of a node (`auto_pad`, …).
pub fn attr_string(node: &proto::NodeProto, name: &str) -> Option<String> {
    node.attribute.iter().find(|a| a.name == name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

/// The integer attribute `name` of a node (`group`, `axis`, …).
pub fn attr_int(node: &proto::NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}
