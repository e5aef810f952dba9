//! Predify's feedback (pcoder) checkpoints, as tensors named the way the runtime loads them.
//!
//! Predify's training scripts save one PyTorch file per pcoder:
//! `torch.save({'pcoderweights': pnet.pcoder{i}.state_dict(), 'optimizer': …, 'epoch': …},
//! 'pnet_pretrained_pc{i}_{epoch:03d}.pth')`. A pcoder's state dict holds its predictor's
//! parameters as `pmodule.*` (`pmodule.0.weight`, `pmodule.0.bias`, …) and, for PCoderN,
//! the buffer `C_sqrt` (`-1` while not yet estimated).
//!
//! The loaders here turn such files into one map whose names are what
//! [`predify_runtime::PNet::load`] reads: `pcoder{i}.pmodule.*` and `pcoder{i}.C_sqrt`
//! (kept only when positive, so that an unestimated `-1` falls back to the exact value). Pass
//! the map to [`candle_nn::VarBuilder::from_tensors`].
//!
//! Accepted files (recognised by content, not by name):
//! - a PyTorch zip checkpoint (`torch.save` since PyTorch 1.6) holding `{'pcoderweights': …}`,
//!   or a bare pcoder state dict;
//! - a safetensors file holding one pcoder's tensors (`pmodule.*`, `C_sqrt`), or, for
//!   [`load_network_file`], a whole network's `pcoder{i}.*` tensors.
//!
//! Tensors of any float type are converted to f32.

use crate::Result;
use candle_core::{DType, Tensor};
use predify_runtime::Error;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The key under which Predify's checkpoints store a pcoder's state dict.
pub const PCODER_WEIGHTS_KEY: &str = "pcoderweights";

/// The kind of a checkpoint file, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A zip archive: PyTorch's `torch.save` format.
    PyTorchZip,
    /// A safetensors file.
    Safetensors,
}

fn usage<T>(msg: String) -> Result<T> {
    Err(Error::Usage(msg))
}

/// Recognise a checkpoint file by its first bytes.
pub fn file_kind(path: &Path) -> Result<FileKind> {
    use std::io::Read;
    let mut head = [0u8; 9];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") {
        return Ok(FileKind::PyTorchZip);
    }
    // safetensors: u64 little-endian header length, then a JSON object.
    if n == 9 && head[8] == b'{' {
        return Ok(FileKind::Safetensors);
    }
    if head.first() == Some(&0x80) {
        return usage(format!(
            "{}: a PyTorch checkpoint in the legacy (pre-1.6, non-zip) format; re-save it with a recent `torch.save` or convert it to safetensors",
            path.display()
        ));
    }
    usage(format!("{}: neither a PyTorch zip checkpoint nor a safetensors file", path.display()))
}

/// All tensors of a file, by their names in the file. For a PyTorch checkpoint, `key` selects
/// an entry of the top-level dict (e.g. `Some("pcoderweights")`); with `None` the top-level
/// object must itself be the state dict.
pub fn read_tensors(path: impl AsRef<Path>, key: Option<&str>) -> Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    let ctx = |e: candle_core::Error| Error::Usage(format!("{}: {e}", path.display()));
    let tensors: Vec<(String, Tensor)> = match file_kind(path)? {
        FileKind::PyTorchZip => candle_core::pickle::read_all_with_key(path, key).map_err(ctx)?,
        FileKind::Safetensors => candle_core::safetensors::load(path, &candle_core::Device::Cpu).map_err(ctx)?.into_iter().collect(),
    };
    tensors
        .into_iter()
        .map(|(k, t)| {
            let t = if t.dtype().is_float() { t.to_dtype(DType::F32).map_err(ctx)? } else { t };
            Ok((k, t))
        })
        .collect()
}

/// One pcoder's checkpoint (`number` is 1-based, as Predify counts), renamed to
/// `pcoder{number}.pmodule.*` / `pcoder{number}.C_sqrt`.
///
/// In a PyTorch file the state dict is taken from `'pcoderweights'` when the top-level dict
/// has it, else the top-level dict is the state dict. Names are accepted with the
/// `pmodule.` prefix (a pcoder's state dict), without it (a predictor's own state dict,
/// `0.weight`), or already prefixed with `pcoder{number}.`.
pub fn load_pcoder_checkpoint(path: impl AsRef<Path>, number: usize) -> Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    let raw = match file_kind(path)? {
        FileKind::PyTorchZip => {
            // A bare state dict has tensors at the top level; Predify's checkpoints have
            // none there (they sit under 'pcoderweights').
            let top = candle_core::pickle::read_pth_tensor_info(path, false, None)
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
            if top.is_empty() {
                read_tensors(path, Some(PCODER_WEIGHTS_KEY))?
            } else {
                read_tensors(path, None)?
            }
        }
        FileKind::Safetensors => read_tensors(path, None)?,
    };
    rename_pcoder(raw, number, path)
}

