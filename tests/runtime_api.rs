//! The runtime's public API on a small network: state handling, hyperparameters, √C, and every
//! misuse reported as an error that names the pcoder and the shapes.

mod unroll_common;

use predify::Predified;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use predify::runtime::layers::{Conv, Linear, MaxPool};
use predify::runtime::sequential::{Op, PredifiedSequential, Sequential};
use predify::runtime::{c_sqrt, CSqrtSource, Error, HyperLogits, Hyperparameters};
use predify::spec::Spec;
use unroll_common::conv3x3;

/// conv 3→4, relu, pool 2, conv 4→6, relu, flatten, linear → 5; pcoders at both relus.
fn model(spec_extra: &str, pcoders: &str) -> predify::Result<PredifiedSequential> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    let mut s = Sequential::new();
    s.push("features[0]", Op::Conv(Conv::load(&conv3x3(3, 4, 1), false, vb.pp("f0"), "f0")?));
    s.push("features[1]", Op::Relu);
    s.push("features[2]", Op::MaxPool(MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, "f2")?));
    s.push("features[3]", Op::Conv(Conv::load(&conv3x3(4, 6, 1), false, vb.pp("f3"), "f3")?));
    s.push("features[4]", Op::Relu);
    s.push("flatten", Op::Flatten { start_dim: 1 });
    s.push("classifier[0]", Op::Linear(Linear::load(6 * 4 * 4, 5, true, vb.pp("c0"), "c0")?));
    let toml = format!("name = \"PSmall\"\ninput_size = [3, 8, 8]\n{spec_extra}\n{pcoders}");
    let spec = Spec::from_toml_str(&toml)?;
    PredifiedSequential::new(s, &spec, vb, CSqrtSource::Exact)
}

const TWO: &str = "[[pcoders]]\nmodule = \"features[1]\"\n[[pcoders]]\nmodule = \"features[4]\"\n";

fn input(n: usize) -> Tensor {
    Tensor::rand(0f32, 1f32, (n, 3, 8, 8), &Device::Cpu).unwrap()
}

#[test]
fn runs_timesteps_and_records_a_trace() {
    let m = model("", TWO).unwrap();
    let (logits, st) = m.run(&input(2), 4).unwrap();
    assert_eq!(logits.len(), 4);
    assert_eq!(logits[0].dims(), &[2, 5]);
    assert_eq!(st.trace().len(), 4);
    assert!(st.trace().iter().all(|t| t.len() == 2 && t.iter().all(|e| e.is_finite() && *e > 0.0)));
    // At t0 the representation is the feedforward drive, so the logits equal the backbone's.
    let plain = m.backbone().forward(st.input()).unwrap();
    let d = (&logits[0] - &plain).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(d < 1e-6, "t0 logits differ from the plain backbone by {d}");
    assert_eq!(st.rep(0).unwrap().dims(), &[2, 4, 8, 8]);
    assert_eq!(st.prd(1).unwrap().dims(), &[2, 4, 8, 8]);
}

#[test]
fn one_model_serves_independent_states() {
    let m = model("", TWO).unwrap();
    let x = input(1);
    let (_, a) = m.run(&x, 3).unwrap();
    let mut b = m.pnet().new_state(x.clone()).unwrap();
    let mut other = m.pnet().new_state(input(3)).unwrap();
    for _ in 0..3 {
        m.step(&mut b).unwrap();
        m.step(&mut other).unwrap();
    }
    assert_eq!(a.trace(), b.trace());
}

#[test]
fn wrong_input_shape_is_an_error_with_shapes() {
    let m = model("", TWO).unwrap();
    let bad = Tensor::zeros((2, 1, 8, 8), DType::F32, &Device::Cpu).unwrap();
    let e = m.pnet().new_state(bad).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Shape { .. }), "{msg}");
    assert!(msg.contains("[2, 1, 8, 8]") && msg.contains("[3, 8, 8]"), "{msg}");
}

