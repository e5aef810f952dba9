//! `predify-bench`: times predified networks and the runtime's convolution kernels.
//!
//! Human mode (default) runs, each in a fresh process so that peak memory does not mix, one
//! PVGG16 timestep at batch 1 and 4 (random weights, 224×224) and the MNIST-scale net at
//! batch 64, then the op-level table of `shared/NOTES-candle.md` for our kernels next to
//! Candle's ops:
//!
//! ```text
//! predify-bench [--threads T] [--timesteps K] [--model M] [--batch N] [--no-ops | --ops-only]
//! ```
//!
//! (`--model` / `--batch` narrow the three runs, e.g. `--model mnist --no-ops`.)
//!
//! Machine-readable mode prints one JSON object per run (per op and implementation with `--ops`):
//!
//! ```text
//! predify-bench --json --model pvgg16|mnist --batch N --threads T --timesteps K
//! predify-bench --json --workload train --model pvgg16|mnist --batch N --threads T --timesteps K
//! predify-bench --json --workload eval --model mnist [--batches 64,256,500] --threads T [--timesteps 10]
//! predify-bench --json --ops --threads T
//! ```
//!
//! Workloads (`--workload`, default `timestep`):
//!
//! * `timestep`: see below.
//! * `train`: Predify's feedback-training step, K + 1 of them on one random batch (the first a
//!   warm-up): the t = 0 pass (the feedforward drives are the representations), per pcoder the
//!   reconstruction MSE against the representation below (the image for the first) and its
//!   gradient w.r.t. the predictor weights, then one SGD step (lr 0.001, weight decay 5e-4, no
//!   momentum: the original's `examples/PVGG16/train_config.toml`) on the predictor weights;
//!   `step_s` is the median of the K timed steps.
//! * `eval`: evaluation throughput: for each batch size of `--batches` (or `--batch`), one
//!   warm-up and `--reps` timed runs of T timesteps on a fresh state (T = `--timesteps`, 10
//!   unless given; the t = 0 pass is the first of the T); image-timesteps per second =
//!   batch·T / median run time; the best batch size is reported with the whole grid.
//!
//! A run is `K + 1` backbone passes on one random batch: pass t = 0 (representations = the
//! feedforward values; it also warms up allocations and caches) and the K timesteps t ≥ 1 with
//! the full update; `timestep_s` is the median time of those K. `peak_rss_bytes` is the
//! process's `VmHWM`. Threads: a rayon global pool of T threads that runs the model,
//! `RAYON_NUM_THREADS=T`, and `CANDLE_NUM_THREADS=1` unless set (Candle's element-wise pool
//! would spin against rayon's). `scripts/bench.sh` runs this next to `scripts/bench_original.py`
//! (the original Predify, same arguments and fields) and, for some rows,
//! `scripts/bench_reference.py` (a PyTorch re-implementation of the dynamics).

#[path = "predify_bench/models.rs"]
mod models;
#[path = "predify_bench/ops.rs"]
mod ops;
#[path = "predify_bench/util.rs"]
mod util;

use predify::Predified as _;
use candle_core::{Device, Tensor};
use models::{BoxResult, Which};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;
use util::{field, median, mib, num, nums, peak_rss_bytes, string};

const USAGE: &str = "usage:
  predify-bench [--threads T] [--timesteps K] [--model M] [--batch N] [--no-ops | --ops-only]
  predify-bench --json --model pvgg16|mnist --batch N [--threads T] [--timesteps K]
  predify-bench --json --workload train --model pvgg16|mnist --batch N [--threads T] [--timesteps K]
  predify-bench --json --workload eval --model pvgg16|mnist [--batches 64,256,500 | --batch N] [--threads T] [--timesteps T] [--reps R]
  predify-bench --json --ops [--threads T]";

/// What a `--json` model run times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Timestep,
    Train,
    Eval,
}

impl Workload {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "timestep" => Some(Workload::Timestep),
            "train" => Some(Workload::Train),
            "eval" => Some(Workload::Eval),
            _ => None,
        }
    }
}

/// The human mode's model runs.
const CONFIGS: [(Which, usize); 3] = [(Which::Pvgg16, 1), (Which::Pvgg16, 4), (Which::Mnist, 64)];

struct Args {
    json: bool,
    ops: bool,
    no_ops: bool,
    ops_only: bool,
    model: Option<Which>,
    batch: Option<usize>,
    threads: usize,
    /// `None`: the workload's default (3; 10 for `eval`).
    timesteps: Option<usize>,
    workload: Workload,
    batches: Vec<usize>,
    reps: usize,
}

