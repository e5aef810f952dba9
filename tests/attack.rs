//! Adversarial attacks through the unrolled dynamics (`predify::attack`) on a tiny predified
//! network with gradient scaling (PCoderN, so that its dynamics do not depend on the batch
//! size): the loss moves the right way, perturbations stay in the ε-ball and the image range,
//! batch layout does not change results, ε = 0 measures the clean error, BIM is at least as
//! strong as FGSM, and the transfer case at timestep 0 is the plain network.
//!
//! An `#[ignore]`d timing (`attack_step_speed_at_mnist_scale`) compares one attack step with
//! the `T` forward passes on PMnist8.

mod unroll_common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use predify::attack::{perturb, run_suite, AttackConfig, Goal, Method, SuiteConfig};
use predify::common::Rng;
use predify::data::TensorDataset;
use predify::runtime::layers::{Conv, Linear};
use predify::runtime::sequential::{Op, PredifiedSequential, Sequential};
use predify::runtime::unroll::{cross_entropy, Semantics, Tape};
use predify::runtime::CSqrtSource;
use predify::spec::Spec;
use predify::Predified;
use unroll_common::{conv3x3, uniform_fan_in};

const IMAGES: usize = 16;
const CLASSES: usize = 5;

/// A tiny predified CNN on `[1, 8, 8]` images: conv 3×3 1→4, ReLU (pcoder 1), conv 3×3
/// stride 2 4→6, ReLU (pcoder 2), linear 96→5; weights uniform in ±1/√fan_in from a fixed
/// seed. α is large enough that the feedback timesteps change the logits visibly.
fn tiny_net() -> PredifiedSequential {
    let mut rng = Rng::new(0x5eed);
    let mut uniform = |dims: &[usize], fan_in: usize| uniform_fan_in(&mut || rng.uniform(), dims, fan_in);
    let mut bb = Sequential::new();
    let (w, b) = (uniform(&[4, 1, 3, 3], 9), uniform(&[4], 9));
    bb.push("features[0]", Op::Conv(Conv::new(conv3x3(1, 4, 1), false, w, Some(b), "conv1").unwrap()));
    bb.push("features[1]", Op::Relu);
    let (w, b) = (uniform(&[6, 4, 3, 3], 36), uniform(&[6], 36));
    bb.push("features[2]", Op::Conv(Conv::new(conv3x3(4, 6, 2), false, w, Some(b), "conv2").unwrap()));
    bb.push("features[3]", Op::Relu);
    bb.push("flatten", Op::Flatten { start_dim: 1 });
    bb.push("classifier[0]", Op::Linear(Linear::new(uniform(&[CLASSES, 96], 96), Some(uniform(&[CLASSES], 96)), "fc").unwrap()));
    let mut t = std::collections::HashMap::new();
    t.insert("pcoder1.pmodule.weight".to_string(), uniform(&[4, 1, 3, 3], 36));
    t.insert("pcoder1.pmodule.bias".to_string(), uniform(&[1], 36));
    t.insert("pcoder2.pmodule.1.weight".to_string(), uniform(&[6, 4, 3, 3], 54));
    t.insert("pcoder2.pmodule.1.bias".to_string(), uniform(&[4], 54));
    let toml = "name = \"Tiny\"\ninput_size = [1, 8, 8]\ngradient_scaling = true\n\
         [[pcoders]]\nmodule = \"features[1]\"\npredictor = \"ConvTranspose2d(4, 1, kernel_size=3, stride=1, padding=1)\"\n\
         hyperparameters = {feedforward = 0.3, feedback = 0.3, pc = 0.5}\n\
         [[pcoders]]\nmodule = \"features[3]\"\n\
         predictor = \"Sequential(Upsample(scale_factor=(2.0, 2.0), mode='bilinear', align_corners=False), ConvTranspose2d(6, 4, kernel_size=3, stride=1, padding=1), ReLU())\"\n\
         hyperparameters = {feedforward = 0.4, feedback = 0.0, pc = 1.0}\n";
    let spec = Spec::from_toml_str(toml).unwrap();
    PredifiedSequential::new(bb, &spec, VarBuilder::from_tensors(t, DType::F32, &Device::Cpu), CSqrtSource::Exact).unwrap()
}

