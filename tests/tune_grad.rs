//! Hyperparameter tuning: its gradient (the runtime's backward pass through the unrolled
//! dynamics) against central finite differences, the recording against the runtime, each
//! backbone segment's adjoint against finite differences, and a short tuning run.

mod train_common;

use candle_core::{DType, Device, Module, Tensor};
use predify::runtime::{HyperLogits, Hyperparameters};
use predify::runtime::chain::Segmented;
use predify::common::Rng;
use predify::Predified;
use predify::runtime::unroll::Tape;
use predify::tune::{self, hyper_grads, TuneConfig};
use train_common::{synthetic_set, tiny_net};

fn batch(n: usize, seed: u64, sigma: f32) -> (Tensor, Vec<u32>) {
    let set = synthetic_set(n, seed);
    let (x, y) = predify::data::gather(&set, &(0..n).collect::<Vec<_>>(), &Device::Cpu).unwrap();
    let mut rng = Rng::new(seed);
    let x = predify::noise::Noise::Gaussian(sigma).apply(&x, &mut rng, (0.0, 1.0)).unwrap();
    (x, y)
}

fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
    let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let m = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    d / m.max(1e-12)
}

fn set_hyper<M: Predified>(m: &mut M, h: &[Hyperparameters]) {
    for (i, h) in h.iter().enumerate() {
        m.pnet_mut().set_hyperparameters(i, *h).unwrap();
    }
}

#[test]
fn unrolled_forward_matches_the_runtime() {
    for extra in ["", "gradient_scaling = true"] {
        let mut net = tiny_net("PTiny", extra, 1);
        set_hyper(&mut net, &[Hyperparameters { feedforward: 0.2, feedback: 0.3, pc: 0.4 }, Hyperparameters { feedforward: 0.5, feedback: 0.1, pc: 0.2 }]);
        let (x, _) = batch(6, 1, 0.5);
        let (logits, _) = Predified::run(&net, &x, 5).unwrap();
        let tape = Tape::record(&net, &x, 5).unwrap();
        for (t, (a, b)) in tape.logits().iter().zip(&logits).enumerate() {
            let e = max_rel(a, b);
            assert!(e < 1e-5, "{extra:?}: timestep {t}: logits differ by {e:e}");
        }
    }
}

fn loss_with<M: Segmented>(net: &mut M, logits: &[HyperLogits], x: &Tensor, y: &[u32], steps: usize, frozen: Option<&Tape>) -> f64 {
    for (i, l) in logits.iter().enumerate() {
        net.pnet_mut().set_logits(i, *l).unwrap();
    }
    let tape = match frozen {
        Some(f) => Tape::record_frozen(&*net, x, steps, f).unwrap(),
        None => Tape::record(&*net, x, steps).unwrap(),
    };
    tape.logits().iter().map(|l| predify::loss::cross_entropy(l, y).unwrap().0).sum()
}

fn perturbed(l: &[HyperLogits], i: usize, j: usize, d: f32) -> Vec<HyperLogits> {
    let mut l = l.to_vec();
    match j {
        0 => l[i].ff_part += d,
        1 => l[i].fb_part += d,
        2 => l[i].mem_part += d,
        _ => l[i].errorm += d,
    }
    l
}

