//! Training checkpoints: the feedback weights under Predify's names, the optimiser's state and
//! where training stands, in one safetensors file written atomically.
//!
//! Tensors: `pcoder{i}.pmodule.*` (and `pcoder{i}.C_sqrt` for gradient-scaled pcoders), so the
//! file loads as a feedback checkpoint anywhere the project reads one
//! ([`crate::zoo::feedback::load_network_file`]); the optimiser's buffers as
//! `optimizer.{param}.{buffer}` (PyTorch's buffer names). Metadata (safetensors' string map):
//! [`FORMAT_KEY`] = [`FORMAT`], `network`, `epoch`, `step_in_epoch`, `global_step`, `seed`,
//! `batch_size`, `optimizer` (kind), `optimizer.steps`, and whatever the writer adds.
//!
//! Writes go to a temporary file in the same directory, are flushed to disk (`fsync`), then
//! renamed over the target, and the directory is synced: a crash at any point leaves either the
//! previous file or the new one, never a damaged one.

use crate::common::{write_atomic, Error};
use candle_core::{DType, Device, Tensor};
use predify_runtime::optim::OptimizerState;
use predify_runtime::PNet;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

/// Metadata key naming the file format.
pub const FORMAT_KEY: &str = "format";
/// The format written by this version.
pub const FORMAT: &str = "predify-rs/feedback-checkpoint/1";
/// Prefix of the optimiser's buffers among the tensors.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Where a training run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Epoch in progress (0-based); equals the number of finished epochs when `step_in_epoch`
    /// is 0.
    pub epoch: usize,
    /// Batches of `epoch` already trained.
    pub step_in_epoch: usize,
    /// Optimiser steps since the start.
    pub global_step: u64,
    /// The run's seed (the shuffle of each epoch derives from it).
    pub seed: u64,
    /// The batch size the shuffle was cut with.
    pub batch_size: usize,
}

