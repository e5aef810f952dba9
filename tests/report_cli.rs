//! `predify-mnist report` and the main job's `--hyper` / `--alpha-zero` end to end on a small
//! synthetic IDX data set: the files are written, labelled, and carry the intervals.

mod cli_common;
mod train_common;

use cli_common::{run, write_idx_dir};
use predify::eval::Report;
use train_common::temp_dir;

#[test]
fn report_and_hyperparameter_flags() {
    let dir = temp_dir("cli-report");
    let data = dir.join("idx");
    std::fs::create_dir_all(&data).unwrap();
    write_idx_dir(&data, 48, 24);
    let out = dir.join("out");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let common = ["--idx-dir", d, "--out", o, "--batch-size", "16", "--val-size", "16", "-T", "2", "--eval-batch", "10", "--threads", "2", "--no-progress"];

    // The main job with the paper's hyperparameters and the α = 0 pass.
    let (ok, stdout, stderr) = run(&[&common[..], &["--epochs", "1", "--hyper", "paper", "--alpha-zero"]].concat());
    assert!(ok, "failed: {stderr}\n{stdout}");
    assert!(stdout.contains("[paper]") && stdout.contains("[paper α=0]") && stdout.contains("β=0.800 λ=0.100 α=0.0100"), "{stdout}");
    let r: Report = serde_json::from_str(&std::fs::read_to_string(out.join("robustness-alpha0.json")).unwrap()).unwrap();
    assert_eq!(r.label, "paper α=0");
    assert!(r.hyperparameters.iter().all(|h| *h == [0.8, 0.1, 0.0]), "{:?}", r.hyperparameters);

    // The report: reuses the checkpoint just written; three configurations by default.
    let (ok, stdout, stderr) = run(&[&["report"][..], &common[..], &["--eval-limit", "12"]].concat());
    assert!(ok, "report failed: {stderr}\n{stdout}");
    assert!(stdout.contains("checkpoint.safetensors"), "the report should reuse the checkpoint: {stdout}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in ["## Summary", "`predify`", "`paper α=0`", "error term's share", "relative error", "corruptions-examples.png", "Δlast", "fog", "canny_edges"] {
        assert!(md.contains(needle), "report.md lacks `{needle}`");
    }
    // The summary's effects each carry their interval: clean, every noise, the corruptions.
    let row = md.lines().find(|l| l.starts_with("| predify |")).expect("summary row");
    assert!(row.contains("gauss 0.50 ") && row.contains("gauss 1.00 ") && row.contains("s&p 0.20 ") && row.matches('[').count() >= 6, "{row}");
    for stem in ["noise-predify", "noise-paper", "noise-paper-alpha0", "corruptions-predify", "corruptions-paper", "corruptions-paper-alpha0"] {
        for ext in ["csv", "json", "png"] {
            assert!(out.join(format!("{stem}.{ext}")).is_file(), "{stem}.{ext} not written");
        }
        assert!(md.contains(&format!("({stem}.png)")), "report.md does not link {stem}.png");
    }
    let c: Report = serde_json::from_str(&std::fs::read_to_string(out.join("corruptions-paper.json")).unwrap()).unwrap();
    assert_eq!((c.images, c.results.len(), c.label.as_str()), (12, 15, "paper"));
    let s = c.corruption_summary.expect("corruption summary");
    assert_eq!((s.corruptions, s.timesteps.len(), s.relative_error.len()), (15, 3, 3));
    let png = std::fs::read(out.join("corruptions-examples.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let _ = std::fs::remove_dir_all(&dir);
}
