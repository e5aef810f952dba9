//! Training the feedback weights through time (`predify::train::through_time`) on the tiny
//! predified network of `train_common` and synthetic digits:
//!
//! * a few steps on a fixed batch lower the cross-entropy at timestep T, change the predictor
//!   weights the loss reaches and leave the backbone and the hyperparameters alone;
//! * `fit` runs over a `Dataset` and writes a checkpoint that loads back as the trained weights;
//! * a step that would write non-finite weights, or that sees a non-finite input, is an error
//!   and leaves the weights bit for bit as they were.

mod train_common;

use candle_core::{Device, Tensor};
use predify::data::{gather, split_off, Dataset};
use predify::runtime::unroll::{LossOn, Semantics, Tape};
use predify::train::{self, Checkpoint, OptimizerConfig, ThroughTime, ThroughTimeTrainer, TrainConfig};
use predify::Predified;
use train_common::{synthetic_set, temp_dir, tiny_net, weights};

fn config(optimizer: OptimizerConfig) -> TrainConfig {
    TrainConfig { epochs: 1, batch_size: 10, seed: 3, optimizer, progress: false, ..TrainConfig::default() }
}

fn tt(semantics: Semantics) -> ThroughTime {
    ThroughTime { timesteps: 3, loss_on: LossOn::Last, semantics }
}

/// The logits of the feedforward pass (the backbone alone) and every pcoder's β, λ, α.
fn backbone_and_hyper(net: &predify::runtime::sequential::PredifiedSequential, x: &Tensor) -> (Vec<f32>, Vec<[f32; 3]>) {
    let logits = Tape::record(net, x, 1).unwrap().steps()[0].logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let hyper = (0..net.pnet().len())
        .map(|i| {
            let h = net.pnet().hyperparameters(i).unwrap();
            [h.feedforward, h.feedback, h.pc]
        })
        .collect();
    (logits, hyper)
}

fn changed(before: &[(String, Vec<f32>)], after: &[(String, Vec<f32>)], prefix: &str) -> bool {
    before.iter().zip(after).filter(|((n, _), _)| n.starts_with(prefix)).any(|((_, a), (_, b))| a != b)
}

#[test]
fn steps_on_a_batch_lower_the_loss_at_t_and_touch_only_the_predictors() {
    let set = synthetic_set(20, 7);
    let (x, labels) = gather(&set, &(0..20).collect::<Vec<_>>(), &Device::Cpu).unwrap();
    for semantics in [Semantics::Predify, Semantics::Exact] {
        let net = tiny_net("PTiny", "", 11);
        let tt = tt(semantics);
        let w0 = weights(net.pnet());
        let fixed0 = backbone_and_hyper(&net, &x);
        let loss0 = train::through_time_grads(&net, &x, &labels, &tt).unwrap().loss;
        let mut trainer = ThroughTimeTrainer::new(&net, config(OptimizerConfig::Adam { lr: 0.02, weight_decay: 0.0 }), tt).unwrap();
        let mut losses = Vec::new();
        for _ in 0..8 {
            losses.push(trainer.step_batch(&x, &labels).unwrap());
        }
        let loss1 = train::through_time_grads(&net, &x, &labels, &tt).unwrap().loss;
        println!("{semantics:?}: {loss0:.5} -> {loss1:.5} ({losses:?})");
        assert_eq!(losses[0], loss0, "step_batch reports the loss before its update");
        assert!(loss1 < loss0 - 1e-3, "{semantics:?}: cross-entropy at T {loss0} -> {loss1}");
        let w1 = weights(net.pnet());
        // pcoder2's prediction enters pcoder1's update (λ = 0.3): it reaches the loss either way
        assert!(changed(&w0, &w1, "pcoder2."), "{semantics:?}: pcoder2's predictor did not change");
        // pcoder1's prediction reaches the loss only through the error term, which Predify's
        // semantics hold constant: gradient 0, and Adam leaves a zero-gradient weight alone
        assert_eq!(changed(&w0, &w1, "pcoder1."), semantics == Semantics::Exact, "{semantics:?}: pcoder1's predictor");
        assert_eq!(backbone_and_hyper(&net, &x), fixed0, "{semantics:?}: the backbone or the hyperparameters changed");
        assert_eq!(trainer.optimizer().state().steps, 8);
    }
}