/// Central differences of the loss (error gradients frozen at the base run's values) against
/// the analytic gradient, for every logit of every pcoder.
fn check_finite_differences(extra: &str, hyper: [Hyperparameters; 2], frozen: bool, what: &str) {
    // α can only move up from 0 (the runtime rejects a negative α): skip it there.
    let params = if hyper.iter().any(|h| h.pc == 0.0) { 3 } else { 4 };
    let mut net = tiny_net("PTiny", extra, 2);
    set_hyper(&mut net, &hyper);
    let base: Vec<HyperLogits> = (0..2).map(|i| net.pnet().logits(i).unwrap()).collect();
    let (x, y) = batch(8, 3, 0.6);
    let steps = 5;
    let (g, tape) = hyper_grads(&net, &x, &y, steps, None).unwrap();
    let frozen_tape = if frozen { Some(&tape) } else { None };
    let l0 = loss_with(&mut net, &base, &x, &y, steps, frozen_tape);
    assert!((l0 - g.loss).abs() < 1e-9 * l0.abs().max(1.0), "{what}: loss {l0} vs {}", g.loss);
    let mut checked = 0;
    for i in 0..2 {
        for j in 0..params {
            // α is raw (step relative to its size); logits move in σ space.
            let h = if j == 3 { 0.02 * base[i].errorm.abs().max(0.01) } else { 0.02 };
            let lp = loss_with(&mut net, &perturbed(&base, i, j, h), &x, &y, steps, frozen_tape);
            let lm = loss_with(&mut net, &perturbed(&base, i, j, -h), &x, &y, steps, frozen_tape);
            let fd = (lp - lm) / (2.0 * h as f64);
            let an = g.logits[i][j];
            let tol = 2e-3 + 0.03 * an.abs().max(fd.abs());
            println!("{what}: pcoder{} param {j}: analytic {an:+.6e}, finite difference {fd:+.6e}", i + 1);
            assert!((an - fd).abs() <= tol, "{what}: pcoder{} logit {j}: analytic {an:e} vs finite difference {fd:e}", i + 1);
            checked += usize::from(an.abs() > 1e-3);
        }
    }
    assert!(checked >= 4, "{what}: too few non-trivial gradients to be a test ({checked})");
}

#[test]
fn gradient_matches_finite_differences_with_frozen_error_term() {
    let h = [Hyperparameters { feedforward: 0.3, feedback: 0.3, pc: 0.5 }, Hyperparameters { feedforward: 0.4, feedback: 0.2, pc: 0.3 }];
    check_finite_differences("", h, true, "PCoder");
    check_finite_differences("gradient_scaling = true", [Hyperparameters { pc: 0.05, ..h[0] }, Hyperparameters { pc: 0.02, ..h[1] }], true, "PCoderN");
}

#[test]
fn with_alpha_zero_the_gradient_is_the_true_dynamics_gradient() {
    // α = 0: the error term vanishes, so holding it constant changes nothing and the finite
    // differences of the real dynamics (error gradients recomputed) must match too.
    let h = [Hyperparameters { feedforward: 0.3, feedback: 0.3, pc: 0.0 }, Hyperparameters { feedforward: 0.4, feedback: 0.2, pc: 0.0 }];
    check_finite_differences("gradient_scaling = true", h, false, "α=0, live error term");
}

#[test]
fn segment_adjoints_match_finite_differences() {
    // The real mnist-8 network: every segment's VJP against a directional central difference.
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let backbone = predify::zoo::mnist8::Mnist8::from_onnx(root.join(predify::zoo::mnist8::MODEL_FILE)).unwrap();
    let vm = candle_nn::VarMap::new();
    let net = predify::zoo::mnist8::PMnist8::new(backbone.clone(), candle_nn::VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let (x, _) = batch(1, 5, 0.3);
    let plain = backbone.forward(&x).unwrap();
    let mut h = x.clone();
    let mut inputs = Vec::new();
    for k in 0..=2 {
        inputs.push(h.clone());
        h = net.segment_forward(k, &h).unwrap();
    }
    assert!(max_rel(&h, &plain) < 1e-6, "segments do not compose to the backbone");
    let mut rng = Rng::new(9);
    // Max pooling is not differentiable at ties (a ReLU output's all-zero windows): probe the
    // segments at inputs drawn from a continuous distribution instead.
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| Tensor::from_vec((0..t.elem_count()).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect::<Vec<_>>(), t.dims(), &Device::Cpu).unwrap())
        .collect();
    for (k, xin) in inputs.iter().enumerate() {
        // Every layer is piecewise linear, so a central difference along one input coordinate is
        // exact unless a kink is crossed; probe single coordinates (few outputs move, little
        // rounding) with a step far from the kinks of a continuous random input.
        let out = net.segment_forward(k, xin).unwrap();
        let g = Tensor::from_vec((0..out.elem_count()).map(|_| rng.normal() as f32).collect::<Vec<_>>(), out.dims(), &Device::Cpu).unwrap();
        let vjp = net.segment_backward(k, xin, &g).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let base = xin.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let eps = 1e-3f32;
        let mut worst = 0f64;
        for _ in 0..8 {
            let i = rng.below(base.len() as u64) as usize;
            let at = |d: f32| {
                let mut v = base.clone();
                v[i] += d;
                net.segment_forward(k, &Tensor::from_vec(v, xin.dims(), &Device::Cpu).unwrap()).unwrap()
            };
            // difference first: the outputs the coordinate does not reach cancel exactly
            let diff = (at(eps) - at(-eps)).unwrap();
            let fd = (diff * &g).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64 / (2.0 * eps as f64);
            let an = vjp[i] as f64;
            worst = worst.max((an - fd).abs() / an.abs().max(0.05));
            assert!((an - fd).abs() <= 1e-3 + 1e-2 * an.abs(), "segment {k}, input {i}: vjp {an} vs finite difference {fd}");
        }
        println!("segment {k}: VJP matches central differences on 8 coordinates (worst relative {worst:.1e})");
    }
}

