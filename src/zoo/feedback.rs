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
//! (an unestimated `-1` is dropped, so that the exact value is used; any other value must be a
//! finite number > 0). Pass the map to [`candle_nn::VarBuilder::from_tensors`].
//!
//! Accepted files (recognised by content, not by name):
//! - a PyTorch zip checkpoint (`torch.save` since PyTorch 1.6) holding `{'pcoderweights': …}`,
//!   or a bare pcoder state dict;
//! - a safetensors file holding one pcoder's tensors (`pmodule.*`, `C_sqrt`), or, for
//!   [`load_network_file`], a whole network's `pcoder{i}.*` tensors.
//!
//! Tensors of any float type are converted to f32.
//!
//! Files are untrusted. A PyTorch checkpoint is read by this module's own zip reader
//! (uncompressed entries only, as `torch.save` writes them; sizes and CRC-32 checked), its
//! `data.pkl` is first scanned with a budget (size, objects built and copied, nesting) and only
//! then handed to Candle's pickle reader, which builds plain data and executes nothing. Each
//! tensor's claimed size (checked arithmetic) is compared with its storage entry before a byte
//! of it is read. See `SECURITY.md`.

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
/// object must itself be the state dict. Float tensors are converted to f32, others kept as
/// they are.
///
/// The file is untrusted (see the module docs and `SECURITY.md`): sizes are checked before
/// anything is allocated, and a reader that panics is reported as an error naming the file.
pub fn read_tensors(path: impl AsRef<Path>, key: Option<&str>) -> Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    let ctx = |e: candle_core::Error| Error::Usage(format!("{}: {e}", path.display()));
    let tensors: Vec<(String, Tensor)> = match file_kind(path)? {
        FileKind::PyTorchZip => pth::read(path, key)?,
        FileKind::Safetensors => {
            let loaded = guarded(path, "the safetensors reader", || candle_core::safetensors::load(path, &candle_core::Device::Cpu))?;
            loaded.map_err(ctx)?.into_iter().collect()
        }
    };
    tensors
        .into_iter()
        .map(|(k, t)| {
            let t = if t.dtype().is_float() { t.to_dtype(DType::F32).map_err(ctx)? } else { t };
            Ok((k, t))
        })
        .collect()
}

/// `f()`, with a panic inside it (a third-party parser's) turned into an error naming the file.
/// The default panic hook still prints the panic's message: replacing the hook would change
/// the whole process.
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| Error::Usage(format!("{}: {what} failed on malformed data (it panicked)", path.display())))
}

/// One pcoder's checkpoint (`number` is 1-based, as Predify counts), renamed to
/// `pcoder{number}.pmodule.*` / `pcoder{number}.C_sqrt`.
///
/// In a PyTorch file the state dict is taken from `'pcoderweights'` when the top-level dict
/// has it, else the top-level dict is the state dict. Names are accepted with the
/// `pmodule.` prefix (a pcoder's state dict), without it (a predictor's own state dict,
/// `0.weight`), or already prefixed with `pcoder{number}.`.
///
/// Every tensor is checked before the map is returned (all or nothing): floating point,
/// finite, and `C_sqrt` a single value that is either Predify's "not yet estimated" `-1`
/// (dropped, so the exact value is used) or a finite number > 0.
pub fn load_pcoder_checkpoint(path: impl AsRef<Path>, number: usize) -> Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    let raw = match file_kind(path)? {
        FileKind::PyTorchZip => {
            // A bare state dict has tensors at the top level; Predify's checkpoints have
            // none there (they sit under 'pcoderweights').
            if pth::has_top_level_tensors(path)? {
                read_tensors(path, None)?
            } else {
                read_tensors(path, Some(PCODER_WEIGHTS_KEY))?
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
            if let Some(c) = c_sqrt_value(&t, &name, path)? {
                out.insert(format!("{prefix}C_sqrt"), Tensor::new(c, t.device())?);
            }
            continue;
        }
        let local = local.strip_prefix("pmodule.").unwrap_or(local);
        if local.starts_with("pcoder") && local.split('.').next().is_some_and(|s| s[6..].parse::<usize>().is_ok()) {
            return usage(format!("{}: tensor `{name}` belongs to another pcoder than pcoder{number}", path.display()));
        }
        check_weight(&t, &name, path)?;
        out.insert(format!("{prefix}pmodule.{local}"), t);
    }
    if !out.keys().any(|k| k.contains(".pmodule.")) {
        return usage(format!("{}: no predictor weights (`pmodule.*`) for pcoder{number}", path.display()));
    }
    Ok(out)
}

