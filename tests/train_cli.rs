//! The `predify-mnist` command end to end on a small synthetic IDX data set (train, resume,
//! evaluate, table and files), and its errors for missing or corrupt data files.

mod cli_common;
mod train_common;

use cli_common::{run, write_idx_dir};
use std::path::Path;
use train_common::temp_dir;

#[test]
fn main_job_runs_end_to_end_and_resumes() {
    let dir = temp_dir("cli-e2e");
    let data = dir.join("idx");
    std::fs::create_dir_all(&data).unwrap();
    write_idx_dir(&data, 96, 40);
    let out = dir.join("out");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let common = ["--idx-dir", d, "--out", o, "--batch-size", "16", "--val-size", "16", "-T", "3", "--sigmas", "0.5", "--sp", "0.1", "--eval-batch", "20", "--threads", "2", "--no-progress"];
    let (ok, stdout, stderr) = run(&[&common[..], &["--epochs", "1"]].concat());
    println!("{stdout}\n{stderr}");
    assert!(ok, "failed: {stderr}");
    for needle in ["feedback training", "epoch 1: train pc1", "held-out", "robustness", "noise", "t3", "gauss 0.50", "s&p 0.10", "40 images"] {
        assert!(stdout.contains(needle), "stdout lacks `{needle}`");
    }
    for f in ["checkpoint.safetensors", "robustness.csv", "robustness.json", "robustness.png"] {
        assert!(out.join(f).is_file(), "{f} not written");
    }
    let ck = predify::train::Checkpoint::load(out.join("checkpoint.safetensors")).unwrap();
    assert_eq!((ck.network.as_str(), ck.position.epoch, ck.position.global_step), ("PMnist8", 1, 5));

    // --resume with one more epoch continues from the checkpoint.
    let (ok, stdout, stderr) = run(&[&common[..], &["--epochs", "2", "--resume"]].concat());
    assert!(ok, "resume failed: {stderr}");
    assert!(stdout.contains("resuming from") && stdout.contains("epoch 2: train"), "{stdout}");
    let ck = predify::train::Checkpoint::load(out.join("checkpoint.safetensors")).unwrap();
    assert_eq!((ck.position.epoch, ck.position.global_step), (2, 10));
    // the trained feedback weights load back for evaluation only
    let (ok, stdout, stderr) = run(&[&common[..], &["--feedback", out.join("checkpoint.safetensors").to_str().unwrap(), "--tune-steps", "1", "--tune-batch", "8"]].concat());
    assert!(ok, "--feedback failed: {stderr}");
    assert!(stdout.contains("training skipped") && stdout.contains("robustness after tuning"), "{stdout}");
    assert!(out.join("robustness-tuned.png").is_file());
    let tuning = std::fs::read_to_string(out.join("tuning.csv")).unwrap();
    assert!(tuning.starts_with("step,loss,pc1_beta,pc1_lambda,pc1_alpha,pc2_beta") && tuning.lines().count() == 2, "{tuning}");
    // so do Predify's per-pcoder checkpoints, given as their directory
    let pth = dir.join("pth");
    std::fs::create_dir_all(&pth).unwrap();
    for f in ["pmnist8_pc1_004.pth", "pmnist8_pc2_004.pth"] {
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(f), pth.join(f)).unwrap();
    }
    let (ok, stdout, stderr) = run(&[&common[..], &["--feedback", pth.to_str().unwrap()]].concat());
    assert!(ok, "--feedback DIR failed: {stderr}");
    assert!(stdout.contains("feedback weights: loaded from") && stdout.contains("training skipped"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_or_corrupt_data_files_are_clear_errors() {
    let dir = temp_dir("cli-errors");
    let out = dir.join("out");
    // an empty directory
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, _, stderr) = run(&["--idx-dir", empty.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-progress"]);
    assert!(!ok);
    assert!(stderr.contains("empty") && stderr.contains("train-images-idx3-ubyte"), "{stderr}");
    // a truncated image file
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    write_idx_dir(&bad, 20, 20);
    let f = bad.join("t10k-labels-idx1-ubyte");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 3]).unwrap();
    let (ok, _, stderr) = run(&["--idx-dir", bad.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-progress"]);
    assert!(!ok);
    assert!(stderr.contains("t10k-labels-idx1-ubyte") && stderr.contains("truncated"), "{stderr}");
    // a checkpoint that is not one
    write_idx_dir(&bad, 20, 20);
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint at all").unwrap();
    let (ok, _, stderr) = run(&["--idx-dir", bad.to_str().unwrap(), "--out", out.to_str().unwrap(), "--feedback", junk.to_str().unwrap(), "--no-progress"]);
    assert!(!ok);
    assert!(stderr.contains("junk.safetensors"), "{stderr}");
    // a bad flag
    let (ok, _, stderr) = run(&["--sigmas", "x"]);
    assert!(!ok && stderr.contains("--sigmas"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