/// `IMAGES` images uniform in [0, 1] (a few pixels exactly at the range's ends) and labels: the
/// network's own prediction at timestep 2 for the first 12 images (so most are "correct"),
/// another class for the rest.
fn data(model: &PredifiedSequential) -> (Tensor, Vec<usize>, TensorDataset) {
    let mut rng = Rng::new(11);
    let v: Vec<f32> = (0..IMAGES * 64)
        .map(|i| match i % 17 {
            0 => 0.0,
            1 => 1.0,
            _ => rng.uniform() as f32,
        })
        .collect();
    let x = Tensor::from_vec(v, (IMAGES, 1, 8, 8), &Device::Cpu).unwrap();
    let (logits, _) = model.run(&x, 3).unwrap();
    let pred: Vec<u32> = logits[2].argmax(1).unwrap().to_vec1().unwrap();
    let labels: Vec<usize> = pred.iter().enumerate().map(|(i, &p)| if i < 12 { p as usize } else { (p as usize + 2) % CLASSES }).collect();
    let set = TensorDataset::new(&x, labels.iter().map(|&l| l as u32).collect()).unwrap();
    (x, labels, set)
}

fn ids() -> Vec<usize> {
    (0..IMAGES).collect()
}

fn config(eps: f32, method: Method, goal: Goal, timesteps: usize) -> AttackConfig {
    AttackConfig { eps, method, goal, timesteps, random_start: false, ..AttackConfig::default() }
}

/// Mean cross-entropy of the last of `t` timesteps' logits to `classes`.
fn loss(model: &PredifiedSequential, x: &Tensor, classes: &[usize], t: usize) -> f64 {
    let tape = Tape::record(model, x, t).unwrap();
    cross_entropy(&tape.steps()[t - 1].logits, classes).unwrap().0
}

fn suite(epsilons: Vec<f32>, timesteps: Vec<usize>, method: Method, batch_size: usize) -> SuiteConfig {
    SuiteConfig { epsilons, timesteps, method, batch_size, limit: None, seed: 3, ..SuiteConfig::default() }
}

#[test]
fn fgsm_moves_the_loss_the_right_way() {
    let model = tiny_net();
    let (x, labels, _) = data(&model);
    let targets: Vec<usize> = labels.iter().map(|&l| Goal::targeted().loss_class(l, CLASSES)).collect();
    for t in [1, 3] {
        let adv = perturb(&model, &x, &labels, &ids(), &config(0.02, Method::Fgsm, Goal::Untargeted, t)).unwrap();
        let (before, after) = (loss(&model, &x, &labels, t), loss(&model, &adv, &labels, t));
        assert!(after > before, "T = {t}: untargeted CE to the label {before} -> {after}");
        let adv = perturb(&model, &x, &labels, &ids(), &config(0.02, Method::Fgsm, Goal::targeted(), t)).unwrap();
        let (before, after) = (loss(&model, &x, &targets, t), loss(&model, &adv, &targets, t));
        assert!(after < before, "T = {t}: targeted CE to the target {before} -> {after}");
    }
}

#[test]
fn perturbations_stay_in_the_ball_and_the_range() {
    let model = tiny_net();
    let (x, labels, _) = data(&model);
    let clean: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
    for (goal, semantics) in [(Goal::Untargeted, Semantics::Predify), (Goal::targeted(), Semantics::Exact)] {
        for eps in [0.05f32, 0.3] {
            let c = AttackConfig { random_start: true, semantics, ..config(eps, Method::bim(5), goal, 3) };
            let adv: Vec<f32> = perturb(&model, &x, &labels, &ids(), &c).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let mut moved = 0;
            for (&a, &o) in adv.iter().zip(&clean) {
                assert!((a - o).abs() <= eps + 1e-6, "{goal:?} ε = {eps}: |{a} − {o}| > ε");
                assert!((0.0..=1.0).contains(&a), "{goal:?} ε = {eps}: {a} outside [0, 1]");
                moved += usize::from(a != o);
            }
            assert!(moved > adv.len() / 2, "{goal:?} ε = {eps}: only {moved} pixels moved");
        }
    }
}

