//! Shared helper of the data-loading tests (`data_idx`, `data_obtain`): a scratch directory.
#![allow(dead_code)]

use anyhow::Result;
use std::path::PathBuf;

/// A scratch directory `predify-{tag}-{pid}` under the system's temporary directory, emptied
/// when created (a killed earlier run may have left one) and removed on drop, also when an
/// assertion fails. The pid keeps concurrent test processes apart; `tag` keeps the cases of
/// one process apart, so each test gives a distinct one (prefixed with the test's name).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates the directory for `tag`.
    pub fn new(tag: &str) -> Result<Self> {
        let d = std::env::temp_dir().join(format!("predify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d)?;
        Ok(Self(d))
    }

    /// The path of `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
