//! `predify-mnist` rejects out-of-range numbers on the command line with an error naming the
//! flag, before any data is loaded (the data directory here is empty), and never panics.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let data = std::env::temp_dir().join(format!("predify-cli-args-{}", std::process::id()));
    std::fs::create_dir_all(&data).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_predify-mnist"))
        .args(["--data-dir", data.to_str().unwrap(), "--out", data.join("out").to_str().unwrap(), "--no-progress"])
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The attack's sweep is checked before any data is loaded (the data directory is empty): an
/// error naming the flag, no panic.
#[test]
fn attack_sweeps_are_bounded() {
    for (args, flag) in [(&["--attack-timesteps", "1,101"][..], "--attack-timesteps 101"), (&["--attack-timesteps", "0"], "--attack-timesteps"), (&["--attack-batch", "100000"], "--attack-batch"), (&["--eps", "-0.1"], "--eps")] {
        let data = std::env::temp_dir().join(format!("predify-cli-attack-{}", std::process::id()));
        let out = Command::new(env!("CARGO_BIN_EXE_predify-mnist")).args(["attack", "--data-dir", data.to_str().unwrap(), "--no-progress"]).args(args).output().unwrap();
        let (ok, stderr) = (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(!ok && !stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains(flag) && !stderr.contains("MNIST"), "{args:?}: error does not name {flag}: {stderr}");
    }
}

#[test]
fn bad_numbers_are_rejected_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--sigmas", "0.5,NaN"], "--sigmas"),
        (&["--sigmas", "-1"], "--sigmas"),
        (&["--sigmas", "inf"], "--sigmas"),
        (&["--sp", "1.5"], "--sp"),
        (&["--sp", "-0.1"], "--sp"),
        (&["--sp", "nan"], "--sp"),
        (&["--lr", "0"], "--lr"),
        (&["--lr", "-0.1"], "--lr"),
        (&["--lr", "inf"], "--lr"),
        (&["--lr", "NaN"], "--lr"),
        (&["--weight-decay", "-1"], "--weight-decay"),
        (&["--weight-decay", "nan"], "--weight-decay"),
        (&["--momentum", "1"], "--momentum"),
        (&["--momentum", "-0.5"], "--momentum"),
        (&["--momentum", "NaN"], "--momentum"),
        (&["--cosine", "0"], "--cosine"),
        (&["--cosine", "nan"], "--cosine"),
        (&["--cosine", "2,0.5"], "--cosine"),
        (&["--cosine", "2,1,-1"], "--cosine"),
        (&["--cosine", "2,1,inf"], "--cosine"),
        (&["-T", "18446744073709551615"], "--timesteps"),
        (&["-T", "1000000000000"], "--timesteps"),
        (&["--timesteps", "10001"], "--timesteps"),
        (&["-T", "-1"], "-T"),
        (&["--batch-size", "0"], "--batch-size"),
        (&["--batch-size", "18446744073709551615"], "--batch-size"),
        (&["--eval-batch", "0"], "--eval-batch"),
        (&["--eval-batch", "1000000000"], "--eval-batch"),
        (&["--tune-batch", "0"], "--tune-batch"),
        (&["--tune-batch", "1000000000"], "--tune-batch"),
        (&["--noise-draws", "0"], "--noise-draws"),
        (&["--noise-draws", "101"], "--noise-draws"),
        (&["--tune-noise", "gauss:-1"], "gauss:-1"),
        (&["--tune-noise", "sp:1.5"], "sp:1.5"),
        (&["--tune-noise", "gauss:nan"], "gauss:nan"),
    ];
    for (args, flag) in cases {
        let (ok, stderr) = run(args);
        assert!(!ok, "{args:?} accepted");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(first.contains(flag), "{args:?}: error does not name {flag}: {first}");
        // a usage error (exit status 2, before any data loading), not a failure of the job
        assert!(!stderr.contains("predify-mnist: error:"), "{args:?} reached the job: {stderr}");
    }
    // the same commands with in-range values get past argument parsing (they fail on the empty
    // data directory instead, with an error that names no flag)
    let (ok, stderr) = run(&["--idx-dir", "/nonexistent-predify-dir", "-T", "10000", "--sp", "1", "--momentum", "0.99", "--cosine", "1,1,0"]);
    assert!(!ok && !stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("-T/--timesteps") && !stderr.contains("--momentum") && !stderr.contains("--cosine"), "{stderr}");
}

fn report(timesteps: serde_json::Value, rows: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "network": "PMnist8", "label": "predify", "images": 10, "timesteps": timesteps, "batch_size": 10, "seed": 0,
        "hyperparameters": [[0.8, 0.1, 0.01]], "results": rows, "seconds": 1.0
    })
}