#[test]
fn results_do_not_depend_on_the_batch_size() {
    let model = tiny_net();
    let (x, labels, set) = data(&model);
    // Random starts are keyed by image index: the same image in another batch gets the same start.
    let c = AttackConfig { random_start: true, ..config(0.1, Method::bim(3), Goal::targeted(), 3) };
    let whole = perturb(&model, &x, &labels, &ids(), &c).unwrap();
    let part = perturb(&model, &x.narrow(0, 4, 4).unwrap(), &labels[4..8], &ids()[4..8], &c).unwrap();
    assert_eq!(whole.narrow(0, 4, 4).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(), part.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    // The whole sweep, batches of 16 and of 4 (ratios of powers of two keep the batch-mean
    // scalings exact in floating point).
    let a = run_suite(&model, &set, &suite(vec![0.05, 0.2], vec![1, 3], Method::bim(3), 16)).unwrap();
    let b = run_suite(&model, &set, &suite(vec![0.05, 0.2], vec![1, 3], Method::bim(3), 4)).unwrap();
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.transfer, b.transfer);
}

#[test]
fn success_at_eps_zero_is_the_clean_error() {
    let model = tiny_net();
    let (x, labels, set) = data(&model);
    let report = run_suite(&model, &set, &suite(vec![0.0], vec![1, 2, 4], Method::bim(3), 8)).unwrap();
    let (logits, _) = model.run(&x, 4).unwrap();
    for r in &report.rows {
        let pred: Vec<u32> = logits[r.timesteps - 1].argmax(1).unwrap().to_vec1().unwrap();
        let correct = pred.iter().zip(&labels).filter(|(&p, &l)| p as usize == l).count();
        assert_eq!(r.clean_accuracy, correct as f64 / IMAGES as f64);
        assert_eq!(r.accuracy, r.clean_accuracy, "{r:?}");
        assert_eq!(r.mean_linf, 0.0);
        match r.goal {
            Goal::Untargeted => {
                assert_eq!(r.success_rate, 1.0 - r.clean_accuracy, "{r:?}");
                assert_eq!(r.success_rate_correct, 0.0, "{r:?}");
            }
            Goal::Targeted { .. } => {
                let hit = pred.iter().zip(&labels).filter(|(&p, &l)| p as usize == r.goal.loss_class(l, CLASSES)).count();
                assert_eq!(r.success_rate, hit as f64 / IMAGES as f64, "{r:?}");
            }
        }
    }
}

#[test]
fn bim_is_at_least_as_successful_as_fgsm() {
    let model = tiny_net();
    let (_, _, set) = data(&model);
    let eps = vec![0.05, 0.1, 0.2];
    let fgsm = run_suite(&model, &set, &SuiteConfig { random_start: false, ..suite(eps.clone(), vec![1, 3], Method::Fgsm, 16) }).unwrap();
    let bim = run_suite(&model, &set, &suite(eps, vec![1, 3], Method::bim(10), 16)).unwrap();
    let mut stronger = 0;
    for (f, b) in fgsm.rows.iter().zip(&bim.rows) {
        assert_eq!((f.goal, f.eps, f.timesteps), (b.goal, b.eps, b.timesteps));
        assert!(b.success_rate >= f.success_rate, "BIM {b:?} weaker than FGSM {f:?}");
        stronger += usize::from(b.success_rate > f.success_rate);
    }
    assert!(stronger > 0, "BIM never beat FGSM");
}

#[test]
fn transfer_at_timestep_zero_is_the_plain_network() {
    let model = tiny_net();
    let (x, labels, set) = data(&model);
    let report = run_suite(&model, &set, &suite(vec![0.1, 0.2], vec![1, 4], Method::bim(4), 8)).unwrap();
    assert_eq!(report.transfer_timesteps, 4);
    for r in report.transfer.iter().filter(|r| r.timestep == 0) {
        let direct = report.rows.iter().find(|d| d.goal == r.goal && d.eps == r.eps && d.timesteps == 1).unwrap();
        assert_eq!((r.accuracy, r.success_rate), (direct.accuracy, direct.success_rate));
        // Independently: the plain backbone on the plain-made adversarials (same draws, same batches).
        let ei = report.epsilons.iter().position(|&e| e == r.eps).unwrap();
        let mut correct = 0;
        for b in 0..2 {
            let (xs, ys, is) = (x.narrow(0, 8 * b, 8).unwrap(), &labels[8 * b..8 * b + 8], &ids()[8 * b..8 * b + 8]);
            let c = AttackConfig { eps_index: ei, random_start: true, seed: 3, ..config(r.eps, Method::bim(4), r.goal, 1) };
            let adv = perturb(&model, &xs, ys, is, &c).unwrap();
            let pred: Vec<u32> = model.forward_plain(&adv).unwrap().argmax(1).unwrap().to_vec1().unwrap();
            correct += pred.iter().zip(ys).filter(|(&p, &l)| p as usize == l).count();
        }
        assert_eq!(r.accuracy, correct as f64 / IMAGES as f64, "{r:?}");
    }
}

