//! Shared helpers of the `predify-mnist` end-to-end tests (`train_cli`, `report_cli`): a small
//! synthetic MNIST in IDX files and a way to run the binary.
//!
//! Kept apart from `train_common` because `CARGO_BIN_EXE_predify-mnist` only exists for tests
//! built with the binary's features (`data`, `onnx`, `train`); the test crate must also declare
//! `mod train_common;`, whose synthetic sets these files hold.
#![allow(dead_code)]

use crate::train_common::synthetic_set;
use predify::data::idx::{self, IdxArray};
use std::path::Path;
use std::process::Command;

/// Writes the four MNIST files into `dir`: `n_train` training and `n_test` test images
/// ([`synthetic_set`] with seeds 1 and 2), the images gzipped and the labels plain, so that
/// both kinds of file are read.
pub fn write_idx_dir(dir: &Path, n_train: usize, n_test: usize) {
    for (prefix, n, seed) in [("train", n_train, 1), ("t10k", n_test, 2)] {
        let s = synthetic_set(n, seed);
        idx::write(dir.join(format!("{prefix}-images-idx3-ubyte.gz")), s.images(), true).unwrap();
        idx::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), &IdxArray::new(vec![n], s.labels().to_vec()).unwrap(), false).unwrap();
    }
}

/// Runs `predify-mnist` with `args` from the crate root; returns (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_predify-mnist")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}