fn rename_pcoder(raw: HashMap<String, Tensor>, number: usize, path: &Path) -> Result<HashMap<String, Tensor>> {
    let prefix = format!("pcoder{number}.");
    let mut out = HashMap::new();
    for (name, t) in raw {
        let local = name.strip_prefix(&prefix).unwrap_or(&name);
        if local == "C_sqrt" {
            if let Some(c) = positive_scalar(&t) {
                out.insert(format!("{prefix}C_sqrt"), Tensor::new(c, t.device())?);
            }
            continue;
        }
        let local = local.strip_prefix("pmodule.").unwrap_or(local);
        if local.starts_with("pcoder") && local.split('.').next().is_some_and(|s| s[6..].parse::<usize>().is_ok()) {
            return usage(format!("{}: tensor `{name}` belongs to another pcoder than pcoder{number}", path.display()));
        }
        out.insert(format!("{prefix}pmodule.{local}"), t);
    }
    if !out.keys().any(|k| k.contains(".pmodule.")) {
        return usage(format!("{}: no predictor weights (`pmodule.*`) for pcoder{number}", path.display()));
    }
    Ok(out)
}

fn positive_scalar(t: &Tensor) -> Option<f32> {
    let v = t.to_dtype(DType::F32).ok()?.flatten_all().ok()?.to_vec1::<f32>().ok()?;
    match v.as_slice() {
        [c] if *c > 0.0 && c.is_finite() => Some(*c),
        _ => None,
    }
}

/// Predify's per-pcoder checkpoints, `paths[i]` for pcoder `i + 1`, merged into one map.
pub fn load_feedback_checkpoints<P: AsRef<Path>>(paths: &[P]) -> Result<HashMap<String, Tensor>> {
    let mut all = HashMap::new();
    for (i, p) in paths.iter().enumerate() {
        all.extend(load_pcoder_checkpoint(p, i + 1)?);
    }
    Ok(all)
}

/// The checkpoints of pcoders `1..=n` in `dir`, found as Predify's scripts find them: exactly
/// one `*.pth` or `*.safetensors` file whose name contains `pc{i}` not followed by a digit
/// (`pnet_pretrained_pc3_025.pth`).
pub fn find_checkpoints(dir: impl AsRef<Path>, n: usize) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Usage(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pth" || x == "safetensors"))
        .collect();
    let mut out = Vec::with_capacity(n);
    for i in 1..=n {
        let tag = format!("pc{i}");
        let mut hits: Vec<&PathBuf> = entries
            .iter()
            .filter(|p| {
                let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
                name.match_indices(&tag).any(|(at, _)| !name[at + tag.len()..].starts_with(|c: char| c.is_ascii_digit()))
            })
            .collect();
        hits.sort();
        match hits.as_slice() {
            [one] => out.push((*one).clone()),
            _ => return usage(format!("{}: expected exactly one checkpoint for pcoder{i} (a name containing `{tag}`), found {}", dir.display(), hits.len())),
        }
    }
    Ok(out)
}

/// A whole network's feedback weights in one file (`pcoder{i}.pmodule.*`, `pcoder{i}.C_sqrt`),
/// e.g. a safetensors file written from [`predify_runtime::PNet::feedback_vars`]. Other
/// tensors in the file are ignored; non-positive `C_sqrt` values are dropped.
pub fn load_network_file(path: impl AsRef<Path>) -> Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    let mut out = HashMap::new();
    for (name, t) in read_tensors(path, None)? {
        let Some(rest) = name.strip_prefix("pcoder") else { continue };
        let Some((num, local)) = rest.split_once('.') else { continue };
        if num.parse::<usize>().is_err() {
            continue;
        }
        if local == "C_sqrt" {
            if let Some(c) = positive_scalar(&t) {
                out.insert(name, Tensor::new(c, t.device())?);
            }
        } else if local.starts_with("pmodule.") {
            out.insert(name, t);
        }
    }
    if out.is_empty() {
        return usage(format!("{}: no `pcoder{{i}}.pmodule.*` tensors", path.display()));
    }
    Ok(out)
}
