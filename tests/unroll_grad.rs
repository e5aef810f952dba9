//! Gradients through the unrolled dynamics (`predify::runtime::unroll`) against central finite
//! differences, on the small networks of the unrolled-gradient fixtures (one with ReLU
//! predictors and plain PCoders, one with Upsample + ConvTranspose predictors and gradient
//! scaling):
//!
//! * the Exact semantics against the loss of the real forward pass (error gradients
//!   recomputed), for the input, every predictor's weights and every pcoder's β, λ, α and
//!   logits;
//! * Predify's semantics against the loss of the forward pass with the error gradients frozen
//!   at the base run's values ([`Tape::record_frozen`]), for the same quantities.
//!
//! The runtime computes in f32 only, so the loss (accumulated in f64 from f32 logits) carries
//! ~1e-6 of rounding; steps of 1e-2 (relative to each quantity's scale) keep the difference
//! quotient's noise near 1e-4 while the networks' kinks (ReLU, max pooling) are rarely
//! crossed; directional derivatives along random directions test every coordinate at once.
//!
//! An `#[ignore]`d bench (`unroll_speed_at_mnist_scale`) times the recording and the backward
//! passes on PMnist8.

#[allow(dead_code)] // the parity helpers this test does not use
mod common;
mod unroll_common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::fixture::{fixture_names_in, unroll_fixture_dir, Fixture};
use predify::runtime::chain::Segmented;
use predify::runtime::sequential::PredifiedSequential;
use predify::runtime::unroll::{cross_entropy, cross_entropy_grads, BackwardOptions, LossOn, Semantics, Tape, UnrollGrads};
use predify::runtime::{CSqrtSource, Hyperparameters};
use predify::Predified;
use unroll_common::{conv3x3, uniform_fan_in};

/// A fixed pseudo-random sequence (xorshift64*), normal draws by Box–Muller.
struct Draws(u64);

impl Draws {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
    /// A direction shaped like `like`, scaled to `like`'s largest magnitude.
    fn direction(&mut self, like: &Tensor) -> Tensor {
        let scale = like.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-3) as f64;
        let v: Vec<f32> = (0..like.elem_count()).map(|_| (self.normal() * scale) as f32).collect();
        Tensor::from_vec(v, like.dims(), like.device()).unwrap()
    }
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() * b.to_dtype(DType::F64).unwrap()).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
}

fn load(name: &str) -> (PredifiedSequential, Tensor, Vec<usize>, usize) {
    let fx = Fixture::load_from(&unroll_fixture_dir(), name).unwrap();
    let vb = VarBuilder::from_tensors(fx.tensors.clone(), DType::F32, &Device::Cpu);
    let model = PredifiedSequential::new(fx.backbone.clone(), &fx.spec, vb, CSqrtSource::CheckpointOrExact).unwrap();
    let x = fx.tensor("input").unwrap().clone();
    let labels = fx.tensor("labels").unwrap().to_vec1::<f32>().unwrap().iter().map(|&v| v as usize).collect();
    let steps = fx.meta["timesteps"].as_u64().unwrap() as usize;
    (model, x, labels, steps)
}

