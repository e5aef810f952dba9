//! Loading a Predify oracle fixture (safetensors + JSON sidecar, see shared/fixtures/FORMAT.md)
//! into a runtime backbone and spec. Only the sidecar and the tensors are used, so fixtures this
//! code has never seen work as long as they use the same format and known layer types.

use anyhow::{anyhow, bail, Context, Result};
use candle_core::Tensor;
use predify::runtime::layers::{Conv, Linear, MaxPool};
use predify::runtime::sequential::{Op, Sequential};
use predify::spec::{ConvSpec, Spec};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A fixture: its sidecar, its tensors and what they describe.
pub struct Fixture {
    pub name: String,
    pub meta: Value,
    pub tensors: HashMap<String, Tensor>,
    pub spec: Spec,
    pub backbone: Sequential,
}

/// The fixture directory: `$PREDIFY_FIXTURES`, or `../shared/fixtures` beside the checkout.
pub fn fixture_dir() -> PathBuf {
    match std::env::var_os("PREDIFY_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"),
    }
}

/// The unrolled-gradient fixture directory: `$PREDIFY_UNROLL_FIXTURES`, or
/// `../shared/fixtures-unroll` beside the checkout.
#[allow(dead_code)] // used by the unrolled-gradient tests only
pub fn unroll_fixture_dir() -> PathBuf {
    match std::env::var_os("PREDIFY_UNROLL_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures-unroll"),
    }
}

/// Every `<name>.json` with a `<name>.safetensors` beside it, sorted by name.
pub fn fixture_names() -> Result<Vec<String>> {
    fixture_names_in(&fixture_dir())
}

/// [`fixture_names`] of another directory (e.g. the unrolled-gradient fixtures).
pub fn fixture_names_in(dir: &Path) -> Result<Vec<String>> {
    let dir = dir.to_path_buf();
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("reading fixture dir {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "json") && p.with_extension("safetensors").exists() {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

fn usizes(v: &Value, what: &str) -> Result<Vec<usize>> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_u64().map(|x| x as usize).ok_or_else(|| anyhow!("{what}: not an int list"))).collect(),
        Value::Number(n) => Ok(vec![n.as_u64().ok_or_else(|| anyhow!("{what}: not an int"))? as usize]),
        _ => bail!("{what}: expected int or list, got {v}"),
    }
}

fn per_axis(v: &Value, dims: usize, what: &str) -> Result<Vec<usize>> {
    let x = usizes(v, what)?;
    Ok(if x.len() == 1 { vec![x[0]; dims] } else { x })
}

impl Fixture {
    pub fn load(name: &str) -> Result<Self> {
        Self::load_from(&fixture_dir(), name)
    }

    /// [`Fixture::load`] from another directory (e.g. the unrolled-gradient fixtures).
    pub fn load_from(dir: &Path, name: &str) -> Result<Self> {
        let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json")))?)?;
        // Everything built from the fixture lives on the selected device ($PREDIFY_DEVICE).
        let tensors = candle_core::safetensors::load(dir.join(format!("{name}.safetensors")), &super::device::device()?)?;
        let toml = meta["toml_config"].as_str().ok_or_else(|| anyhow!("sidecar has no toml_config"))?;
        let spec = Spec::from_toml_str(toml).map_err(|e| anyhow!("{name}: spec: {e}"))?;
        let mut f = Fixture { name: name.to_string(), meta, tensors, spec, backbone: Sequential::new() };
        f.backbone = f.build_backbone()?;
        Ok(f)
    }

    pub fn tensor(&self, key: &str) -> Result<&Tensor> {
        self.tensors.get(key).ok_or_else(|| anyhow!("{}: tensor `{key}` missing", self.name))
    }

