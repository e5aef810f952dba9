//! Robustness evaluation: noise models, accuracy bookkeeping (timestep 0 equals the plain
//! network), determinism, and the table / CSV / JSON / PNG outputs.

mod train_common;

use predify::common::Rng;
use predify::corruptions::Corruption;
use predify::eval::{self, EvalConfig, HyperPreset, Noise, Report};
use predify::train::supervised::{self, SupervisedConfig};
use predify::zoo::mnist8::PMnist8;
use predify::Predified;
use predify::runtime::sequential::PredifiedSequential;
use train_common::{synthetic_set, temp_dir, tiny_net};

#[test]
fn noise_models_have_the_stated_statistics() {
    let x = candle_core::Tensor::full(0.5f32, (4, 1, 28, 28), &candle_core::Device::Cpu).unwrap();
    let n = x.elem_count() as f64;
    let g = Noise::Gaussian(0.8).apply(&x, &mut Rng::new(1), (0.0, 1.0)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mean = g.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (g.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((mean - 0.5).abs() < 0.05 && (sd - 0.8).abs() < 0.04, "mean {mean}, sd {sd}");
    let sp = Noise::SaltPepper(0.3).apply(&x, &mut Rng::new(2), (0.0, 1.0)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let salt = sp.iter().filter(|&&v| v == 1.0).count() as f64 / n;
    let pepper = sp.iter().filter(|&&v| v == 0.0).count() as f64 / n;
    assert!((salt - 0.15).abs() < 0.02 && (pepper - 0.15).abs() < 0.02, "salt {salt}, pepper {pepper}");
    assert!(sp.iter().all(|&v| v == 0.0 || v == 0.5 || v == 1.0));
    assert_eq!(Noise::Clean.apply(&x, &mut Rng::new(3), (0.0, 1.0)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(), x.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    // parsing
    assert_eq!(Noise::parse("gauss:0.5").unwrap(), Noise::Gaussian(0.5));
    assert_eq!(Noise::parse("sp:0.1").unwrap(), Noise::SaltPepper(0.1));
    assert_eq!(Noise::parse("clean").unwrap(), Noise::Clean);
    for bad in ["gauss", "sp:1.5", "gauss:-1", "blur:2"] {
        assert!(Noise::parse(bad).is_err(), "{bad} accepted");
    }
}

fn config() -> EvalConfig {
    EvalConfig {
        timesteps: 3,
        batch_size: 16,
        seed: 5,
        draws: 1,
        noises: vec![Noise::Clean, Noise::Gaussian(0.5), Noise::SaltPepper(0.2)],
        limit: None,
        pixel_range: (0.0, 1.0),
        progress: false,
    }
}

#[test]
fn evaluation_counts_every_image_at_every_timestep() {
    let net = tiny_net("PTiny", "", 1);
    let data = synthetic_set(50, 7);
    let r = eval::evaluate(&net, &data, &config()).unwrap();
    assert_eq!((r.images, r.timesteps, r.results.len()), (50, 3, 3));
    for c in &r.results {
        assert_eq!(c.timesteps.len(), 4);
        // timestep 0 is the feedforward pass
        assert_eq!(c.timesteps[0], c.feedforward, "{:?}", c.noise);
        for v in c.timesteps.iter().chain([&c.feedforward]) {
            let k = v * 50.0;
            assert!((k - k.round()).abs() < 1e-9 && (0.0..=1.0).contains(v), "{v} is not a count of 50");
        }
    }
    assert_eq!(r.hyperparameters.len(), 2);
    // Deterministic: the same noise for the same seed, whatever the thread schedule.
    let again = eval::evaluate(&net, &data, &config()).unwrap();
    assert_eq!(again.results, r.results);
    // A limit evaluates the first n images.
    let cut = eval::evaluate(&net, &data, &EvalConfig { limit: Some(20), ..config() }).unwrap();
    assert_eq!(cut.images, 20);
    assert!(eval::evaluate(&net, &data, &EvalConfig { limit: Some(0), ..config() }).is_err());
}

#[test]
fn report_files_table_csv_json_png() {
    let net = tiny_net("PTiny", "", 2);
    let data = synthetic_set(30, 8);
    let r = eval::evaluate(&net, &data, &config()).unwrap();
    let table = r.table();
    println!("{table}");
    assert!(table.contains("t0") && table.contains("t3") && table.contains("gauss 0.50") && table.contains("s&p 0.20") && table.contains("ff"));
    // Δlast with its interval, `+a.bc [+d.ef, +g.hi]`, on every row (the clean row's t0 = ff).
    let last = &r.results[1].paired[3];
    assert!(table.contains(&last.display()), "{table}");
    assert!(table.contains("Δlast") && table.contains("CI"));
    assert_eq!(table.lines().count(), 2 + 3);
    let dir = temp_dir("eval-files");
    let files = r.write_files(&dir, "robustness").unwrap();
    assert_eq!(files.len(), 3);
    let csv = std::fs::read_to_string(dir.join("robustness.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "config,noise,level,images,timestep,feedforward,accuracy,diff,ci_lo,ci_hi,p");
    assert_eq!(lines.len(), 1 + 3 * 4, "one row per condition and timestep");
    assert!(lines[5].starts_with(",gaussian,0.5,30,0,"), "{}", lines[5]);
    // Every row carries the difference, its interval and p; the interval holds the difference.
    for l in &lines[1..] {
        let f: Vec<f64> = l.split(',').skip(5).map(|v| v.parse().unwrap()).collect();
        let (acc, ff, diff, lo, hi, p) = (f[1], f[0], f[2], f[3], f[4], f[5]);
        assert!((acc - ff - diff).abs() < 2e-6 && lo <= diff + 1e-9 && diff <= hi + 1e-9 && (0.0..=1.0).contains(&p), "{l}");
    }
    let back: Report = serde_json::from_str(&std::fs::read_to_string(dir.join("robustness.json")).unwrap()).unwrap();
    assert_eq!(back, r);
    // The JSON carries the paired statistics of every timestep.
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let paired = &v["results"][1]["paired"];
    assert_eq!(paired.as_array().unwrap().len(), 4);
    for k in ["diff", "ci_lo", "ci_hi", "p", "both", "only_ff", "only_pc", "neither"] {
        assert!(paired[3][k].is_number(), "{k} missing: {paired}");
    }
    assert_eq!(v["results"][1]["noise"], serde_json::json!({"kind": "gaussian", "level": 0.5}));
    let png = std::fs::read(dir.join("robustness.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (w, h) = (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((w, h), (960, 40 + 320 * 2)); // 3 conditions: a 2×2 grid of panels
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "temporary files left: {names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The statistics agree with their inputs: counts add up, t0 equals the plain network exactly
/// (no discordant image: difference 0, p = 1, not significant), and a `n.s.` mark follows the
/// definition.
#[test]
fn paired_statistics_are_consistent() {
    let net = tiny_net("PTiny", "", 3);
    let data = synthetic_set(40, 9);
    let r = eval::evaluate(&net, &data, &config()).unwrap();
    for c in &r.results {
        assert_eq!(c.paired.len(), 4);
        let p0 = &c.paired[0];
        assert_eq!((p0.diff, p0.ci_lo, p0.ci_hi, p0.p, p0.only_ff, p0.only_pc), (0.0, 0.0, 0.0, 1.0, 0, 0));
        assert!(p0.display().ends_with("n.s."), "{}", p0.display());
        for (t, p) in c.paired.iter().enumerate() {
            assert_eq!(p.both + p.only_ff + p.only_pc + p.neither, 40);
            assert!((p.diff - (c.timesteps[t] - c.feedforward)).abs() < 1e-12);
            assert!(((p.both + p.only_ff) as f64 / 40.0 - c.feedforward).abs() < 1e-12);
            assert_eq!(p.display().ends_with("n.s."), !p.significant());
        }
    }
}

/// The same report for two batch sizes and two thread counts: the noise and corruption draws
/// come from (seed, condition, image index) only. α = 0 here, since with α > 0 Predify's error
/// term (a mean over the batch) depends on the batch size itself; thread counts are compared at
/// Predify's α too.
#[test]
fn reports_do_not_depend_on_batch_size_or_thread_count() {
    let mut net = tiny_net("PTiny", "", 4);
    let data = synthetic_set(37, 10);
    let mut noises = config().noises;
    noises.extend([Noise::Corruption(Corruption::Fog), Noise::Corruption(Corruption::ShotNoise)]);
    let cfg = |batch_size| EvalConfig { batch_size, noises: noises.clone(), ..config() };
    let run = |net: &PredifiedSequential, batch: usize, threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut r = pool.install(|| eval::evaluate(net, &data, &cfg(batch))).unwrap();
        (r.seconds, r.batch_size) = (0.0, 0);
        r
    };
    // Thread counts, Predify's α (batch size fixed).
    assert_eq!(run(&net, 16, 1), run(&net, 16, 2));
    // Batch sizes and thread counts, α = 0.
    let base = eval::current_hyperparameters(net.pnet()).unwrap();
    HyperPreset::Predify.apply(net.pnet_mut(), &base, true).unwrap();
    let reference = run(&net, 37, 1);
    for (batch, threads) in [(5, 2), (16, 1), (37, 2)] {
        assert_eq!(run(&net, batch, threads), reference, "batch {batch}, {threads} threads");
    }
    // Several noise draws: the same under batch sizes and thread counts too.
    let draws = |batch: usize, threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut r = pool.install(|| eval::evaluate(&net, &data, &EvalConfig { draws: 2, ..cfg(batch) })).unwrap();
        (r.seconds, r.batch_size) = (0.0, 0);
        r
    };
    assert_eq!(draws(5, 2), draws(37, 1));
    // The main job's template: gradient-scaled pcoders with per-sample error scaling are
    // batch-invariant at Predify's α too.
    let net = tiny_net("PTiny", "gradient_scaling = true\nerror_scaling = \"per_sample\"", 4);
    let reference = run(&net, 37, 1);
    assert_eq!(run(&net, 5, 2), reference);
    let s = reference.corruption_summary.as_ref().expect("summary");
    assert_eq!((s.diff_interval.len(), s.relative_error_interval.len()), (4, 4));
    for (t, &[lo, hi]) in s.diff_interval.iter().enumerate() {
        let d = s.diff(t).unwrap();
        assert!(lo <= d + 1e-12 && d <= hi + 1e-12, "t{t}: {d} outside [{lo}, {hi}]");
    }
}

/// A corruption changes the images (and so the accuracy, on a set the network classifies) and
/// is deterministic; the corruption summary averages the corruptions and normalises the error
/// by the plain network's.
#[test]
fn corruptions_are_conditions_of_the_evaluation() {
    // A backbone that classifies the synthetic digits (the tiny net's random one guesses), so
    // that a corruption has accuracy to lose.
    let data = synthetic_set(100, 11);
    let cfg = SupervisedConfig { epochs: 2, batch_size: 20, lr: 3e-3, seed: 1, train_limit: None, progress: false };
    let backbone = supervised::train_backbone(&data, &cfg, |_, _, _| {}).unwrap();
    let varmap = candle_nn::VarMap::new();
    let net = PMnist8::new(backbone, candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &candle_core::Device::Cpu)).unwrap();
    let data = synthetic_set(40, 12);
    let noises = vec![Noise::Clean, Noise::Corruption(Corruption::Stripe), Noise::Corruption(Corruption::Zigzag), Noise::Corruption(Corruption::Fog)];
    let cfg = EvalConfig { noises, ..config() };
    let r = eval::evaluate(&net, &data, &cfg).unwrap();
    let clean = &r.results[0];
    assert!(r.results[1..].iter().any(|c| c.feedforward != clean.feedforward), "no corruption changed accuracy: {}", r.table());
    assert_eq!(eval::evaluate(&net, &data, &cfg).unwrap().results, r.results);
    let s = r.corruption_summary.as_ref().expect("summary");
    assert_eq!(s.corruptions, 3);
    let mean_ff = r.results[1..].iter().map(|c| c.feedforward).sum::<f64>() / 3.0;
    assert!((s.feedforward - mean_ff).abs() < 1e-12);
    assert!((s.relative_error[0] - 1.0).abs() < 1e-12, "t0 = ff: relative error 1, got {:?}", s.relative_error);
    assert!(r.table().contains("zigzag") && r.corruption_table().contains("relative error"));
    assert!(r.corruption_table().contains("t3 against ff, 95% CI: mean accuracy"), "{}", r.corruption_table());
    let csv = r.summary_csv();
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with(",0,3,"), "{csv}");
    // The corrupted image itself: the same for any batch position, and not the clean one.
    let (x, _) = data.batch(0, 2, &candle_core::Device::Cpu).unwrap();
    let a = Noise::Corruption(Corruption::Zigzag).apply_indexed(&x, 3, 10, (0.0, 1.0)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = Noise::Corruption(Corruption::Zigzag).apply_indexed(&x.narrow(0, 1, 1).unwrap(), 3, 11, (0.0, 1.0)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(&a[784..], &b[..]);
    assert_ne!(&a[784..], &x.flatten_all().unwrap().to_vec1::<f32>().unwrap()[784..]);
    // Serialised by name, and parsed.
    let json = serde_json::to_string(&Noise::Corruption(Corruption::MotionBlur)).unwrap();
    assert_eq!(json, r#"{"kind":"corruption","level":"motion_blur"}"#);
    assert_eq!(serde_json::from_str::<Noise>(&json).unwrap(), Noise::Corruption(Corruption::MotionBlur));
    assert_eq!(Noise::parse("motion-blur").unwrap(), Noise::Corruption(Corruption::MotionBlur));
    assert_eq!(Noise::corruptions().len(), 15);
}

/// `paper` sets β = 0.8, λ = 0.1, α = 0.01 on every pcoder; α = 0 zeroes α only; `predify`
/// restores the network's own.
#[test]
fn hyperparameter_presets() {
    let mut net = tiny_net("PTiny", "", 6);
    let base = eval::current_hyperparameters(net.pnet()).unwrap();
    HyperPreset::Paper.apply(net.pnet_mut(), &base, false).unwrap();
    for h in eval::current_hyperparameters(net.pnet()).unwrap() {
        assert_eq!((h.feedforward, h.feedback, h.pc), (0.8, 0.1, 0.01));
    }
    HyperPreset::Paper.apply(net.pnet_mut(), &base, true).unwrap();
    for h in eval::current_hyperparameters(net.pnet()).unwrap() {
        assert_eq!((h.feedforward, h.feedback, h.pc), (0.8, 0.1, 0.0));
    }
    HyperPreset::Predify.apply(net.pnet_mut(), &base, false).unwrap();
    assert_eq!(eval::current_hyperparameters(net.pnet()).unwrap(), base);
    let r = eval::evaluate(&net, &synthetic_set(10, 1), &EvalConfig { timesteps: 1, ..config() }).unwrap();
    assert_eq!(r.hyperparameters, base.iter().map(|h| [h.feedforward, h.feedback, h.pc]).collect::<Vec<_>>());
    assert_eq!(HyperPreset::parse("paper").unwrap().label(true), "paper α=0");
    assert!(HyperPreset::parse("nope").is_err());
}

/// Several noise draws per image: draw k is the single-draw evaluation with seed `seed + k`, the
/// accuracies are the draws' means, the clean condition is drawn once, and the intervals still
/// cover the differences.
#[test]
fn noise_draws_average_single_draw_evaluations() {
    let net = tiny_net("PTiny", "", 4);
    let data = synthetic_set(30, 10);
    let one = |seed| eval::evaluate(&net, &data, &EvalConfig { seed, ..config() }).unwrap();
    let (a, b) = (one(7), one(8));
    let both = eval::evaluate(&net, &data, &EvalConfig { seed: 7, draws: 2, ..config() }).unwrap();
    assert_eq!(both.draws, 2);
    for ((ra, rb), r) in a.results.iter().zip(&b.results).zip(&both.results) {
        assert!((r.feedforward - (ra.feedforward + rb.feedforward) / 2.0).abs() < 1e-12, "{:?}", r.noise);
        for (t, v) in r.timesteps.iter().enumerate() {
            assert!((v - (ra.timesteps[t] + rb.timesteps[t]) / 2.0).abs() < 1e-12, "{:?} t{t}", r.noise);
            let p = r.paired[t];
            assert!((p.diff - (v - r.feedforward)).abs() < 1e-12 && p.ci_lo <= p.diff + 1e-12 && p.diff <= p.ci_hi + 1e-12, "{p:?}");
            // cells over (draw, image) pairs; the clean condition has one draw
            let pairs = if r.noise == Noise::Clean { 30 } else { 60 };
            assert_eq!(p.both + p.only_ff + p.only_pc + p.neither, pairs, "{:?}", r.noise);
        }
    }
    assert_eq!(both.results[0], a.results[0], "the clean condition depends on the draws");
    assert!(both.table().contains("noise seeds 7..=8, 2 draws per image"), "{}", both.table());
    assert!(eval::evaluate(&net, &data, &EvalConfig { draws: 0, ..config() }).is_err());
    assert!(eval::evaluate(&net, &data, &EvalConfig { draws: eval::MAX_DRAWS + 1, ..config() }).is_err());
}
