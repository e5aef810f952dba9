//! Atomic file writes: checkpoints, backbones and reports are never left half-written.

use super::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write a file atomically: `write` fills a temporary file in the same directory, which is
/// synced and renamed over `path`, then the directory is synced. If `write` fails (or the
/// process dies), `path` keeps its previous contents and the temporary file is removed (or, after
/// a crash, left under a hidden `.{name}.tmp-{pid}` name that is never read).
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> Result<(), Error> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| Error::Io { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| Error::Config(format!("{}: not a file name", path.display())))?;
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        write(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Io { path: path.to_path_buf(), source: e });
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Io { path: path.to_path_buf(), source: e });
    }
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