    pub fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    fn build_backbone(&self) -> Result<Sequential> {
        let bb = &self.meta["backbone"];
        let mut seq = Sequential::new();
        let forward = bb["forward"].as_array().ok_or_else(|| anyhow!("backbone.forward missing"))?;
        for step in forward {
            let step = step.as_str().ok_or_else(|| anyhow!("backbone.forward: not a string"))?;
            if let Some(rest) = step.strip_prefix("flatten(start_dim=") {
                let d: usize = rest.trim_end_matches(')').parse()?;
                seq.push(format!("flatten{d}"), Op::Flatten { start_dim: d });
                continue;
            }
            let layers = bb[step].as_array().ok_or_else(|| anyhow!("backbone.{step}: no layer list"))?;
            for (j, l) in layers.iter().enumerate() {
                let idx = l["index"].as_u64().map(|x| x as usize).unwrap_or(j);
                let path = format!("{step}[{idx}]");
                seq.push(path.clone(), self.layer(l, &path)?);
            }
        }
        Ok(seq)
    }

    fn param(&self, l: &Value, p: &str) -> Result<Option<Tensor>> {
        match l["params"][p]["tensor"].as_str() {
            Some(name) => Ok(Some(self.tensor(name)?.clone())),
            None => Ok(None),
        }
    }

    fn layer(&self, l: &Value, path: &str) -> Result<Op> {
        let ty = l["type"].as_str().unwrap_or("?");
        let dims = if ty.ends_with("3d") { 3 } else { 2 };
        Ok(match ty {
            "Conv2d" | "Conv3d" => {
                let spec = ConvSpec {
                    dims,
                    in_channels: l["in_channels"].as_u64().ok_or_else(|| anyhow!("{path}: in_channels"))? as usize,
                    out_channels: l["out_channels"].as_u64().ok_or_else(|| anyhow!("{path}: out_channels"))? as usize,
                    kernel_size: per_axis(&l["kernel_size"], dims, path)?,
                    stride: per_axis(&l["stride"], dims, path)?,
                    padding: per_axis(&l["padding"], dims, path)?,
                    output_padding: vec![0; dims],
                    dilation: per_axis(&l["dilation"], dims, path)?,
                    groups: l["groups"].as_u64().unwrap_or(1) as usize,
                    bias: l["bias"].as_bool().unwrap_or(true),
                };
                if l["padding_mode"].as_str().is_some_and(|m| m != "zeros") {
                    bail!("{path}: padding_mode {} is not supported", l["padding_mode"]);
                }
                let w = self.param(l, "weight")?.ok_or_else(|| anyhow!("{path}: no weight"))?;
                Op::Conv(Conv::new(spec, false, w, self.param(l, "bias")?, path)?)
            }
            "ReLU" => Op::Relu,
            "MaxPool2d" | "MaxPool3d" => Op::MaxPool(MaxPool::new(
                dims,
                &per_axis(&l["kernel_size"], dims, path)?,
                &per_axis(&l["stride"], dims, path)?,
                &per_axis(&l["padding"], dims, path)?,
                &per_axis(&l["dilation"], dims, path)?,
                l["ceil_mode"].as_bool().unwrap_or(false),
                path,
            )?),
            "Linear" => {
                let w = self.param(l, "weight")?.ok_or_else(|| anyhow!("{path}: no weight"))?;
                Op::Linear(Linear::new(w, self.param(l, "bias")?, path)?)
            }
            "Flatten" => Op::Flatten { start_dim: l["start_dim"].as_u64().unwrap_or(1) as usize },
            other => bail!("{path}: backbone layer type `{other}` is not supported by this test harness"),
        })
    }
}

/// max|a−b| / max|b| (with max|b| floored at 1e-30), or an error on a shape mismatch.
pub fn rel_err(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.dims() != b.dims() {
        bail!("shape {:?} vs reference {:?}", a.dims(), b.dims());
    }
    let a: Vec<f32> = a.flatten_all()?.to_vec1()?;
    let b: Vec<f32> = b.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-30);
    let diff = a.iter().zip(&b).fold(0f64, |m, (x, y)| {
        let d = (*x as f64 - *y as f64).abs();
        if d.is_nan() { f64::INFINITY } else { m.max(d) }
    });
    Ok(diff / scale)
}