/// The contents of a checkpoint file.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The predified network's name (from its spec).
    pub network: String,
    /// Feedback weights by full name (`pcoder1.pmodule.weight`).
    pub weights: BTreeMap<String, Tensor>,
    /// The optimiser's state, if saved.
    pub optimizer: Option<OptimizerState>,
    /// Where training stands.
    pub position: Position,
    /// Further metadata (free-form strings, e.g. the loss history as JSON).
    pub extra: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The current feedback weights of `pnet` (and √C of gradient-scaled pcoders), at `position`.
    pub fn of(pnet: &PNet, optimizer: Option<OptimizerState>, position: Position) -> Result<Self, Error> {
        let mut weights = BTreeMap::new();
        for (name, var) in pnet.feedback_vars() {
            weights.insert(name, var.as_tensor().copy()?);
        }
        for pc in pnet.pcoders() {
            if let Some(c) = pc.c_sqrt() {
                weights.insert(format!("pcoder{}.C_sqrt", pc.number()), Tensor::new(c, &Device::Cpu)?);
            }
        }
        Ok(Self { network: pnet.name().to_string(), weights, optimizer, position, extra: BTreeMap::new() })
    }

    /// Serialise to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut meta: HashMap<String, String> = self.extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let p = &self.position;
        for (k, v) in [
            (FORMAT_KEY, FORMAT.to_string()),
            ("network", self.network.clone()),
            ("epoch", p.epoch.to_string()),
            ("step_in_epoch", p.step_in_epoch.to_string()),
            ("global_step", p.global_step.to_string()),
            ("seed", p.seed.to_string()),
            ("batch_size", p.batch_size.to_string()),
        ] {
            meta.insert(k.to_string(), v);
        }
        let mut tensors: Vec<(String, Tensor)> = self.weights.iter().map(|(k, t)| (k.clone(), t.clone())).collect();
        if let Some(o) = &self.optimizer {
            meta.insert("optimizer".into(), o.kind.clone());
            meta.insert("optimizer.steps".into(), o.steps.to_string());
            for (k, t) in &o.buffers {
                tensors.push((format!("{OPTIMIZER_PREFIX}{k}"), t.contiguous()?));
            }
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        safetensors::tensor::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(meta))
            .map_err(|e| Error::Config(format!("serialising a checkpoint: {e}")))
    }

    /// Write atomically to `path` (see the module docs).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let bytes = self.to_bytes()?;
        write_atomic(path.as_ref(), |f| f.write_all(&bytes))
    }

    /// Read a checkpoint written by [`Checkpoint::save`]; errors name the file and what is wrong.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parse checkpoint bytes; `path` names them in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, Error> {
        let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a readable safetensors file ({e}); truncated or corrupt?")))?;
        let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
        match meta.get(FORMAT_KEY) {
            Some(f) if f == FORMAT => {}
            Some(f) => return Err(bad(format!("checkpoint format `{f}`, this version reads `{FORMAT}`"))),
            None => {
                return Err(bad(format!(
                    "no `{FORMAT_KEY}` metadata: not a predify-rs training checkpoint (a bare feedback-weights file loads with zoo::feedback::load_network_file)"
                )))
            }
        }
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| bad(format!("reading tensors: {e}")))?;
        let get = |k: &str| meta.get(k).ok_or_else(|| bad(format!("metadata `{k}` missing")));
        let num = |k: &str| -> Result<u64, Error> {
            get(k)?.parse::<u64>().map_err(|e| bad(format!("metadata `{k}` = {:?}: {e}", meta.get(k))))
        };
        let position = Position {
            epoch: num("epoch")? as usize,
            step_in_epoch: num("step_in_epoch")? as usize,
            global_step: num("global_step")?,
            seed: num("seed")?,
            batch_size: num("batch_size")? as usize,
        };
        let mut weights = BTreeMap::new();
        let mut buffers = BTreeMap::new();
        for (k, t) in tensors {
            if let Some(rest) = k.strip_prefix(OPTIMIZER_PREFIX) {
                buffers.insert(rest.to_string(), t);
            } else {
                if t.dtype() != DType::F32 {
                    return Err(bad(format!("tensor `{k}` has dtype {:?}, expected f32", t.dtype())));
                }
                weights.insert(k, t);
            }
        }
        let optimizer = match meta.get("optimizer") {
            Some(kind) => Some(OptimizerState { kind: kind.clone(), steps: num("optimizer.steps")?, buffers }),
            None if buffers.is_empty() => None,
            None => return Err(bad("optimizer buffers without `optimizer` metadata".into())),
        };
        let reserved = [FORMAT_KEY, "network", "epoch", "step_in_epoch", "global_step", "seed", "batch_size", "optimizer", "optimizer.steps"];
        let extra = meta.iter().filter(|(k, _)| !reserved.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(Self { network: get("network")?.clone(), weights, optimizer, position, extra })
    }

    /// Every tensor (weights and optimiser buffers) finite; the error names the file and the
    /// tensor.
    pub fn check_finite(&self, path: &Path) -> Result<(), Error> {
        let buffers = self.optimizer.iter().flat_map(|o| o.buffers.iter().map(|(k, t)| (format!("{OPTIMIZER_PREFIX}{k}"), t)));
        for (name, t) in self.weights.iter().map(|(k, t)| (k.clone(), t)).chain(buffers) {
            let finite = t
                .to_dtype(DType::F64)
                .and_then(|t| t.flatten_all()?.to_vec1::<f64>())
                .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: format!("tensor `{name}`: {e}") })?
                .iter()
                .all(|v| v.is_finite());
            if !finite {
                return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("tensor `{name}` is not finite (NaN or infinite values)") });
            }
        }
        Ok(())
    }

    /// Check that this checkpoint belongs to `pnet` (same network name, exactly its feedback
    /// parameters, same shapes) and copy its weights into the network's variables. Nothing is
    /// changed unless every check passes. `path` names the file in errors.
    pub fn apply_to(&self, pnet: &PNet, path: &Path) -> Result<(), Error> {
        let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        if self.network != pnet.name() {
            return Err(bad(format!("a checkpoint of network `{}`, not `{}`", self.network, pnet.name())));
        }
        let vars = pnet.feedback_vars();
        for (name, var) in &vars {
            let Some(t) = self.weights.get(name) else {
                return Err(bad(format!("tensor `{name}` (a parameter of {}) is missing", pnet.name())));
            };
            if t.dims() != var.dims() {
                return Err(bad(format!("tensor `{name}`: shape {:?} in the file, {:?} in the network", t.dims(), var.dims())));
            }
        }
        for name in self.weights.keys() {
            let known = vars.iter().any(|(n, _)| n == name)
                || name.strip_prefix("pcoder").and_then(|r| r.split_once(".C_sqrt")).is_some_and(|(num, rest)| {
                    rest.is_empty() && num.parse::<usize>().is_ok_and(|i| (1..=pnet.len()).contains(&i))
                });
            if !known {
                return Err(bad(format!("tensor `{name}` is not a parameter of {} (a checkpoint of another network?)", pnet.name())));
            }
        }
        for (name, var) in &vars {
            var.set(&self.weights[name])?;
        }
        Ok(())
    }
}
