//! Training, evaluation and tuning are data-set generic: a small predified network on synthetic
//! 3×12×12 "RGB" images of 5 classes, held in a `TensorDataset` and split with `split_off`,
//! goes through the trainer, the evaluator and the tuner; and the `Dataset` helpers report bad
//! requests as errors.

mod train_common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use predify::common::Rng;
use predify::data::{gather, split_off, Dataset, Subset, TensorDataset};
use predify::eval::{self, EvalConfig};
use predify::noise::Noise;
use predify::runtime::layers::{Conv, Linear, MaxPool};
use predify::runtime::sequential::{Op, PredifiedSequential, Sequential};
use predify::runtime::CSqrtSource;
use predify::spec::Spec;
use predify::train::{self, OptimizerConfig, TrainConfig, Trainer};
use predify::tune::{self, TuneConfig};
use predify::Predified;
use std::collections::HashMap;
use train_common::conv_spec;

const CLASSES: usize = 5;
const SHAPE: [usize; 3] = [3, 12, 12];

fn uniform(rng: &mut Rng, dims: &[usize], bound: f64) -> Tensor {
    let v: Vec<f32> = (0..dims.iter().product()).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// conv 3→4, relu [pcoder1: 4×12×12], pool 2, conv 4→6, relu [pcoder2: 6×6×6], pool 2,
/// flatten, linear 54 → 5; seeded backbone, feedback weights initialised with `seed`.
fn rgb_net(seed: u64) -> PredifiedSequential {
    let mut rng = Rng::new(777);
    let mut t = HashMap::new();
    t.insert("f0.weight".to_string(), uniform(&mut rng, &[4, 3, 3, 3], 0.4));
    t.insert("f0.bias".to_string(), uniform(&mut rng, &[4], 0.1));
    t.insert("f3.weight".to_string(), uniform(&mut rng, &[6, 4, 3, 3], 0.3));
    t.insert("f3.bias".to_string(), uniform(&mut rng, &[6], 0.1));
    t.insert("c0.weight".to_string(), uniform(&mut rng, &[CLASSES, 54], 0.3));
    t.insert("c0.bias".to_string(), uniform(&mut rng, &[CLASSES], 0.1));
    let vb = VarBuilder::from_tensors(t, DType::F32, &Device::Cpu);
    let pool = |name| Op::MaxPool(MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, name).unwrap());
    let mut s = Sequential::new();
    s.push("features[0]", Op::Conv(Conv::load(&conv_spec(3, 4), false, vb.pp("f0"), "f0").unwrap()));
    s.push("features[1]", Op::Relu);
    s.push("features[2]", pool("f2"));
    s.push("features[3]", Op::Conv(Conv::load(&conv_spec(4, 6), false, vb.pp("f3"), "f3").unwrap()));
    s.push("features[4]", Op::Relu);
    s.push("features[5]", pool("f5"));
    s.push("flatten", Op::Flatten { start_dim: 1 });
    s.push("classifier[0]", Op::Linear(Linear::load(54, CLASSES, true, vb.pp("c0"), "c0").unwrap()));
    let spec = Spec::from_toml_str(
        "name = \"PRgb\"\ninput_size = [3, 12, 12]\n\
         [[pcoders]]\nmodule = \"features[1]\"\npredictor = \"ConvTranspose2d(4, 3, kernel_size=3, stride=1, padding=1)\"\n\
         [[pcoders]]\nmodule = \"features[4]\"\n",
    )
    .unwrap();
    let vm = candle_nn::VarMap::new();
    let net = PredifiedSequential::new(s, &spec, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), CSqrtSource::Exact).unwrap();
    train::init_feedback(net.pnet(), seed).unwrap();
    net
}

/// `n` images in [0, 1]: a smooth colour pattern per class (class `i % 5`) plus pixel noise.
fn rgb_set(n: usize, seed: u64) -> TensorDataset {
    let mut rng = Rng::new(seed);
    let (c, h, w) = (SHAPE[0], SHAPE[1], SHAPE[2]);
    let mut values = Vec::with_capacity(n * c * h * w);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % CLASSES;
        labels.push(k as u32);
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let phase = (k * 3 + ch) as f64;
                    let v = 0.5 + 0.4 * ((x as f64 * 0.5 + phase).sin() * (y as f64 * 0.3 * (k + 1) as f64).cos());
                    values.push((v + 0.05 * rng.normal()).clamp(0.0, 1.0) as f32);
                }
            }
        }
    }
    TensorDataset::from_vec(values, SHAPE.to_vec(), labels).unwrap()
}