/// A weight as [`read_tensors`] returns it: floating point (then f32) and finite.
fn check_weight(t: &Tensor, name: &str, path: &Path) -> Result<()> {
    if t.dtype() != DType::F32 {
        return usage(format!("{}: tensor `{name}`: dtype {:?}, expected floating point weights", path.display(), t.dtype()));
    }
    let finite = t.flatten_all()?.to_vec1::<f32>()?.iter().all(|v| v.is_finite());
    if !finite {
        return usage(format!("{}: tensor `{name}` contains NaN or infinite values", path.display()));
    }
    Ok(())
}

/// Predify's `C_sqrt` buffer: `None` for its "not yet estimated" `-1`, the value when it is a
/// finite number > 0; anything else (several values, 0, another negative, NaN, ±inf, an
/// integer type) is an error naming the file and the tensor.
fn c_sqrt_value(t: &Tensor, name: &str, path: &Path) -> Result<Option<f32>> {
    if t.dtype() != DType::F32 {
        return usage(format!("{}: tensor `{name}`: dtype {:?}, expected a floating-point C_sqrt", path.display(), t.dtype()));
    }
    match t.flatten_all()?.to_vec1::<f32>()?.as_slice() {
        [c] if *c == -1.0 => Ok(None),
        [c] if *c > 0.0 && c.is_finite() => Ok(Some(*c)),
        [c] => usage(format!(
            "{}: tensor `{name}` is {c}; C_sqrt must be a finite number > 0 (or Predify's -1, \"not yet estimated\")",
            path.display()
        )),
        v => usage(format!("{}: tensor `{name}` has {} values, C_sqrt is a single number", path.display(), v.len())),
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
/// tensors in the file are ignored; a `C_sqrt` of `-1` ("not yet estimated") is dropped. The
/// tensors used are checked as in [`load_pcoder_checkpoint`], all before any is returned.
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
            if let Some(c) = c_sqrt_value(&t, &name, path)? {
                out.insert(name, Tensor::new(c, t.device())?);
            }
        } else if local.starts_with("pmodule.") {
            check_weight(&t, &name, path)?;
            out.insert(name, t);
        }
    }
    if out.is_empty() {
        return usage(format!("{}: no `pcoder{{i}}.pmodule.*` tensors", path.display()));
    }
    Ok(out)
}

/// PyTorch zip checkpoints (`torch.save` since 1.6), read defensively: a minimal zip reader of
/// our own (so every size is checked against the file, nothing is decompressed, and the bytes
/// checked are the bytes used), a budgeted scan of the pickle before Candle's reader builds its
/// objects, and each tensor's claimed size compared with its storage entry before reading it.
mod pth {
    use super::{guarded, usage, Result};
    use candle_core::pickle::{Object, Stack, TensorInfo};
    use candle_core::{Device, Tensor};
    use predify_runtime::Error;
    use std::collections::HashMap;
    use std::io::{Read, Seek, SeekFrom};
    use std::path::Path;

    /// The most bytes a checkpoint's `data.pkl` may have (64 MiB; a state dict's is a few KB).
    pub(super) const MAX_PICKLE_BYTES: u64 = 64 << 20;
    /// The most bytes of objects (estimated, copies from the pickle's memo included) reading
    /// the pickle may build: 256 MiB. This also bounds the time the reader takes.
    const MAX_PICKLE_WORK: u64 = 256 << 20;
    /// The deepest nesting of pickled objects (dropping and comparing them recurses).
    const MAX_PICKLE_DEPTH: u32 = 100;
    /// The most bytes of a zip's central directory, and the most entries in it.
    const MAX_DIRECTORY_BYTES: u64 = 16 << 20;
    const MAX_ENTRIES: u64 = 1 << 16;

    fn err<T>(path: &Path, msg: impl std::fmt::Display) -> Result<T> {
        usage(format!("{}: {msg}", path.display()))
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    }

    /// Whether `n` bytes from `start` lie within a file of `len` bytes (checked arithmetic).
    fn within(start: u64, n: u64, len: u64) -> bool {
        start.checked_add(n).is_some_and(|end| end <= len)
    }

