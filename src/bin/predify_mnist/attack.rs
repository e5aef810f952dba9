//! `predify-mnist attack`: adversarial robustness across timesteps. Loads the data set and the
//! network exactly as the main job does (its `load_data`, `load_backbone`, `load_feedback`),
//! trains the feedback weights first unless `--feedback` gives them, then attacks the test
//! images at every ε and `T` ([`predify::attack::run_suite`]), prints the tables and writes
//! `OUT/attack-DATASET.{csv,json,png}` and `OUT/attack-DATASET-transfer.csv`.
//!
//! The attack's own flags are taken out of the command line before the main job's parser sees
//! it ([`take_flags`]); every other flag means what it means to the main job.

use super::{load_backbone, load_data, load_feedback, train_config, Args, BoxResult, MAX_BATCH, MAX_THROUGH_TIME};
use predify::attack::{self, Goal, Method, SuiteConfig};
use predify::data;
use predify::runtime::unroll::Semantics;
use predify::train::{self, Trainer};
use predify::zoo::mnist8::PMnist8;
use predify::Predified;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use std::time::Instant;

const USAGE: &str = "\
predify-mnist attack: targeted and untargeted L∞ attacks (FGSM or BIM/PGD) on the predified network
unrolled to T timesteps (gradients through the dynamics), and the plain network's adversarials
evaluated at every timestep (transfer). Writes OUT/attack-DATASET.{csv,json,png} and
OUT/attack-DATASET-transfer.csv.

usage: predify-mnist attack [ATTACK OPTIONS] [MAIN JOB OPTIONS]