/// A small network built for finite differences: a linear backbone (no ReLU or pooling, whose
/// kinks would dominate a difference quotient; the parity test covers them) of three
/// convolutions and a linear layer on `[1, 8, 8]` images, with a pcoder after each
/// convolution. The predictors cover every predictor layer kind: ConvTranspose2d (pcoder 1),
/// Upsample + ConvTranspose2d + ReLU (pcoder 2), ConvTranspose2d + ReLU (pcoder 3). α is large
/// enough that the error term moves the representations visibly. With `scaling`, PCoderN.
fn small_net(scaling: bool) -> (PredifiedSequential, Tensor, Vec<usize>, usize) {
    use predify::runtime::layers::{Conv, Linear};
    use predify::runtime::sequential::{Op, Sequential};
    use predify::spec::Spec;
    let mut draws = Draws(0xfeed);
    let mut uniform = |dims: &[usize], fan_in: usize| uniform_fan_in(&mut || draws.uniform(), dims, fan_in);
    let mut bb = Sequential::new();
    for (j, (cin, cout, stride)) in [(1, 4, 1), (4, 6, 2), (6, 6, 1)].into_iter().enumerate() {
        let (w, b) = (uniform(&[cout, cin, 3, 3], cin * 9), uniform(&[cout], cin * 9));
        bb.push(format!("features[{j}]"), Op::Conv(Conv::new(conv3x3(cin, cout, stride), false, w, Some(b), "conv").unwrap()));
    }
    bb.push("flatten", Op::Flatten { start_dim: 1 });
    bb.push("classifier[0]", Op::Linear(Linear::new(uniform(&[5, 96], 96), Some(uniform(&[5], 96)), "fc").unwrap()));
    let mut t = std::collections::HashMap::new();
    for (name, dims) in [
        ("pcoder1.pmodule.weight", vec![4, 1, 3, 3]),
        ("pcoder1.pmodule.bias", vec![1]),
        ("pcoder2.pmodule.1.weight", vec![6, 4, 3, 3]),
        ("pcoder2.pmodule.1.bias", vec![4]),
        ("pcoder3.pmodule.0.weight", vec![6, 6, 3, 3]),
        ("pcoder3.pmodule.0.bias", vec![6]),
    ] {
        let fan_in = if dims.len() == 4 { dims[0] * 9 } else { 30 };
        t.insert(name.to_string(), uniform(&dims, fan_in));
    }
    let alpha = if scaling { [0.5, 1.5, 1.0] } else { [30.0, 100.0, 50.0] };
    let toml = format!(
        "name = \"Small\"\ninput_size = [1, 8, 8]\ngradient_scaling = {scaling}\n\
         [[pcoders]]\nmodule = \"features[0]\"\npredictor = \"ConvTranspose2d(4, 1, kernel_size=3, stride=1, padding=1)\"\n\
         hyperparameters = {{feedforward = 0.3, feedback = 0.3, pc = {}}}\n\
         [[pcoders]]\nmodule = \"features[1]\"\n\
         predictor = \"Sequential(Upsample(scale_factor=(2.0, 2.0), mode='bilinear', align_corners=False), ConvTranspose2d(6, 4, kernel_size=3, stride=1, padding=1), ReLU())\"\n\
         hyperparameters = {{feedforward = 0.4, feedback = 0.2, pc = {}}}\n\
         [[pcoders]]\nmodule = \"features[2]\"\npredictor = \"Sequential(ConvTranspose2d(6, 6, kernel_size=3, stride=1, padding=1), ReLU())\"\n\
         hyperparameters = {{feedforward = 0.5, feedback = 0.0, pc = {}}}\n",
        alpha[0], alpha[1], alpha[2]
    );
    let spec = Spec::from_toml_str(&toml).unwrap();
    let model = PredifiedSequential::new(bb, &spec, VarBuilder::from_tensors(t, DType::F32, &Device::Cpu), CSqrtSource::Exact).unwrap();
    let x = Tensor::from_vec((0..3 * 64).map(|_| draws.uniform() as f32).collect::<Vec<_>>(), (3, 1, 8, 8), &Device::Cpu).unwrap();
    (model, x, vec![0, 3, 1], 5)
}

fn names() -> Vec<String> {
    let names = fixture_names_in(&unroll_fixture_dir()).expect("listing the unroll fixtures");
    assert!(!names.is_empty(), "no unroll fixtures in {}", unroll_fixture_dir().display());
    names
}

/// Σ over timesteps of the cross-entropy of the forward pass (error gradients frozen at
/// `frozen`'s when given).
fn forward(model: &PredifiedSequential, x: &Tensor, steps: usize, frozen: Option<&Tape>) -> Tape {
    match frozen {
        Some(f) => Tape::record_frozen(model, x, steps, f).unwrap(),
        None => Tape::record(model, x, steps).unwrap(),
    }
}

/// The pcoders of [`small_net`] whose predictor ends in a ReLU.
const RELU_PCODERS: [usize; 2] = [1, 2];

/// Which outputs of the ReLU-ended predictors are positive, at every timestep: the pieces of
/// the piecewise-smooth dynamics (the backbone of [`small_net`] is linear).
fn masks(tape: &Tape) -> Vec<Vec<u8>> {
    tape.steps()
        .iter()
        .flat_map(|s| RELU_PCODERS.iter().map(|&i| s.prd[i].gt(0f32).unwrap().flatten_all().unwrap().to_vec1::<u8>().unwrap()))
        .collect()
}