#[test]
fn fire_checks_shape_order_and_pass() {
    let m = model("", TWO).unwrap();
    let pnet = m.pnet();
    let mut st = pnet.new_state(input(2)).unwrap();
    let ff = Tensor::zeros((2, 4, 8, 8), DType::F32, &Device::Cpu).unwrap();
    let e = pnet.fire(0, &ff, &mut st).unwrap_err().to_string();
    assert!(e.contains("begin_pass"), "{e}");
    pnet.begin_pass(&mut st).unwrap();
    let wrong = Tensor::zeros((2, 4, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let e = pnet.fire(0, &wrong, &mut st).unwrap_err().to_string();
    assert!(e.contains("pcoder1") && e.contains("[2, 4, 4, 4]") && e.contains("[2, 4, 8, 8]"), "{e}");
    let ff2 = Tensor::zeros((2, 6, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let e = pnet.fire(1, &ff2, &mut st).unwrap_err().to_string();
    assert!(e.contains("pcoder2") && e.contains("order"), "{e}");
    pnet.fire(0, &ff, &mut st).unwrap();
    let e = pnet.end_pass(&mut st).unwrap_err().to_string();
    assert!(e.contains("pcoder2 did not fire"), "{e}");
    let e = pnet.fire(7, &ff, &mut st).unwrap_err().to_string();
    assert!(e.contains("no pcoder 8"), "{e}");
}

#[test]
fn non_finite_representation_is_an_error_naming_the_pcoder() {
    let m = model("", TWO).unwrap();
    let mut x = vec![0.5f32; 3 * 8 * 8];
    x[10] = f32::NAN;
    let x = Tensor::from_vec(x, (1, 3, 8, 8), &Device::Cpu).unwrap();
    let e = m.run(&x, 2).unwrap_err();
    assert!(matches!(e, Error::NonFinite { pcoder: 1, timestep: 0, .. }), "{e}");
    assert!(e.to_string().contains("pcoder 1"), "{e}");
}

#[test]
fn predictor_that_misses_its_target_is_rejected_at_construction() {
    let pcs = "[[pcoders]]\nmodule = \"features[1]\"\npredictor = \"ConvTranspose2d(4, 3, kernel_size=3, stride=2, padding=1)\"\n";
    let e = model("", pcs).unwrap_err().to_string();
    assert!(e.contains("pcoder1") && e.contains("[3, 15, 15]") && e.contains("[3, 8, 8]"), "{e}");
}

#[test]
fn unknown_or_misordered_module_is_an_error() {
    let e = model("", "[[pcoders]]\nmodule = \"features[9]\"\n").unwrap_err().to_string();
    assert!(e.contains("pcoder1") && e.contains("features[9]"), "{e}");
    let pcs = "[[pcoders]]\nmodule = \"features[4]\"\n[[pcoders]]\nmodule = \"features[1]\"\n";
    let e = model("", pcs).unwrap_err().to_string();
    assert!(e.contains("pcoder2") && e.contains("order"), "{e}");
}

#[test]
fn hyperparameters_shared_separate_and_logits() {
    let mut m = model("shared_hyperparameters = true", TWO).unwrap();
    let h = Hyperparameters { feedforward: 0.5, feedback: 0.25, pc: 0.02 };
    m.pnet_mut().set_hyperparameters(1, h).unwrap();
    assert_eq!(m.pnet().hyperparameters(0).unwrap(), h, "shared: setting one sets all");
    let mut m = model("", TWO).unwrap();
    m.pnet_mut().set_hyperparameters(1, h).unwrap();
    assert_eq!(m.pnet().hyperparameters(0).unwrap(), Hyperparameters::default());
    let l = m.pnet().logits(1).unwrap();
    let back = HyperLogits::to_hyperparameters(l);
    assert!((back.feedforward - 0.5).abs() < 1e-6 && (back.feedback - 0.25).abs() < 1e-6 && back.pc == 0.02);
    let bad = Hyperparameters { feedforward: 0.8, feedback: 0.3, pc: 0.01 };
    let e = m.pnet_mut().set_hyperparameters(0, bad).unwrap_err().to_string();
    assert!(e.contains("pcoder1") && e.contains("<= 1"), "{e}");
    let e = m.pnet_mut().set_hyperparameters(0, Hyperparameters { pc: f32::NAN, ..h }).unwrap_err().to_string();
    assert!(e.contains("pc"), "{e}");
}

/// Predify's three free logits are kept as set (the case: they used to come back
/// normalised, so tuning differentiated at another point than the one Adam updated).
#[test]
fn logits_come_back_as_set() {
    let mut m = model("", TWO).unwrap();
    let l = HyperLogits { ff_part: 0.7, fb_part: -0.4, mem_part: 0.1, errorm: 0.03 };
    m.pnet_mut().set_logits(0, l).unwrap();
    assert_eq!(m.pnet().logits(0).unwrap(), l);
    let h = m.pnet().hyperparameters(0).unwrap();
    assert_eq!(h, l.to_hyperparameters(), "the values are the ones the logits stand for");
    // Setting values resets the logits to Predify's initialisation for them.
    m.pnet_mut().set_hyperparameters(0, h).unwrap();
    assert_eq!(m.pnet().logits(0).unwrap(), HyperLogits::from_hyperparameters(h));
    // Shared hyperparameters share the logits too; invalid logits are rejected and change nothing.
    let mut s = model("shared_hyperparameters = true", TWO).unwrap();
    s.pnet_mut().set_logits(1, l).unwrap();
    assert_eq!(s.pnet().logits(0).unwrap(), l);
    let bad = HyperLogits { ff_part: f32::NAN, ..l };
    assert!(s.pnet_mut().set_logits(0, bad).is_err());
    assert_eq!(s.pnet().logits(0).unwrap(), l);
}

#[test]
fn random_init_is_seeded_and_initial_reps_can_be_injected() {
    let m = model("", TWO).unwrap();
    let x = input(2);
    let run = |seed| {
        let mut st = m.pnet().new_state(x.clone()).unwrap().with_random_init(seed);
        m.step(&mut st).unwrap();
        st.rep(0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let r0 = Tensor::ones((2, 4, 8, 8), DType::F32, &Device::Cpu).unwrap();
    let r1 = Tensor::ones((2, 6, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let mut st = m.pnet().new_state(x.clone()).unwrap().with_initial_reps(vec![r0, r1.clone()]);
    m.step(&mut st).unwrap();
    assert_eq!(st.rep(1).unwrap().to_vec3::<f32>().ok(), None); // rank 4, sanity of accessor
    assert_eq!(st.rep(1).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(), 2.0 * 6.0 * 16.0);
    let mut st = m.pnet().new_state(x).unwrap().with_initial_reps(vec![r1]);
    let e = m.step(&mut st).unwrap_err().to_string();
    assert!(e.contains("pcoder1") && e.contains("initial representation"), "{e}");
}

#[test]
fn exact_c_matches_predify_footprints() {
    // k3 s1 → 9·Cout ; upsample ×2 + k3 → 36·Cout ; k5 → 25·Cout (FORMAT.md)
    let m = model("gradient_scaling = true", TWO).unwrap();
    let pcs = m.pnet().pcoders();
    assert_eq!(pcs[0].c_sqrt().unwrap(), (9.0f32 * 3.0).sqrt());
    assert_eq!(pcs[1].c_sqrt().unwrap(), (36.0f32 * 4.0).sqrt());
    let pcs5 = "[[pcoders]]\nmodule = \"features[1]\"\npredictor = \"ConvTranspose2d(4, 3, kernel_size=5, padding=2)\"\n";
    let m5 = model("gradient_scaling = true", pcs5).unwrap();
    assert_eq!(m5.pnet().pcoders()[0].c_sqrt().unwrap(), 75f32.sqrt());
    // The seeded estimate agrees for linear predictors and is repeatable.
    let (_, st) = m.run(&input(2), 1).unwrap();
    let p = &m.pnet().pcoders()[1];
    let est = c_sqrt::estimate(p.predictor(), st.rep(1).unwrap(), 3).unwrap();
    assert!((est - p.c_sqrt().unwrap()).abs() < 1e-5, "{est}");
}