fn parse_args() -> Result<Args, String> {
    let default_threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&t: &usize| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let mut a = Args {
        json: false,
        ops: false,
        no_ops: false,
        ops_only: false,
        model: None,
        batch: None,
        threads: default_threads,
        timesteps: None,
        workload: Workload::Timestep,
        batches: vec![64, 256, 500],
        reps: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--json" => a.json = true,
            "--ops" => a.ops = true,
            "--no-ops" => a.no_ops = true,
            "--ops-only" => a.ops_only = true,
            "--model" => {
                let v = value("--model")?;
                a.model = Some(Which::parse(&v).ok_or_else(|| format!("unknown model `{v}` (pvgg16, mnist)"))?);
            }
            "--batch" => a.batch = Some(value("--batch")?.parse().map_err(|e| format!("--batch: {e}"))?),
            "--threads" => a.threads = value("--threads")?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--timesteps" => a.timesteps = Some(value("--timesteps")?.parse().map_err(|e| format!("--timesteps: {e}"))?),
            "--workload" => {
                let v = value("--workload")?;
                a.workload = Workload::parse(&v).ok_or_else(|| format!("unknown workload `{v}` (timestep, train, eval)"))?;
            }
            "--batches" => {
                a.batches = value("--batches")?
                    .split(',')
                    .map(|b| b.trim().parse().map_err(|e| format!("--batches: {e}")))
                    .collect::<Result<_, String>>()?;
            }
            "--reps" => a.reps = value("--reps")?.parse().map_err(|e| format!("--reps: {e}"))?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if a.threads == 0 || a.timesteps == Some(0) || a.batch == Some(0) || a.reps == 0 || a.batches.is_empty() || a.batches.contains(&0) {
        return Err("--threads, --timesteps, --batch, --batches and --reps must be at least 1".into());
    }
    let needs_batch = a.workload != Workload::Eval;
    if a.json && !a.ops && (a.model.is_none() || (needs_batch && a.batch.is_none())) {
        return Err("--json needs --model and --batch (or --ops; `--workload eval` takes --batches)".into());
    }
    if a.workload != Workload::Timestep && !a.json {
        return Err("--workload train|eval needs --json".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("predify-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Candle reads RAYON_NUM_THREADS for its own parallel loops; our kernels and gemm use the
    // rayon global pool. Both get the same count. (Single-threaded here: no other thread reads
    // the environment yet.)
    std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string());
    // Candle's own element-wise pool would spin against rayon's (CANDLE_NUM_THREADS overrides).
    predify::process::prefer_rayon_threads();
    // Reuse freed tensor buffers instead of page-faulting fresh ones each timestep.
    predify::process::tune_allocator();
    if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(args.threads).build_global() {
        eprintln!("predify-bench: cannot build the thread pool: {e}");
        return ExitCode::FAILURE;
    }
    let r = if args.json && args.ops {
        json_ops(args.threads)
    } else if args.json {
        // The run itself on a worker of the pool: the kernels' parallel loops then start from
        // inside the pool instead of waking it from outside for every op.
        let (model, batch) = (args.model.unwrap_or(Which::Mnist), args.batch.unwrap_or(1));
        rayon::scope(|_| {
            match args.workload {
                Workload::Timestep => run_model(model, batch, args.threads, args.timesteps.unwrap_or(3)),
                Workload::Train => run_train(model, batch, args.threads, args.timesteps.unwrap_or(3)),
                Workload::Eval => {
                    let grid = args.batch.map_or_else(|| args.batches.clone(), |b| vec![b]);
                    run_eval(model, &grid, args.threads, args.timesteps.unwrap_or(10), args.reps)
                }
            }
            .map_err(|e| e.to_string())
        })
            .map(|j| println!("{j}"))
            .map_err(|e| e.into())
    } else {
        human(&args)
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("predify-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One model run; returns its JSON object.
fn run_model(which: Which, batch: usize, threads: usize, timesteps: usize) -> BoxResult<String> {
    let tag = format!("[predify-bench] {} batch {batch}, {threads} threads", which.name());
    let t = Instant::now();
    let model = models::build(which)?;
    let setup_s = t.elapsed().as_secs_f64();
    eprintln!("{tag}: built in {setup_s:.1} s");
    let [c, h, w] = which.input_shape();
    let input = Tensor::rand(0f32, 1f32, (batch, c, h, w), &Device::Cpu)?;
    let mut st = model.net.pnet().new_state(input)?;
    let mut times = Vec::with_capacity(timesteps + 1);
    for t in 0..=timesteps {
        let start = Instant::now();
        let logits = model.net.step(&mut st)?;
        let dt = start.elapsed().as_secs_f64();
        drop(logits);
        times.push(dt);
        eprintln!("{tag}: timestep {t}/{timesteps}{} {dt:.3} s", if t == 0 { " (warm-up, feedforward init)" } else { "" });
    }
    let timestep_s = median(&times[1..]);
    let flop = model.flop_per_timestep(batch);
    let errors: Vec<f64> = st.trace().last().map(|e| e.iter().map(|&x| x as f64).collect()).unwrap_or_default();
    let rss = peak_rss_bytes().map(|b| b as f64).unwrap_or(f64::NAN);
    Ok(format!(
        "{{\"kind\":\"model\",\"workload\":\"timestep\",\"impl\":\"predify-rs\",\"model\":{},\"batch\":{batch},\"threads\":{threads},\"timesteps\":{timesteps},\"timestep_s\":{},\"t0_s\":{},\"timesteps_s\":{},\"setup_s\":{},\"flop_per_timestep\":{},\"gflops\":{},\"peak_rss_bytes\":{},\"prediction_errors\":{}}}",
        string(which.name()),
        num(timestep_s),
        num(times[0]),
        nums(&times[1..]),
        num(setup_s),
        num(flop),
        num(flop / timestep_s / 1e9),
        num(rss),
        nums(&errors),
    ))
}

/// Predify's feedback-training step, `steps + 1` times on one random batch (the first is a
/// warm-up); returns the JSON object.
fn run_train(which: Which, batch: usize, threads: usize, steps: usize) -> BoxResult<String> {
    use predify::runtime::optim::Sgd;
    let tag = format!("[predify-bench] train {} batch {batch}, {threads} threads", which.name());
    let t = Instant::now();
    let model = models::build(which)?;
    let setup_s = t.elapsed().as_secs_f64();
    eprintln!("{tag}: built in {setup_s:.1} s");
    let [c, h, w] = which.input_shape();
    let x = Tensor::rand(0f32, 1f32, (batch, c, h, w), &Device::Cpu)?;
    let vars = model.net.feedback_vars();
    let mut sgd = Sgd::new(TRAIN_LR, TRAIN_WEIGHT_DECAY, 0.0);
    let mut times = Vec::with_capacity(steps + 1);
    let mut losses = Vec::new();
    for s in 0..=steps {
        let start = Instant::now();
        // The t = 0 pass: the representations are the feedforward drives.
        let taps = model.net.feedforward_taps(&x)?;
        let g = model.net.pnet().reconstruction_grads_at(&x, &taps)?;
        sgd.step(&vars, &g.grads)?;
        let dt = start.elapsed().as_secs_f64();
        times.push(dt);
        losses = g.per_pcoder.iter().map(|&l| l as f64).collect();
        eprintln!("{tag}: step {s}/{steps}{} {dt:.3} s (loss {:.4})", if s == 0 { " (warm-up)" } else { "" }, g.loss);
    }
    let step_s = median(&times[1..]);
    let rss = peak_rss_bytes().map(|b| b as f64).unwrap_or(f64::NAN);
    Ok(format!(
        "{{\"kind\":\"model\",\"workload\":\"train\",\"impl\":\"predify-rs\",\"model\":{},\"batch\":{batch},\"threads\":{threads},\"steps\":{steps},\"step_s\":{},\"first_step_s\":{},\"steps_s\":{},\"setup_s\":{},\"optimizer\":\"SGD lr {TRAIN_LR} wd {TRAIN_WEIGHT_DECAY}\",\"peak_rss_bytes\":{},\"losses\":{}}}",
        string(which.name()),
        num(step_s),
        num(times[0]),
        nums(&times[1..]),
        num(setup_s),
        num(rss),
        nums(&losses),
    ))
}

/// SGD of the training workload: the original's `examples/PVGG16/train_config.toml` values.
const TRAIN_LR: f64 = 0.001;
const TRAIN_WEIGHT_DECAY: f64 = 0.0005;

/// Evaluation throughput: for each batch size, one warm-up and `reps` timed runs of
/// `timesteps` timesteps on a fresh state; returns the JSON object (best batch size first,
/// the whole grid in `grid`).
fn run_eval(which: Which, grid: &[usize], threads: usize, timesteps: usize, reps: usize) -> BoxResult<String> {
    let tag = format!("[predify-bench] eval {}, {threads} threads, T = {timesteps}", which.name());
    let t = Instant::now();
    let model = models::build(which)?;
    let setup_s = t.elapsed().as_secs_f64();
    eprintln!("{tag}: built in {setup_s:.1} s");
    let [c, h, w] = which.input_shape();
    let mut rows = Vec::with_capacity(grid.len());
    for &batch in grid {
        let x = Tensor::rand(0f32, 1f32, (batch, c, h, w), &Device::Cpu)?;
        let mut times = Vec::with_capacity(reps);
        for r in 0..=reps {
            let start = Instant::now();
            let (logits, st) = model.net.run(&x, timesteps)?;
            let dt = start.elapsed().as_secs_f64();
            drop((logits, st));
            if r > 0 {
                times.push(dt);
            }
        }
        let run_s = median(&times);
        let ips = (batch * timesteps) as f64 / run_s;
        eprintln!("{tag}: batch {batch}: {run_s:.4} s per run, {ips:.0} image-timesteps/s");
        rows.push((batch, run_s, ips));
    }
    let best = rows.iter().copied().fold((0, f64::NAN, 0.0), |b, r| if r.2 > b.2 { r } else { b });
    let rss = peak_rss_bytes().map(|b| b as f64).unwrap_or(f64::NAN);
    let grid_json: Vec<String> =
        rows.iter().map(|&(b, s, i)| format!("{{\"batch\":{b},\"run_s\":{},\"image_timesteps_per_s\":{}}}", num(s), num(i))).collect();
    Ok(format!(
        "{{\"kind\":\"model\",\"workload\":\"eval\",\"impl\":\"predify-rs\",\"model\":{},\"batch\":{},\"threads\":{threads},\"timesteps\":{timesteps},\"reps\":{reps},\"run_s\":{},\"image_timesteps_per_s\":{},\"grid\":[{}],\"setup_s\":{},\"peak_rss_bytes\":{}}}",
        string(which.name()),
        best.0,
        num(best.1),
        num(best.2),
        grid_json.join(","),
        num(setup_s),
        num(rss),
    ))
}

fn json_ops(threads: usize) -> BoxResult<()> {
    for c in &ops::CASES {
        eprintln!("[predify-bench] op {} ...", c.key);
        let r = ops::run_case(c)?;
        for l in ops::json_lines(c, &r, threads) {
            println!("{l}");
        }
    }
    Ok(())
}

fn human(a: &Args) -> BoxResult<()> {
    let timesteps = a.timesteps.unwrap_or(3);
    println!("predify-bench: {} threads; a timestep = median of t = 1..{timesteps} after the t = 0 pass", a.threads);
    if !a.ops_only {
        let exe = std::env::current_exe()?;
        println!();
        println!("| model | batch | timestep (s) | GFLOP / timestep | GFLOP/s | t=0 pass (s) | peak RSS (MiB) |");
        println!("|---|---|---|---|---|---|---|");
        // `--model` / `--batch` narrow the list (e.g. `--model mnist --no-ops` for a quick look).
        let configs: Vec<(Which, usize)> = match (a.model, a.batch) {
            (Some(m), Some(b)) => vec![(m, b)],
            (Some(m), None) => CONFIGS.iter().copied().filter(|c| c.0 == m).collect(),
            (None, Some(b)) => CONFIGS.iter().map(|c| (c.0, b)).collect(),
            (None, None) => CONFIGS.to_vec(),
        };
        for (which, batch) in configs {
            // A fresh process per configuration: VmHWM is per process.
            let out = Command::new(&exe)
                .args(["--json", "--model", which.name(), "--batch", &batch.to_string()])
                .args(["--threads", &a.threads.to_string(), "--timesteps", &timesteps.to_string()])
                .stderr(Stdio::inherit())
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if !out.status.success() {
                return Err(format!("{} batch {batch} failed ({})", which.name(), out.status).into());
            }
            let g = |k: &str| field(&text, k).unwrap_or(f64::NAN);
            println!(
                "| {} | {batch} | {:.4} | {:.2} | {:.1} | {:.4} | {:.0} |",
                which.name(),
                g("timestep_s"),
                g("flop_per_timestep") / 1e9,
                g("gflops"),
                g("t0_s"),
                mib(g("peak_rss_bytes"))
            );
        }
        println!("\nGFLOP counts backbone convolutions + predictors + their adjoints (the error gradient).");
    }
    if !a.no_ops {
        println!();
        println!("Op level (f32, {} threads; median of 3–5 after a warm-up, or one run when it takes ≥ 5 s):", a.threads);
        println!();
        println!("| operation | GFLOP | predify-rs (s) | GFLOP/s | Candle 0.11 (s) | GFLOP/s | Candle / ours | max rel. diff |");
        println!("|---|---|---|---|---|---|---|---|");
        for c in &ops::CASES {
            eprintln!("[predify-bench] op {} ...", c.key);
            let r = ops::run_case(c)?;
            let gf = c.flop() / 1e9;
            println!(
                "| {} | {:.1} | {:.3} | {:.1} | {:.3} | {:.1} | {:.2}× | {:.1e} |",
                c.label,
                gf,
                r.ours_s,
                gf / r.ours_s,
                r.candle_s,
                gf / r.candle_s,
                r.candle_s / r.ours_s,
                r.max_rel_diff
            );
        }
    }
    Ok(())
}