/// A central difference `(L(+h) − L(−h)) / (L's offsets)` taken where it measures the slope.
///
/// The dynamics are smooth except where a predictor ReLU switches, and there the exact error
/// term even jumps (`grd = J_Pᵀ·k·(P(r) − y)`: `J_P`'s mask flips while the target `y` is not
/// 0), so a step across a switch measures a jump, not the slope. `f(s)` runs the forward pass
/// at offset `s` and returns its recording and the offset actually applied (hyperparameters
/// are f32); the largest step `h·scale` whose two runs have every ReLU in the same state as the
/// base run is used: the loss is smooth on that segment, and the quotient's error is its
/// curvature and the loss's f32 rounding (~3e-8) over the step, which [`Checks::check`]
/// allows for. Returns the quotient and the step.
fn central_difference(mut f: impl FnMut(f64) -> (Tape, f64), base: &[Vec<u8>], labels: &[usize], scale: f64) -> (f64, f64) {
    for h in [1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6] {
        let ((tp, sp), (tm, sm)) = (f(h * scale), f(-h * scale));
        if masks(&tp) == base && masks(&tm) == base {
            let l = |t: &Tape| cross_entropy_grads(t, labels, LossOn::Sum).unwrap().0;
            return ((l(&tp) - l(&tm)) / (sp - sm), sp - sm);
        }
    }
    (f64::NAN, 0.0)
}

/// Compares analytic and finite-difference derivatives; counts the non-trivial ones.
struct Checks {
    what: String,
    nontrivial: usize,
    worst: f64,
}

impl Checks {
    /// `analytic` against the quotient `fd` over a step of `2h`: within the loss's rounding
    /// (3e-8) over the step plus 1% (curvature).
    fn check(&mut self, quantity: &str, analytic: f64, (fd, step): (f64, f64)) {
        let rel = (analytic - fd).abs() / analytic.abs().max(fd.abs()).max(1e-12);
        let tol = 3e-8 / step.abs() + 1e-2 * analytic.abs().max(fd.abs());
        println!("{}: {quantity}: analytic {analytic:+.6e}, finite difference {fd:+.6e} (2h = {step:.0e}, tolerance {tol:.1e})", self.what);
        assert!(fd.is_finite(), "{}: {quantity}: every step switches a ReLU", self.what);
        assert!((analytic - fd).abs() <= tol, "{}: {quantity}: analytic {analytic:e} vs finite difference {fd:e}", self.what);
        if analytic.abs() > 1e-3 {
            self.nontrivial += 1;
            self.worst = self.worst.max(rel);
        }
    }
}