attack options:
  --eps LIST                budgets ε on the [0, 1] pixel scale (default 0.05,0.1,0.15,0.2,0.3)
  --attack-timesteps LIST   T = passes unrolled; loss and prediction at timestep T-1; 1 = the plain
                            network (default 1,3,5,10; each at most 100)
  --method bim|fgsm         (default bim)
  --steps N                 BIM steps (default 10)
  --step-rel X              BIM step size relative to ε (default 2.5/steps, the paper's ratio)
  --no-random-start         start at the clean image (default: uniform in the ε-ball)
  --semantics predify|exact gradient through the error term (default predify)
  --goals LIST              targeted,untargeted (default both)
  --target-shift K          target = (label + K) mod 10 (default 1)
  --attack-images N         first N test images (default 200)
  --attack-batch N          images per batch (default 100; PMnist8's dynamics depend on it)
  --no-transfer             skip the transfer evaluation
main job options used: --dataset --data-dir --idx-dir --model --backbone --backbone-epochs --out,
  the feedback training flags (--epochs ... --val-size), --feedback, --seed, --threads, --no-progress
";

/// The attack's own settings, parsed from its flags.
#[derive(Debug, Clone)]
pub struct AttackArgs {
    error: Option<String>,
    help: bool,
    epsilons: Vec<f32>,
    timesteps: Vec<usize>,
    fgsm: bool,
    steps: usize,
    step_rel: Option<f32>,
    random_start: bool,
    semantics: Semantics,
    goals: Vec<String>,
    target_shift: usize,
    images: usize,
    batch: usize,
    transfer: bool,
}

impl Default for AttackArgs {
    fn default() -> Self {
        Self {
            error: None,
            help: false,
            epsilons: vec![0.05, 0.1, 0.15, 0.2, 0.3],
            timesteps: vec![1, 3, 5, 10],
            fgsm: false,
            steps: 10,
            step_rel: None,
            random_start: true,
            semantics: Semantics::Predify,
            goals: vec!["targeted".into(), "untargeted".into()],
            target_shift: attack::DEFAULT_TARGET_SHIFT,
            images: 200,
            batch: 100,
            transfer: true,
        }
    }
}

fn list<T: std::str::FromStr>(flag: &str, v: &str) -> BoxResult<Vec<T>> {
    v.split(',').map(|s| s.trim().parse::<T>().map_err(|_| format!("{flag}: cannot parse `{s}`").into())).collect()
}

/// When the command is `attack`, take the attack's flags (and `-h`/`--help`) out of `raw` so
/// that the main job's parser sees only its own; otherwise leave `raw` alone. A malformed
/// attack flag is kept and reported by [`run`] (so the main job's `main` needs no new error
/// path).
pub fn take_flags(raw: Vec<String>) -> (Vec<String>, AttackArgs) {
    let mut a = AttackArgs::default();
    if raw.first().map(String::as_str) != Some("attack") {
        return (raw, a);
    }
    let mut rest = Vec::with_capacity(raw.len());
    if let Err(e) = parse_into(raw, &mut a, &mut rest) {
        a.error = Some(e.to_string());
    }
    (rest, a)
}

fn parse_into(raw: Vec<String>, a: &mut AttackArgs, rest: &mut Vec<String>) -> BoxResult<()> {
    let mut it = raw.into_iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> BoxResult<T> {
            v.parse::<T>().map_err(|_| format!("{flag}: cannot parse `{v}`").into())
        }
        match flag.as_str() {
            "-h" | "--help" => a.help = true,
            "--eps" => a.epsilons = list(&flag, &val()?)?,
            "--attack-timesteps" => a.timesteps = list(&flag, &val()?)?,
            "--method" => {
                a.fgsm = match val()?.as_str() {
                    "fgsm" => true,
                    "bim" | "pgd" => false,
                    o => return Err(format!("--method {o}: expected bim or fgsm").into()),
                }
            }
            "--steps" => a.steps = num(&flag, val()?)?,
            "--step-rel" => a.step_rel = Some(num(&flag, val()?)?),
            "--no-random-start" => a.random_start = false,
            "--semantics" => {
                a.semantics = match val()?.as_str() {
                    "predify" => Semantics::Predify,
                    "exact" => Semantics::Exact,
                    o => return Err(format!("--semantics {o}: expected predify or exact").into()),
                }
            }
            "--goals" => a.goals = list(&flag, &val()?)?,
            "--target-shift" => a.target_shift = num(&flag, val()?)?,
            "--attack-images" => a.images = num(&flag, val()?)?,
            "--attack-batch" => a.batch = num(&flag, val()?)?,
            "--no-transfer" => a.transfer = false,
            _ => rest.push(flag),
        }
    }
    Ok(())
}

impl AttackArgs {
    fn suite(&self, args: &Args) -> BoxResult<SuiteConfig> {
        if self.timesteps.is_empty() || self.timesteps.contains(&0) || self.batch == 0 || self.steps == 0 {
            return Err("--attack-timesteps need T ≥ 1; --attack-batch and --steps at least 1".into());
        }
        // The tape keeps every timestep of a batch: bounded like --through-time.
        if let Some(t) = self.timesteps.iter().find(|&&t| t > MAX_THROUGH_TIME) {
            return Err(format!("--attack-timesteps {t}: at most {MAX_THROUGH_TIME}").into());
        }
        if self.batch > MAX_BATCH {
            return Err(format!("--attack-batch {}: expected 1..={MAX_BATCH}", self.batch).into());
        }
        if self.epsilons.iter().any(|e| e.is_nan() || *e < 0.0) {
            return Err("--eps: budgets must be ≥ 0".into());
        }
        let goals = self
            .goals
            .iter()
            .map(|g| match g.as_str() {
                "targeted" => Ok(Goal::Targeted { shift: self.target_shift }),
                "untargeted" => Ok(Goal::Untargeted),
                o => Err(format!("--goals {o}: expected targeted or untargeted")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let method = match (self.fgsm, self.step_rel) {
            (true, _) => Method::Fgsm,
            (false, None) => Method::bim(self.steps),
            (false, Some(step_rel)) => Method::Bim { steps: self.steps, step_rel },
        };
        Ok(SuiteConfig {
            epsilons: self.epsilons.clone(),
            timesteps: self.timesteps.clone(),
            goals,
            method,
            random_start: self.random_start,
            semantics: self.semantics,
            // MNIST and Fashion-MNIST load as [0, 1] pixels, unnormalised.
            range: (0.0, 1.0),
            transfer: self.transfer,
            batch_size: self.batch,
            limit: Some(self.images),
            seed: args.seed,
            progress: args.progress,
        })
    }
}

/// Run `predify-mnist attack` with the main job's `args` and the attack's own `a`.
pub fn run(args: &Args, a: &AttackArgs) -> BoxResult<()> {
    if a.help {
        print!("{USAGE}");
        return Ok(());
    }
    if let Some(e) = &a.error {
        return Err(format!("{e}\n\n{USAGE}").into());
    }
    let started = Instant::now();
    let suite = a.suite(args)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("predify-mnist attack: {} threads, seed {}", rayon::current_num_threads(), args.seed);
    let (train_full, test, dir) = load_data(args)?;
    println!("data: {} from {} ({} test images, attacking the first {})", args.dataset, dir.display(), test.len(), a.images.min(test.len()));
    let (net, source) = load_backbone(args, &train_full, &test)?;
    let varmap = VarMap::new();
    let model = PMnist8::new(net, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    train::init_feedback(model.pnet(), args.seed)?;
    println!("model: {source}, predified as {}", PMnist8::NAME);
    if let Some(f) = &args.feedback {
        load_feedback(&model, f)?;
        println!("feedback weights: loaded from {}", f.display());
    } else if args.epochs > 0 {
        train_feedback(args, &model, &train_full)?;
    } else {
        println!("feedback training skipped (--epochs 0): random feedback weights (seed {})", args.seed);
    }
    println!(
        "attacking: ε {:?}, T {:?}, {}{}, {:?} semantics, batch {}",
        suite.epsilons,
        suite.timesteps,
        suite.method.label(),
        if suite.random_start { ", random start" } else { "" },
        suite.semantics,
        suite.batch_size
    );
    let report = attack::run_suite(&model, &test, &suite)?;
    println!("\nattacks ({:.1} s):\n{}", report.seconds, report.table());
    if !report.transfer.is_empty() {
        println!("\n{}", report.transfer_table());
    }
    let files = report.write_files(&args.out, &format!("attack-{}", args.dataset))?;
    println!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The main job's feedback training (same configuration, same held-out split, same checkpoint
/// file), without its resume and reporting options.
fn train_feedback(args: &Args, model: &PMnist8, train_full: &predify::data::mnist::MnistSet) -> BoxResult<()> {
    let (train_set, val_set) = data::split_off(train_full, args.val_size)?;
    let config = train_config(args, args.out.join("checkpoint.safetensors"))?;
    let t = Instant::now();
    let reports = Trainer::new(model, config)?.fit(&train_set, Some(&val_set))?;
    let last = reports.last().map(|r| train::loss_message(&r.val_loss)).unwrap_or_default();
    println!(
        "feedback training: {} epoch(s) in {:.1} s, held-out loss {last} (checkpoint {}; pass it as --feedback next time)",
        args.epochs,
        t.elapsed().as_secs_f64(),
        args.out.join("checkpoint.safetensors").display()
    );
    Ok(())
}