#[test]
fn cross_entropy_gradient_is_softmax_minus_onehot() {
    let logits = Tensor::new(&[[1.0f32, 2.0, 0.5], [0.0, -1.0, 3.0]], &Device::Cpu).unwrap();
    let (l, g) = predify::loss::cross_entropy(&logits, &[1, 2]).unwrap();
    let row = |r: [f64; 3], y: usize| {
        let z: f64 = r.iter().map(|v| v.exp()).sum();
        (z.ln() - r[y], r.map(|v| v.exp() / z))
    };
    let (l0, p0) = row([1.0, 2.0, 0.5], 1);
    let (l1, p1) = row([0.0, -1.0, 3.0], 2);
    assert!((l - (l0 + l1) / 2.0).abs() < 1e-6);
    let g = g.to_vec2::<f32>().unwrap();
    for c in 0..3 {
        assert!((g[0][c] as f64 - (p0[c] - f64::from(c == 1)) / 2.0).abs() < 1e-6);
        assert!((g[1][c] as f64 - (p1[c] - f64::from(c == 2)) / 2.0).abs() < 1e-6);
    }
}

#[test]
fn tuning_runs_and_keeps_hyperparameters_valid() {
    let mut net = tiny_net("PTiny", "", 4);
    let data = synthetic_set(40, 4);
    let cfg = TuneConfig { steps: 3, batch_size: 10, batches_per_step: 2, timesteps: 3, progress: false, ..TuneConfig::default() };
    let before: Vec<Hyperparameters> = (0..2).map(|i| net.pnet().hyperparameters(i).unwrap()).collect();
    let hist = tune::tune(&mut net, &data, &cfg).unwrap();
    assert_eq!(hist.len(), 3);
    assert!(hist.iter().all(|s| s.loss.is_finite()));
    let after: Vec<Hyperparameters> = (0..2).map(|i| net.pnet().hyperparameters(i).unwrap()).collect();
    assert_ne!(before, after, "tuning changed nothing");
    for h in &after {
        assert!(h.feedforward > 0.0 && h.feedback >= 0.0 && h.feedforward + h.feedback <= 1.0 && h.pc >= 0.0, "{h:?}");
    }
    // the logits moved by about lr per step (Adam), α by about 1e-4 per step
    let l0 = HyperLogits::from_hyperparameters(before[0]);
    let l1 = net.pnet().logits(0).unwrap();
    assert!((l1.ff_part - l0.ff_part).abs() <= 0.031 && (l1.ff_part - l0.ff_part).abs() > 1e-4, "{l0:?} -> {l1:?}");
    assert!((l1.errorm - l0.errorm).abs() <= 3.1e-4, "{l0:?} -> {l1:?}");
}