/// Every gradient of `semantics` on [`small_net`] (`scaling`: PCoderN) against central
/// differences of the matching objective: the real dynamics for [`Semantics::Exact`], the
/// dynamics with the error gradients frozen at the base run's for [`Semantics::Predify`].
fn check_against_finite_differences(scaling: bool, semantics: Semantics) {
    let (mut model, x, labels, steps) = small_net(scaling);
    let base = Tape::record(&model, &x, steps).unwrap();
    let (l0, dlogits) = cross_entropy_grads(&base, &labels, LossOn::Sum).unwrap();
    let g: UnrollGrads = base.backward(&model, &dlogits, BackwardOptions { semantics, params: true }).unwrap();
    let frozen = (semantics == Semantics::Predify).then_some(&base);
    let what = format!("{} {semantics:?}", if scaling { "PCoderN" } else { "PCoder" });
    let mut ck = Checks { what: what.clone(), nontrivial: 0, worst: 0.0 };
    let l = cross_entropy_grads(&forward(&model, &x, steps, frozen), &labels, LossOn::Sum).unwrap().0;
    assert!((l - l0).abs() < 1e-12, "{what}: the frozen forward pass is not the base run");
    let base_masks = masks(&base);
    let mut draws = Draws(0x5eed);

    // the input, along two random directions
    for k in 0..2 {
        let d = draws.direction(&x);
        let at = |s: f64| (forward(&model, &(&x + d.affine(s, 0.0).unwrap()).unwrap(), steps, frozen), s);
        ck.check(&format!("input, direction {k}"), dot(&g.input, &d), central_difference(at, &base_masks, &labels, 1.0));
    }

    // every predictor parameter, along a random direction each
    let vars = model.feedback_vars();
    assert_eq!(vars.len(), g.params.len(), "{what}: one gradient per predictor parameter");
    for ((pname, var), (gname, grad)) in vars.iter().zip(&g.params) {
        assert_eq!(pname, gname);
        let w0 = var.as_tensor().copy().unwrap();
        let d = draws.direction(&w0);
        let at = |s: f64| {
            var.set(&(&w0 + d.affine(s, 0.0).unwrap()).unwrap()).unwrap();
            let t = forward(&model, &x, steps, frozen);
            var.set(&w0).unwrap();
            (t, s)
        };
        ck.check(pname, dot(grad, &d), central_difference(at, &base_masks, &labels, 1.0));
    }

    // β, λ (not the top pcoder's: it has no feedback), α of every pcoder, and the chain to
    // Predify's logits (feedforward part)
    let n = model.pnet().len();
    for i in 0..n {
        let h0 = model.pnet().hyperparameters(i).unwrap();
        let which: &[usize] = if i + 1 == n { &[0, 2] } else { &[0, 1, 2] };
        for &j in which {
            let at = |s: f64| {
                let mut hp = h0;
                match j {
                    0 => hp.feedforward += s as f32,
                    1 => hp.feedback += s as f32,
                    _ => hp.pc += s as f32,
                }
                model.pnet_mut().set_hyperparameters(i, hp).unwrap();
                let t = forward(&model, &x, steps, frozen);
                model.pnet_mut().set_hyperparameters(i, h0).unwrap();
                // the value actually set (f32) defines the step
                let set = [hp.feedforward, hp.feedback, hp.pc][j] as f64 - [h0.feedforward, h0.feedback, h0.pc][j] as f64;
                (t, set)
            };
            let scale = if j == 2 { h0.pc as f64 } else { 1.0 };
            ck.check(&format!("pcoder{} {}", i + 1, ["β", "λ", "α"][j]), g.hyper[i][j], central_difference(at, &base_masks, &labels, scale));
        }
        let l0 = model.pnet().logits(i).unwrap();
        let at = |s: f64| {
            model.pnet_mut().set_logits(i, predify::runtime::HyperLogits { ff_part: l0.ff_part + s as f32, ..l0 }).unwrap();
            let t = forward(&model, &x, steps, frozen);
            model.pnet_mut().set_hyperparameters(i, h0).unwrap();
            (t, s)
        };
        ck.check(&format!("pcoder{} ff_part", i + 1), g.hyper_logits[i][0], central_difference(at, &base_masks, &labels, 10.0));
    }
    println!("{what}: {} non-trivial derivatives checked, worst relative difference {:.1e}", ck.nontrivial, ck.worst);
    assert!(ck.nontrivial >= 12, "{what}: too few non-trivial derivatives ({}) to be a test", ck.nontrivial);
}

#[test]
fn exact_semantics_matches_finite_differences_of_the_dynamics() {
    for scaling in [false, true] {
        check_against_finite_differences(scaling, Semantics::Exact);
    }
}

#[test]
fn predify_semantics_matches_finite_differences_with_frozen_error_gradients() {
    for scaling in [false, true] {
        check_against_finite_differences(scaling, Semantics::Predify);
    }
}

#[test]
fn the_semantics_differ_only_through_the_error_term() {
    for name in names() {
        let (mut model, x, labels, steps) = load(&name);
        let grads = |model: &PredifiedSequential| {
            let tape = Tape::record(model, &x, steps).unwrap();
            let (_, dl) = cross_entropy_grads(&tape, &labels, LossOn::Sum).unwrap();
            (tape.backward(model, &dl, BackwardOptions::predify()).unwrap(), tape.backward(model, &dl, BackwardOptions::exact()).unwrap())
        };
        // With the fixtures' α the exact gradient differs (else the finite-difference tests
        // could not tell the semantics apart) ...
        let (p, e) = grads(&model);
        let diff = (&p.input - &e.input).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let scale = e.input.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        println!("{name}: input gradients of the two semantics differ by {:.2e} of their scale", diff / scale);
        assert!(diff > 1e-3 * scale, "{name}: the semantics agree, the test is vacuous");
        // ... and with α = 0 the error term is gone: they agree, and the parameter-free
        // options give the same input gradient.
        for i in 0..model.pnet().len() {
            let h = model.pnet().hyperparameters(i).unwrap();
            model.pnet_mut().set_hyperparameters(i, Hyperparameters { pc: 0.0, ..h }).unwrap();
        }
        let (p, e) = grads(&model);
        let same = |a: &Tensor, b: &Tensor| (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() <= 1e-6 * b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-12);
        assert!(same(&p.input, &e.input), "{name}: α = 0: input gradients differ");
        for ((n, a), (_, b)) in p.params.iter().zip(&e.params) {
            assert!(same(a, b), "{name}: α = 0: {n} differs");
        }
        let tape = Tape::record(&model, &x, steps).unwrap();
        let (_, dl) = cross_entropy_grads(&tape, &labels, LossOn::Sum).unwrap();
        let only_input = tape.backward(&model, &dl, BackwardOptions::exact().without_params()).unwrap();
        assert!(only_input.params.is_empty() && same(&only_input.input, &e.input));
    }
}