#[test]
fn the_report_is_written_and_read_back() {
    let model = tiny_net();
    let (_, _, set) = data(&model);
    let report = run_suite(&model, &set, &suite(vec![0.1, 0.2], vec![1, 2], Method::Fgsm, 16)).unwrap();
    assert!(report.table().contains("untargeted") && report.transfer_table().contains("t1"));
    let dir = std::env::temp_dir().join(format!("predify-attack-test-{}", std::process::id()));
    let files = report.write_files(&dir, "attack").unwrap();
    assert_eq!(files.len(), 4);
    let back: predify::attack::AttackReport = serde_json::from_str(&std::fs::read_to_string(dir.join("attack.json")).unwrap()).unwrap();
    // serde_json's default float parsing may be one ulp off: compare what is printed.
    assert_eq!((back.table(), back.transfer_table(), back.to_csv()), (report.table(), report.transfer_table(), report.to_csv()));
    let csv = std::fs::read_to_string(dir.join("attack.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + report.rows.len());
    let _ = std::fs::remove_dir_all(&dir);
    // The paired comparisons: each T against the sweep's first T, each transfer timestep
    // against timestep 0, on the same images.
    for r in &report.rows {
        let first = report.rows.iter().find(|f| f.goal == r.goal && f.eps == r.eps && f.timesteps == 1).unwrap();
        let p = r.vs_first.expect("paired comparison");
        assert!((p.diff - (r.success_rate - first.success_rate)).abs() < 1e-12 && p.ci_lo <= p.diff + 1e-12 && p.diff <= p.ci_hi + 1e-12, "{r:?}");
        assert_eq!(p.both + p.only_ff + p.only_pc + p.neither, IMAGES);
        if r.timesteps == 1 {
            assert_eq!((p.diff, p.only_ff, p.only_pc, p.p), (0.0, 0, 0, 1.0));
        }
    }
    for r in &report.transfer {
        let p = r.vs_plain.expect("paired comparison");
        let t0 = report.transfer.iter().find(|f| f.goal == r.goal && f.eps == r.eps && f.timestep == 0).unwrap();
        assert!((p.diff - (r.success_rate - t0.success_rate)).abs() < 1e-12, "{r:?}");
    }
    assert!(report.table().contains("Δsucc.all vs T=1") && report.transfer_table().contains("t1 vs t0"));
}

/// One attack step (record `T` passes + backward to the input, Predify's semantics) against
/// the `T` forward passes of [`Predified::run`], PMnist8, batch 100:
/// `cargo test --test attack -- --ignored --nocapture`.
#[cfg(feature = "onnx")]
#[test]
#[ignore = "timing; run by hand"]
fn attack_step_speed_at_mnist_scale() {
    use predify::zoo::mnist8::{Mnist8, PMnist8, MODEL_FILE};
    use std::time::Instant;
    predify::process::prefer_rayon_threads();
    predify::process::tune_allocator();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let vm = candle_nn::VarMap::new();
    let model = PMnist8::new(Mnist8::from_onnx(root.join(MODEL_FILE)).unwrap(), VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let batch = 100;
    let mut rng = Rng::new(5);
    let x = Tensor::from_vec((0..batch * 784).map(|_| rng.uniform() as f32).collect::<Vec<_>>(), (batch, 1, 28, 28), &Device::Cpu).unwrap();
    let labels: Vec<usize> = (0..batch).map(|k| k % 10).collect();
    let ids: Vec<usize> = (0..batch).collect();
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    for t in [1, 3, 5, 10] {
        let run = best(&mut || drop(model.run(&x, t).unwrap()));
        let c = AttackConfig { eps: 0.1, method: Method::Fgsm, timesteps: t, random_start: false, ..AttackConfig::default() };
        let step = best(&mut || drop(perturb(&model, &x, &labels, &ids, &c).unwrap()));
        let exact = best(&mut || drop(perturb(&model, &x, &labels, &ids, &AttackConfig { semantics: Semantics::Exact, ..c }).unwrap()));
        println!(
            "PMnist8 batch {batch}, T = {t}: forward {:.1} ms; attack step (Predify) {:.1} ms = {:.2}x; (Exact) {:.1} ms = {:.2}x",
            run * 1e3,
            step * 1e3,
            step / run,
            exact * 1e3,
            exact / run
        );
    }
}