fn row(ff: f64, acc: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"noise": {"kind": "gaussian", "level": 0.5}, "images": 10, "feedforward": ff, "timesteps": acc})
}

#[test]
fn plot_rejects_malformed_reports_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("predify-cli-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plot = |name: &str, r: &serde_json::Value| {
        let json = dir.join(format!("{name}.json"));
        std::fs::write(&json, serde_json::to_string(r).unwrap()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_predify-mnist"))
            .args(["plot", json.to_str().unwrap(), dir.join(format!("{name}.png")).to_str().unwrap()])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned(), json.display().to_string())
    };
    let good = report(2.into(), serde_json::json!([row(0.5, serde_json::json!([0.5, 0.6, 0.7]))]));
    let (ok, stderr, _) = plot("good", &good);
    assert!(ok, "a valid report does not plot: {stderr}");
    assert!(dir.join("good.png").is_file());

    let bad = [
        ("huge-t", report(serde_json::json!(1_000_000_000_000u64), serde_json::json!([row(0.5, serde_json::json!([0.5]))]))),
        ("huge-t-float", report(serde_json::json!(1e12), serde_json::json!([row(0.5, serde_json::json!([0.5]))]))),
        ("max-t", report(serde_json::json!(u64::MAX), serde_json::json!([row(0.5, serde_json::json!([0.5]))]))),
        ("empty-row", report(2.into(), serde_json::json!([row(0.5, serde_json::json!([]))]))),
        ("short-row", report(2.into(), serde_json::json!([row(0.5, serde_json::json!([0.5, 0.6]))]))),
        ("no-rows", report(2.into(), serde_json::json!([]))),
        ("above-one", report(2.into(), serde_json::json!([row(0.5, serde_json::json!([0.5, 1.5, 0.7]))]))),
        ("negative", report(2.into(), serde_json::json!([row(0.5, serde_json::json!([0.5, -0.1, 0.7]))]))),
        ("bad-ff", report(2.into(), serde_json::json!([row(7.0, serde_json::json!([0.5, 0.6, 0.7]))]))),
    ];
    for (name, r) in &bad {
        let (ok, stderr, json) = plot(name, r);
        assert!(!ok, "{name} plotted");
        assert!(!stderr.contains("panicked"), "{name} panicked: {stderr}");
        assert!(stderr.contains(&json), "{name}: error does not name the file: {stderr}");
        assert!(!dir.join(format!("{name}.png")).exists(), "{name}: a plot was written");
    }
}

#[test]
fn through_time_flags_are_checked_at_parse_time() {
    let cases: &[(&[&str], &str)] = &[
        (&["--through-time", "0"], "--through-time 0: expected 1..=100"),
        (&["--through-time", "101"], "--through-time 101: expected 1..=100"),
        (&["--through-time", "-1"], "--through-time"),
        (&["--through-time", "x"], "--through-time"),
        (&["--through-time", "3", "--resume"], "--resume"),
        (&["--through-time", "3", "--feedback", "f.safetensors"], "--feedback"),
        (&["--through-time", "3", "--through-time-semantics", "both"], "--through-time-semantics both"),
        (&["--through-time", "3", "--through-time-loss", "mean"], "--through-time-loss mean"),
        (&["--through-time-semantics", "exact"], "only with --through-time"),
        (&["--through-time-loss", "sum"], "only with --through-time"),
    ];
    for (args, want) in cases {
        let (ok, stderr) = run(args);
        assert!(!ok, "{args:?} accepted");
        let first = stderr.lines().next().unwrap_or("");
        assert!(first.contains(want), "{args:?}: expected `{want}` in the first line: {first}");
        assert!(!stderr.contains("predify-mnist: error:") && !stderr.contains("panicked"), "{args:?} reached the job: {stderr}");
    }
    // a subcommand does not train through time
    let out = Command::new(env!("CARGO_BIN_EXE_predify-mnist")).args(["report", "--through-time", "2"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.lines().next().unwrap_or("").contains("cannot be combined with a command"), "{stderr}");
    // in-range values get past parsing (and fail on the missing data instead)
    let (ok, stderr) =
        run(&["--idx-dir", "/nonexistent-predify-dir", "--through-time", "100", "--through-time-loss", "sum", "--through-time-semantics", "exact"]);
    assert!(!ok && !stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("predify-mnist: error:") && !stderr.contains("--through-time"), "{stderr}");
    // --help lists the flags
    let out = Command::new(env!("CARGO_BIN_EXE_predify-mnist")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--through-time T", "--through-time-loss", "--through-time-semantics"] {
        assert!(help.contains(flag), "--help does not list {flag}");
    }
}