#[test]
fn the_tape_is_the_runtime_forward_pass() {
    for name in names() {
        let (model, x, _, steps) = load(&name);
        let tape = Tape::record(&model, &x, steps).unwrap();
        let (logits, state) = model.run(&x, steps).unwrap();
        for (t, (a, b)) in tape.logits().iter().zip(&logits).enumerate() {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d == 0.0, "{name}: timestep {t}: logits differ by {d:e}");
        }
        let last = &tape.steps()[steps - 1];
        for i in 0..model.pnet().len() {
            let s = state.pcoder(i).unwrap();
            for (what, a, b) in [("rep", &last.rep[i], &s.rep), ("prd", &last.prd[i], &s.prd), ("grd", &last.grd[i], &s.grd)] {
                let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(d == 0.0, "{name}: pcoder{} {what} differs by {d:e}", i + 1);
            }
        }
    }
}

#[test]
fn misuse_is_reported() {
    let name = &names()[0];
    let (mut model, x, labels, steps) = load(name);
    let tape = Tape::record(&model, &x, steps).unwrap();
    let (_, dl) = cross_entropy_grads(&tape, &labels, LossOn::Last).unwrap();
    assert!(tape.backward(&model, &dl[1..], BackwardOptions::predify()).is_err(), "wrong number of logit gradients");
    let h = model.pnet().hyperparameters(0).unwrap();
    model.pnet_mut().set_hyperparameters(0, Hyperparameters { feedforward: h.feedforward * 0.5, ..h }).unwrap();
    let e = tape.backward(&model, &dl, BackwardOptions::predify()).unwrap_err().to_string();
    assert!(e.contains("changed since the recording"), "{e}");
    assert!(Tape::record(&model, &x, 0).is_err());
    assert!(cross_entropy(&tape.logits()[0], &[0]).is_err(), "label count");
    assert!(cross_entropy(&tape.logits()[0], &[0, 99]).is_err(), "label range");
}

/// One forward + backward of T = 10 timesteps of PMnist8 (batch 100) against the T forward
/// passes of [`Predified::run`]; `cargo test --release --test unroll_grad -- --ignored --nocapture`.
#[cfg(feature = "onnx")]
#[test]
#[ignore = "timing; run by hand"]
fn unroll_speed_at_mnist_scale() {
    use predify::zoo::mnist8::{Mnist8, PMnist8, MODEL_FILE};
    use std::time::Instant;
    // as the binaries configure themselves (predify-mnist, predify-bench)
    predify::process::prefer_rayon_threads();
    predify::process::tune_allocator();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let backbone = Mnist8::from_onnx(root.join(MODEL_FILE)).unwrap();
    let vm = candle_nn::VarMap::new();
    let model = PMnist8::new(backbone, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let (batch, steps) = (100, 10);
    let mut draws = Draws(7);
    let x = Tensor::from_vec((0..batch * 784).map(|_| draws.uniform() as f32).collect::<Vec<_>>(), (batch, 1, 28, 28), &Device::Cpu).unwrap();
    let labels: Vec<usize> = (0..batch).map(|k| k % 10).collect();
    let best = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let run = best(&mut || drop(model.run(&x, steps).unwrap()));
    let mut tape = None;
    let record = best(&mut || tape = Some(Tape::record(&model, &x, steps).unwrap()));
    let tape = tape.unwrap();
    let (_, dl) = cross_entropy_grads(&tape, &labels, LossOn::Sum).unwrap();
    let back = |o: BackwardOptions| best(&mut || drop(tape.backward(&model, &dl, o).unwrap()));
    let rows = [
        ("Predify, all gradients", back(BackwardOptions::predify())),
        ("Predify, input only", back(BackwardOptions::predify().without_params())),
        ("Exact, all gradients", back(BackwardOptions::exact())),
        ("Exact, input only", back(BackwardOptions::exact().without_params())),
    ];
    println!("PMnist8, batch {batch}, T = {steps}: Predified::run {:.1} ms, Tape::record {:.1} ms", run * 1e3, record * 1e3);
    for (what, b) in rows {
        println!("  backward {what}: {:.1} ms; record + backward = {:.2}x run", b * 1e3, (record + b) / run);
    }
    let _ = model.segment_forward(0, &x).unwrap();
}