#[test]
fn gather_and_subsets_keep_the_item_shape_and_labels() {
    let set = rgb_set(20, 1);
    assert_eq!((set.len(), set.item_shape()), (20, &SHAPE[..]));
    let (x, y) = gather(&set, &[3, 17, 3], &Device::Cpu).unwrap();
    assert_eq!(x.dims(), [3, 3, 12, 12]);
    assert_eq!(y, [3, 2, 3]);
    let first = x.get(0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(first, set.values()[3 * 432..4 * 432]);
    // a held-out split is a view: its item 0 is the set's item 15
    let (train_part, held_out) = split_off(&set, 5).unwrap();
    assert_eq!((train_part.len(), held_out.len(), held_out.range()), (15, 5, 15..20));
    let (h0, hy) = gather(&held_out, &[0], &Device::Cpu).unwrap();
    assert_eq!(h0.flatten_all().unwrap().to_vec1::<f32>().unwrap(), set.values()[15 * 432..16 * 432]);
    assert_eq!(hy, [0]);
    // a TensorDataset from a tensor holds the same items
    let again = TensorDataset::new(&gather(&set, &(0..20).collect::<Vec<_>>(), &Device::Cpu).unwrap().0, set.labels().to_vec()).unwrap();
    assert_eq!(again, set);
    // bad requests are errors naming what is wrong
    let e = gather(&held_out, &[5], &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("index 5") && e.contains("has 5"), "{e}");
    assert!(Subset::new(&set, 10..21).is_err());
    assert!(split_off(&rgb_set(1, 1), 1).is_err());
    let e = TensorDataset::from_vec(vec![0.0; 10], vec![3, 2], vec![0, 1]).unwrap_err().to_string();
    assert!(e.contains("need 12 values, found 10"), "{e}");
}

#[test]
fn trainer_evaluator_and_tuner_run_on_rgb_images() {
    let set = rgb_set(60, 2);
    let (train_part, val) = split_off(&set, 12).unwrap();
    let net = rgb_net(3);

    // feedback training: finite losses that fall epoch after epoch
    let before = train::reconstruction_loss(&net, &val, None, 8).unwrap();
    let config = TrainConfig {
        epochs: 4,
        batch_size: 8,
        seed: 5,
        optimizer: OptimizerConfig::Sgd { lr: 0.02, weight_decay: 0.0, momentum: 0.5 },
        progress: false,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&net, config).unwrap();
    let reports = trainer.fit(&train_part, Some(&val)).unwrap();
    assert_eq!(reports.len(), 4);
    for r in &reports {
        println!("epoch {}: train {:?}, held-out {:?}", r.epoch + 1, r.train_loss, r.val_loss);
        assert_eq!((r.train_loss.len(), r.val_loss.len()), (2, 2));
        assert!(r.train_loss.iter().chain(&r.val_loss).all(|l| l.is_finite() && *l >= 0.0), "{r:?}");
    }
    for (i, before) in before.iter().enumerate() {
        let train_curve: Vec<f32> = reports.iter().map(|r| r.train_loss[i]).collect();
        assert!(train_curve.windows(2).all(|w| w[1] < w[0]), "pcoder{}: training loss not decreasing: {train_curve:?}", i + 1);
        let after = reports.last().unwrap().val_loss[i];
        assert!(after < *before, "pcoder{}: held-out loss {before} -> {after}", i + 1);
    }

    // robustness evaluation, also through `&dyn Dataset`
    let config = EvalConfig {
        timesteps: 3,
        batch_size: 16,
        seed: 1,
        draws: 1,
        noises: vec![Noise::Clean, Noise::Gaussian(0.3), Noise::SaltPepper(0.1)],
        limit: None,
        pixel_range: (0.0, 1.0),
        progress: false,
    };
    let dyn_set: &dyn Dataset = &set;
    let report = eval::evaluate(&net, dyn_set, &config).unwrap();
    println!("{}", report.table());
    assert_eq!((report.network.as_str(), report.images, report.timesteps), ("PRgb", 60, 3));
    assert_eq!(report.results.len(), 3, "one row per condition");
    for r in &report.results {
        assert_eq!(r.images, 60);
        assert_eq!(r.timesteps.len(), 4, "{:?}: timesteps 0..=3", r.noise);
        assert_eq!(r.timesteps[0], r.feedforward, "{:?}: timestep 0 is the feedforward pass", r.noise);
        for v in r.timesteps.iter().chain([&r.feedforward]) {
            let k = v * 60.0;
            assert!((0.0..=1.0).contains(v) && (k - k.round()).abs() < 1e-9, "{v} is not a count of 60");
        }
    }
    assert_eq!(report.table().lines().count(), 2 + 3);
    assert_eq!(eval::evaluate(&net, &set, &config).unwrap().results, report.results, "generic and dyn calls differ");

    // hyperparameter tuning on the held-out part
    let mut net = net;
    let tc = TuneConfig { steps: 2, batch_size: 6, batches_per_step: 2, timesteps: 2, progress: false, ..TuneConfig::default() };
    let hist = tune::tune(&mut net, &val, &tc).unwrap();
    assert_eq!(hist.len(), 2);
    assert!(hist.iter().all(|s| s.loss.is_finite() && s.hyperparameters.len() == 2), "{hist:?}");
}

#[test]
fn a_set_of_the_wrong_shape_is_an_error_not_a_panic() {
    let net = rgb_net(1);
    let mnist_like = train_common::synthetic_set(4, 1); // [1, 28, 28]
    let config = EvalConfig { timesteps: 1, batch_size: 4, progress: false, ..EvalConfig::default() };
    assert!(eval::evaluate(&net, &mnist_like, &config).is_err());
    let e = predify::train::supervised::accuracy(&predify::train::supervised::init_backbone(0).unwrap(), &rgb_set(5, 1), 5).unwrap_err().to_string();
    assert!(e.contains("[3, 12, 12]"), "{e}");
}