#[test]
fn the_summed_loss_covers_timesteps_one_to_t() {
    let set = synthetic_set(10, 2);
    let (x, labels) = gather(&set, &(0..10).collect::<Vec<_>>(), &Device::Cpu).unwrap();
    let net = tiny_net("PTiny", "", 5);
    let tape = Tape::record(&net, &x, 4).unwrap();
    let ce = |t: usize| predify::loss::cross_entropy(&tape.steps()[t].logits, &labels).unwrap().0;
    let sum = ThroughTime { loss_on: LossOn::Sum, ..tt(Semantics::Predify) };
    let got = train::through_time_grads(&net, &x, &labels, &sum).unwrap().loss;
    assert!((got - (ce(1) + ce(2) + ce(3))).abs() < 1e-9, "{got} vs {}", ce(1) + ce(2) + ce(3));
    let last = train::through_time_grads(&net, &x, &labels, &tt(Semantics::Predify)).unwrap().loss;
    assert!((last - ce(3)).abs() < 1e-9);
    let zero = ThroughTime { timesteps: 0, ..tt(Semantics::Predify) };
    assert!(train::through_time_grads(&net, &x, &labels, &zero).is_err(), "T = 0 accepted");
    assert!(ThroughTimeTrainer::new(&net, config(OptimizerConfig::Adam { lr: 0.01, weight_decay: 0.0 }), zero).is_err());
}

#[test]
fn fit_runs_over_a_dataset_and_checkpoints_the_trained_weights() {
    let set = synthetic_set(40, 4);
    let (train_part, val) = split_off(&set, 10).unwrap();
    let net = tiny_net("PTiny", "", 2);
    let dir = temp_dir("through-time-fit");
    let path = dir.join("ck.safetensors");
    let cfg = TrainConfig {
        epochs: 2,
        checkpoint: Some(path.clone()),
        ..config(OptimizerConfig::Sgd { lr: 0.05, weight_decay: 1e-4, momentum: 0.9 })
    };
    let before = train::through_time_loss(&net, &val, None, 10, &tt(Semantics::Predify)).unwrap();
    let mut trainer = ThroughTimeTrainer::new(&net, cfg, tt(Semantics::Predify)).unwrap();
    let reports = trainer.fit(&train_part, Some(&val as &dyn Dataset)).unwrap();
    println!("held-out before {before}; {reports:?}");
    assert_eq!(reports.iter().map(|r| r.epoch).collect::<Vec<_>>(), [0, 1]);
    assert!(reports.iter().all(|r| r.train_loss.is_finite() && r.val_loss.is_some_and(f64::is_finite)), "{reports:?}");
    assert!(reports[1].val_loss.unwrap() < before, "held-out loss at T {before} -> {:?}", reports[1].val_loss);
    assert_eq!((trainer.position().epoch, trainer.position().global_step), (2, 6));
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.extra.get("mode").map(String::as_str), Some("through-time"));
    assert_eq!(ck.position.global_step, 6);
    // the file holds the trained weights: applied to a fresh network, they are the same
    let fresh = tiny_net("PTiny", "", 99);
    assert_ne!(weights(fresh.pnet()), weights(net.pnet()));
    ck.apply_to(fresh.pnet(), &path).unwrap();
    assert_eq!(weights(fresh.pnet()), weights(net.pnet()));
}

#[test]
fn non_finite_steps_are_errors_that_leave_the_weights_alone() {
    let set = synthetic_set(10, 9);
    let (x, labels) = gather(&set, &(0..10).collect::<Vec<_>>(), &Device::Cpu).unwrap();
    let net = tiny_net("PTiny", "", 4);
    // a learning rate that overflows f32: the update would write infinities
    let mut trainer = ThroughTimeTrainer::new(&net, config(OptimizerConfig::Sgd { lr: 1e39, weight_decay: 0.0, momentum: 0.9 }), tt(Semantics::Exact)).unwrap();
    let w0 = weights(net.pnet());
    let e = trainer.step_batch(&x, &labels).unwrap_err().to_string();
    assert!(e.contains("epoch 1, step 1") && e.contains("not be finite"), "{e}");
    assert_eq!(weights(net.pnet()), w0, "weights changed by a rejected step");
    let state = trainer.optimizer().state();
    assert_eq!((state.steps, state.buffers.len()), (0, 0), "the optimiser kept the rejected step");
    assert_eq!(trainer.position().global_step, 0);

    // a NaN in the input: no finite loss, no update
    let mut trainer = ThroughTimeTrainer::new(&net, config(OptimizerConfig::Adam { lr: 0.01, weight_decay: 0.0 }), tt(Semantics::Predify)).unwrap();
    let mut v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v[100] = f32::NAN;
    let bad = Tensor::from_vec(v, x.dims(), &Device::Cpu).unwrap();
    let e = trainer.step_batch(&bad, &labels).expect_err("a NaN input trained").to_string();
    assert!(e.contains("epoch 1, step 1") && e.contains("not finite"), "{e}");
    assert_eq!(weights(net.pnet()), w0, "weights changed by a NaN input");
    // and the trainer still works on good data afterwards
    trainer.step_batch(&x, &labels).unwrap();
    assert_ne!(weights(net.pnet()), w0);
}