    /// One member of the archive, from the central directory.
    struct Entry {
        method: u16,
        flags: u16,
        crc: u32,
        compressed: u64,
        size: u64,
        local_offset: u64,
    }

    /// A zip archive's directory and the open file.
    struct Archive<'p> {
        path: &'p Path,
        file: std::fs::File,
        len: u64,
        entries: HashMap<String, Entry>,
        /// Names in directory order.
        names: Vec<String>,
    }

    impl<'p> Archive<'p> {
        fn open(path: &'p Path) -> Result<Self> {
            let io = |e: std::io::Error| Error::Usage(format!("{}: {e}", path.display()));
            let mut file = std::fs::File::open(path).map_err(io)?;
            let len = file.metadata().map_err(io)?.len();
            // The end of central directory record (22 bytes + a comment of up to 64 KiB), and
            // the zip64 locator (20 bytes) that may precede it.
            let tail_len = len.min(22 + 0xFFFF + 20);
            let mut tail = vec![0u8; tail_len as usize];
            file.seek(SeekFrom::Start(len - tail_len)).and_then(|_| file.read_exact(&mut tail)).map_err(io)?;
            let eocd = (0..tail.len().saturating_sub(21))
                .rev()
                .find(|&i| u32_at(&tail, i) == 0x0605_4b50 && i + 22 + u16_at(&tail, i + 20) as usize == tail.len());
            let Some(eocd) = eocd else {
                return err(path, "not a valid zip archive (no end of central directory record)");
            };
            let e = &tail[eocd..];
            if u16_at(e, 4) != 0 || u16_at(e, 6) != 0 {
                return err(path, "multi-disk zip archives are not supported");
            }
            let (mut count, mut dir_size, mut dir_offset) = (u16_at(e, 10) as u64, u32_at(e, 12) as u64, u32_at(e, 16) as u64);
            if eocd >= 20 && u32_at(&tail, eocd - 20) == 0x0706_4b50 {
                // Zip64: the real values are in the zip64 end of central directory record.
                let at = u64_at(&tail, eocd - 20 + 8);
                let mut rec = [0u8; 56];
                if !within(at, 56, len) {
                    return err(path, "corrupt zip64 end of central directory locator");
                }
                file.seek(SeekFrom::Start(at)).and_then(|_| file.read_exact(&mut rec)).map_err(io)?;
                if u32_at(&rec, 0) != 0x0606_4b50 {
                    return err(path, "corrupt zip64 end of central directory record");
                }
                (count, dir_size, dir_offset) = (u64_at(&rec, 32), u64_at(&rec, 40), u64_at(&rec, 48));
            }
            if count > MAX_ENTRIES || dir_size > MAX_DIRECTORY_BYTES {
                return err(path, format!("zip directory of {count} entries / {dir_size} bytes is larger than supported ({MAX_ENTRIES} / {MAX_DIRECTORY_BYTES})"));
            }
            if !within(dir_offset, dir_size, len) {
                return err(path, "corrupt zip archive (the central directory lies outside the file)");
            }
            let mut dir = vec![0u8; dir_size as usize];
            file.seek(SeekFrom::Start(dir_offset)).and_then(|_| file.read_exact(&mut dir)).map_err(io)?;
            let mut entries = HashMap::new();
            let mut names = Vec::new();
            let mut at = 0usize;
            for _ in 0..count {
                if at + 46 > dir.len() || u32_at(&dir, at) != 0x0201_4b50 {
                    return err(path, "corrupt zip central directory");
                }
                let h = &dir[at..];
                let (name_len, extra_len, comment_len) = (u16_at(h, 28) as usize, u16_at(h, 30) as usize, u16_at(h, 32) as usize);
                let end = at + 46 + name_len + extra_len + comment_len;
                if end > dir.len() {
                    return err(path, "corrupt zip central directory");
                }
                let Ok(name) = std::str::from_utf8(&dir[at + 46..at + 46 + name_len]) else {
                    return err(path, "a zip entry's name is not UTF-8");
                };
                let mut entry = Entry {
                    method: u16_at(h, 10),
                    flags: u16_at(h, 8),
                    crc: u32_at(h, 16),
                    compressed: u32_at(h, 20) as u64,
                    size: u32_at(h, 24) as u64,
                    local_offset: u32_at(h, 42) as u64,
                };
                // Zip64 extra field: the 64-bit values of the fields saturated at 0xFFFFFFFF, in order.
                let mut extra = &dir[at + 46 + name_len..at + 46 + name_len + extra_len];
                while extra.len() >= 4 {
                    let (id, n) = (u16_at(extra, 0), u16_at(extra, 2) as usize);
                    let Some(body) = extra.get(4..4 + n) else {
                        return err(path, format!("corrupt extra field of zip entry `{name}`"));
                    };
                    if id == 0x0001 {
                        let mut vals = body.chunks_exact(8).map(|c| u64_at(c, 0));
                        for field in [&mut entry.size, &mut entry.compressed, &mut entry.local_offset] {
                            if *field == 0xFFFF_FFFF {
                                match vals.next() {
                                    Some(v) => *field = v,
                                    None => return err(path, format!("corrupt zip64 field of entry `{name}`")),
                                }
                            }
                        }
                    }
                    extra = &extra[4 + n..];
                }
                if entries.insert(name.to_string(), entry).is_some() {
                    return err(path, format!("zip entry `{name}` appears twice"));
                }
                names.push(name.to_string());
                at = end;
            }
            Ok(Self { path, file, len, entries, names })
        }

        /// The bytes of entry `name`, which must be stored uncompressed (as `torch.save` writes
        /// every entry), hold at most `max` bytes and match its CRC-32.
        fn read(&mut self, name: &str, max: u64) -> Result<Vec<u8>> {
            let path = self.path;
            let Some(e) = self.entries.get(name) else {
                return err(path, format!("the archive has no entry `{name}`"));
            };
            if e.flags & 1 != 0 {
                return err(path, format!("zip entry `{name}` is encrypted"));
            }
            if e.method != 0 || e.compressed != e.size {
                return err(path, format!("zip entry `{name}` is compressed (method {}); torch.save stores entries uncompressed, so only those are read", e.method));
            }
            if e.size > max {
                return err(path, format!("zip entry `{name}` has {} bytes, more than the {max} expected", e.size));
            }
            let io = |e: std::io::Error| Error::Usage(format!("{}: reading zip entry `{name}`: {e}", path.display()));
            let mut local = [0u8; 30];
            if !within(e.local_offset, 30, self.len) {
                return err(path, format!("zip entry `{name}` lies outside the file"));
            }
            self.file.seek(SeekFrom::Start(e.local_offset)).and_then(|_| self.file.read_exact(&mut local)).map_err(io)?;
            if u32_at(&local, 0) != 0x0403_4b50 {
                return err(path, format!("corrupt local header of zip entry `{name}`"));
            }
            let start = e.local_offset + 30 + u16_at(&local, 26) as u64 + u16_at(&local, 28) as u64;
            if !within(start, e.size, self.len) {
                return err(path, format!("zip entry `{name}` ({} bytes) extends past the end of the file", e.size));
            }
            let mut data = vec![0u8; e.size as usize];
            self.file.seek(SeekFrom::Start(start)).and_then(|_| self.file.read_exact(&mut data)).map_err(io)?;
            if crc32(&data) != e.crc {
                return err(path, format!("zip entry `{name}` is corrupt (CRC-32 mismatch)"));
            }
            Ok(data)
        }

        /// The one `…/data.pkl` entry, as Candle's reader would pick it.
        fn pickle_name(&self) -> Result<String> {
            let found: Vec<&String> = self.names.iter().filter(|n| n.ends_with("data.pkl")).collect();
            match found.as_slice() {
                [one] => Ok((*one).clone()),
                [] => err(self.path, "no `data.pkl` in the archive: not a torch.save checkpoint"),
                _ => err(self.path, format!("{} `data.pkl` entries in the archive, expected one", found.len())),
            }
        }
    }

    /// CRC-32 (IEEE), as zip uses.
    fn crc32(data: &[u8]) -> u32 {
        static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
        let table = TABLE.get_or_init(|| {
            let mut t = [0u32; 256];
            for (i, v) in t.iter_mut().enumerate() {
                let mut c = i as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                }
                *v = c;
            }
            t
        });
        !data.iter().fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8))
    }

    /// What scanning the pickle tracks per stack item: estimated bytes, nesting depth.
    #[derive(Clone, Copy)]
    struct Item {
        bytes: u64,
        depth: u32,
        mark: bool,
    }

    /// Candle's in-memory size of one object, roughly (an enum of strings, vectors, boxes).
    const OBJECT: u64 = 64;

    /// Walk the pickle's opcodes as Candle's reader will, tracking only sizes: every length is
    /// checked against the bytes left, and the objects built and copied (the memo's gets and
    /// puts clone whole objects, so a tiny pickle can ask for exponentially many) and their
    /// nesting stay within budget. Stops at STOP, as the reader does.
    fn scan_pickle(p: &[u8]) -> std::result::Result<(), String> {
        let mut at = 0usize;
        let mut stack: Vec<Item> = Vec::new();
        let mut memo: HashMap<u32, Item> = HashMap::new();
        let mut work = 0u64;
        let take = |at: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
            let s = p.get(*at..at.saturating_add(n)).ok_or_else(|| format!("truncated at byte {}", *at))?;
            *at += n;
            Ok(s)
        };
        let leaf = |bytes: u64| Item { bytes: OBJECT + bytes, depth: 1, mark: false };
        fn pop(stack: &mut Vec<Item>) -> std::result::Result<Item, String> {
            stack.pop().ok_or_else(|| "pops an empty stack".to_string())
        }
        fn to_marker(stack: &mut Vec<Item>) -> std::result::Result<Vec<Item>, String> {
            let m = stack.iter().rposition(|i| i.mark).ok_or("no mark to pop to")?;
            let items = stack.split_off(m + 1);
            stack.pop();
            Ok(items)
        }
        fn combine(items: &[Item]) -> Item {
            Item {
                bytes: items.iter().fold(OBJECT, |a, i| a.saturating_add(i.bytes)),
                depth: items.iter().map(|i| i.depth).max().unwrap_or(0) + 1,
                mark: false,
            }
        }
        // APPEND(S) / SETITEM(S): `items` move into the list or dict on top of the stack.
        fn merge(stack: &mut [Item], items: &[Item]) -> std::result::Result<(), String> {
            let last = stack.last_mut().ok_or("adds to an empty stack")?;
            last.bytes = items.iter().fold(last.bytes, |a, i| a.saturating_add(i.bytes));
            last.depth = items.iter().map(|i| i.depth + 1).fold(last.depth, u32::max);
            Ok(())
        }
        loop {
            let op = *take(&mut at, 1)?.first().unwrap_or(&0);
            let pushed: Option<Item> = match op {
                0x80 => {
                    take(&mut at, 1)?;
                    None
                }
                b'c' => {
                    // Two newline-terminated names.
                    let mut n = 0u64;
                    for _ in 0..2 {
                        let rest = p.get(at..).unwrap_or(&[]);
                        let line = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
                        at += line;
                        n += line as u64;
                    }
                    Some(leaf(n))
                }
                b'K' => take(&mut at, 1).map(|_| Some(leaf(0)))?,
                b'M' => take(&mut at, 2).map(|_| Some(leaf(0)))?,
                b'J' => take(&mut at, 4).map(|_| Some(leaf(0)))?,
                b'G' => take(&mut at, 8).map(|_| Some(leaf(0)))?,
                b'X' => {
                    let b = take(&mut at, 4)?;
                    let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                    if n > p.len() - at {
                        return Err(format!("a string of {n} bytes at byte {at}, with {} left", p.len() - at));
                    }
                    at += n;
                    Some(leaf(n as u64))
                }
                0x8a => {
                    let n = take(&mut at, 1)?[0] as usize;
                    if n > 8 {
                        return Err(format!("an integer of {n} bytes"));
                    }
                    take(&mut at, n)?;
                    Some(leaf(0))
                }
                b'Q' => {
                    let id = pop(&mut stack)?;
                    Some(combine(&[id]))
                }
                b't' => Some(combine(&to_marker(&mut stack)?)),
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(pop(&mut stack)?);
                    }
                    Some(combine(&items))
                }
                0x88 | 0x89 | b'N' | b'}' | b'd' | b')' | b']' => Some(leaf(0)),
                b'(' => Some(Item { bytes: OBJECT, depth: 1, mark: true }),
                b'a' => {
                    let v = pop(&mut stack)?;
                    merge(&mut stack, &[v])?;
                    None
                }
                b's' => {
                    let v = pop(&mut stack)?;
                    let k = pop(&mut stack)?;
                    merge(&mut stack, &[k, v])?;
                    None
                }
                b'e' | b'u' => {
                    let items = to_marker(&mut stack)?;
                    merge(&mut stack, &items)?;
                    None
                }
                b'b' | b'R' | 0x81 => {
                    let b = pop(&mut stack)?;
                    let a = pop(&mut stack)?;
                    Some(combine(&[a, b]))
                }
                b'h' | b'j' => {
                    let id = if op == b'h' { take(&mut at, 1)?[0] as u32 } else {
                        let b = take(&mut at, 4)?;
                        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
                    };
                    let item = *memo.get(&id).ok_or_else(|| format!("memo {id} is not set"))?;
                    Some(item)
                }
                b'q' | b'r' => {
                    let id = if op == b'q' { take(&mut at, 1)?[0] as u32 } else {
                        let b = take(&mut at, 4)?;
                        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
                    };
                    let top = *stack.last().ok_or("memo put on an empty stack")?;
                    work = work.saturating_add(top.bytes);
                    memo.insert(id, top);
                    None
                }
                b'.' => return Ok(()),
                other => return Err(format!("unsupported opcode 0x{other:02x} at byte {}", at - 1)),
            };
            if let Some(item) = pushed {
                // A built object costs its own size; a memo get copies the whole object.
                work = work.saturating_add(if matches!(op, b'h' | b'j') { item.bytes } else { OBJECT });
                if item.depth > MAX_PICKLE_DEPTH {
                    return Err(format!("objects nested more than {MAX_PICKLE_DEPTH} deep"));
                }
                stack.push(item);
            }
            if let Some(top) = stack.last() {
                if top.depth > MAX_PICKLE_DEPTH {
                    return Err(format!("objects nested more than {MAX_PICKLE_DEPTH} deep"));
                }
            }
            if work > MAX_PICKLE_WORK {
                return Err(format!("builds more than {MAX_PICKLE_WORK} bytes of objects"));
            }
        }
    }

    /// The top-level object of the archive's pickle, after the scan.
    fn top_object(archive: &mut Archive<'_>) -> Result<(Object, std::path::PathBuf)> {
        let path = archive.path;
        let name = archive.pickle_name()?;
        let bytes = archive.read(&name, MAX_PICKLE_BYTES)?;
        if let Err(e) = scan_pickle(&bytes) {
            return err(path, format!("`{name}` is not a checkpoint pickle this reader accepts: {e}"));
        }
        let obj = guarded(path, "the pickle reader", || {
            let mut stack = Stack::empty();
            stack.read_loop(&mut std::io::Cursor::new(&bytes))?;
            stack.finalize()
        })?
        .map_err(|e| Error::Usage(format!("{}: `{name}`: {e}", path.display())))?;
        // A TorchScript module wraps the dict; any other built object holds no state dict
        // (Candle's reader skips it).
        let obj = match obj {
            Object::Build { callable, args } => match *callable {
                Object::Reduce { callable, .. } => match *callable {
                    Object::Class { module_name, class_name } if module_name == "__torch__" && class_name == "Module" => *args,
                    _ => Object::None,
                },
                _ => Object::None,
            },
            obj => obj,
        };
        let dir = std::path::PathBuf::from(name.strip_suffix(".pkl").unwrap_or(&name));
        Ok((obj, dir))
    }

    /// The tensors of the state dict `obj` (`None` for values that are not tensors).
    fn tensor_infos(path: &Path, obj: Object, dir: &Path) -> Result<Vec<TensorInfo>> {
        let Object::Dict(items) = obj else { return Ok(Vec::new()) };
        let mut infos = Vec::new();
        for (name, value) in items {
            let shown = match &name {
                Object::Unicode(s) => s.clone(),
                _ => "?".to_string(),
            };
            // Candle's reader indexes argument tuples without checking their length.
            match guarded(path, "the pickle reader", || value.into_tensor_info(name, dir))? {
                Ok(Some(info)) => infos.push(info),
                Ok(None) => {}
                Err(e) => return err(path, format!("tensor `{shown}`: {e}")),
            }
        }
        Ok(infos)
    }

    /// The state dict: the top-level object, or its entry `key`.
    fn state_dict(path: &Path, obj: Object, key: Option<&str>) -> Result<Object> {
        let Some(key) = key else { return Ok(obj) };
        match obj {
            Object::Dict(items) => match items.into_iter().find(|(k, _)| matches!(k, Object::Unicode(s) if s == key)) {
                Some((_, v)) => Ok(v),
                None => err(path, format!("the checkpoint has no `{key}` entry")),
            },
            _ => err(path, format!("the checkpoint is not a dict, so it has no `{key}` entry")),
        }
    }

    /// Whether the top-level object is itself a state dict (holds tensors).
    pub(super) fn has_top_level_tensors(path: &Path) -> Result<bool> {
        let mut archive = Archive::open(path)?;
        let (obj, dir) = top_object(&mut archive)?;
        Ok(!tensor_infos(path, obj, &dir)?.is_empty())
    }

    /// Every tensor of the state dict (the top-level object, or its entry `key`).
    pub(super) fn read(path: &Path, key: Option<&str>) -> Result<Vec<(String, Tensor)>> {
        let mut archive = Archive::open(path)?;
        let (obj, dir) = top_object(&mut archive)?;
        let infos = tensor_infos(path, state_dict(path, obj, key)?, &dir)?;
        let mut seen = std::collections::HashSet::new();
        // Check every claim before reading any data.
        let mut plan = Vec::with_capacity(infos.len());
        for info in infos {
            if !seen.insert(info.name.clone()) {
                return err(path, format!("tensor `{}` appears twice", info.name));
            }
            let (start, bytes) = claimed_bytes(path, &info, &archive)?;
            plan.push((info, start, bytes));
        }
        let mut out = Vec::with_capacity(plan.len());
        for (info, start, bytes) in plan {
            let data = archive.read(&info.path, archive.entries[&info.path].size)?;
            out.push((info.name.clone(), build(path, &info, &data[start..start + bytes])?));
        }
        Ok(out)
    }

    /// Where a tensor's bytes lie in its storage entry, checked against what the entry holds:
    /// the claimed size is a checked product, compared before anything is allocated.
    fn claimed_bytes(path: &Path, info: &TensorInfo, archive: &Archive<'_>) -> Result<(usize, usize)> {
        let name = &info.name;
        let layout = &info.layout;
        if !layout.is_contiguous() && !layout.is_fortran_contiguous() {
            return err(path, format!("tensor `{name}` is not contiguous (strides {:?}), which is not supported", layout.stride()));
        }
        let esize = info.dtype.size_in_bytes();
        let dims = layout.dims();
        let numel = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let bytes = numel.and_then(|n| n.checked_mul(esize));
        let storage = info.storage_size.checked_mul(esize);
        let Some(entry) = archive.entries.get(&info.path) else {
            return err(path, format!("tensor `{name}`: its storage `{}` is not in the archive", info.path));
        };
        let start = layout.start_offset();
        match (bytes, storage) {
            (Some(b), Some(s)) if s as u64 == entry.size && start.checked_add(b).is_some_and(|end| end <= s) => Ok((start, b)),
            _ => err(
                path,
                format!(
                    "tensor `{name}` claims shape {dims:?} of {:?} from byte {start} of a storage of {} elements, but its entry `{}` holds {} bytes",
                    info.dtype, info.storage_size, info.path, entry.size
                ),
            ),
        }
    }

    /// The tensor of `info` from its (checked) bytes.
    fn build(path: &Path, info: &TensorInfo, bytes: &[u8]) -> Result<Tensor> {
        let ctx = |e: candle_core::Error| Error::Usage(format!("{}: tensor `{}`: {e}", path.display(), info.name));
        let dims = info.layout.dims();
        if info.layout.is_contiguous() || dims.len() <= 1 {
            return Tensor::from_raw_buffer(bytes, info.dtype, dims, &Device::Cpu).map_err(ctx);
        }
        // Fortran order: the reversed shape, permuted back (as Candle's reader does).
        let rev: Vec<usize> = dims.iter().rev().copied().collect();
        let t = Tensor::from_raw_buffer(bytes, info.dtype, &rev, &Device::Cpu).map_err(ctx)?;
        t.permute((0..dims.len()).rev().collect::<Vec<_>>()).map_err(ctx)
    }
}
