//! Parity through generated code: every Predify oracle fixture, declared as a `#[predify]`
//! struct (inline and `spec = "..."` forms; `Vec`, array and one-field-per-layer layouts), must
//! reproduce every recorded tensor — logits, and each pcoder's rep, prd, grd, prediction error
//! and feedforward drive at every timestep — to a relative error of 1e-4 (max|a−b| / max|b|).

#[allow(dead_code)]
mod common;

use predify::Predified;
use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Module, Tensor};
use candle_nn::{Func, VarBuilder};
use common::checker::Checker;
use common::fixture::Fixture;
use predify::predify;
use predify::runtime::layers::{Conv, Flatten, Linear, MaxPool, Relu};
use predify::runtime::optim::Sgd;
use predify::runtime::sequential::Op;

use predify::spec::{AttachPoint, Spec};


// ---- the fixture networks as annotated structs ----

/// `tiny2d_explicit_pcoder_sep`: spec file, `Vec` of boxed layers.
#[predify(spec = "tests/specs/tiny2d_explicit_pcoder_sep.toml")]
struct Tiny2dVec {
    features: Vec<Box<dyn Module>>,
    flatten: Flatten,
    classifier: Vec<Linear>,
}

/// `tiny2d_default_pcodern_sep`: inline, array with a literal length (indices checked at
/// compile time), default predictors, gradient scaling.
#[predify(
    name = "Tiny2dDefaultPcodernSep",
    gradient_scaling = true,
    shared_hyperparameters = false,
    input_size = [3, 16, 16],
    pcoders = [
        { module = "features[1]", hyperparameters = { feedforward = 0.2, feedback = 0.05, pc = 0.05 } },
        { module = "features[4]", hyperparameters = { feedforward = 0.4, feedback = 0.1, pc = 0.05 } },
        { module = "features[7]", hyperparameters = { feedforward = 0.6, feedback = 0.0, pc = 0.1 } },
    ]
)]
struct Tiny2dArray {
    features: [Box<dyn Module>; 8],
    flatten: Flatten,
    classifier: Linear,
}

/// `tiny3d_explicit_pcoder_sep`: inline, 3-D, a `Func` flatten, a skipped field, `field.j` paths.
#[predify(
    name = "Tiny3dExplicitPcoderSep",
    imports = ["from torch.nn import Sequential, ReLU, ConvTranspose3d"],
    gradient_scaling = false,
    shared_hyperparameters = false,
    input_size = [1, 4, 8, 8],
    pcoders = [
        { module = "features[1]", predictor = "ConvTranspose3d(4, 1, kernel_size=3, stride=1, padding=1)",
          hyperparameters = { feedforward = 0.3, feedback = 0.2, pc = 10.0 } },
        { module = "features.4", predictor = "Sequential(ConvTranspose3d(8, 4, kernel_size=4, stride=2, padding=1), ReLU(inplace=True))",
          hyperparameters = { feedforward = 0.5, feedback = 0.1, pc = 10.0 } },
    ]
)]
struct Tiny3d {
    features: Vec<Box<dyn Module>>,
    flatten: Func<'static>,
    classifier: Linear,
    #[predify(skip)]
    #[allow(dead_code)]
    description: &'static str,
}

/// `tiny2d_default_pcoder_shared_randinit`: spec file, one field per layer (attach points are
/// whole fields), random initial representations.
#[predify(spec = "tests/specs/tiny2d_fields_randinit.toml")]
struct Tiny2dFields {
    conv1: Conv,
    relu1: Relu,
    pool1: MaxPool,
    conv2: Conv,
    relu2: Relu,
    pool2: MaxPool,
    conv3: Conv,
    relu3: Relu,
    flatten: Flatten,
    fc: Linear,
}

/// `tiny2d_explicit_pcodern_shared`: inline, arrays for both lists.
#[predify(
    name = "Tiny2dExplicitPcodernShared",
    imports = ["from torch.nn import Sequential, ReLU, ConvTranspose2d, Upsample"],
    gradient_scaling = true,
    shared_hyperparameters = true,
    input_size = [3, 16, 16],
    pcoders = [
        { module = "features[1]", predictor = "ConvTranspose2d(8, 3, kernel_size=5, stride=1, padding=2)",
          hyperparameters = { feedforward = 0.3, feedback = 0.3, pc = 0.05 } },
        { module = "features[4]", predictor = "Sequential(ConvTranspose2d(16, 8, kernel_size=4, stride=2, padding=1), ReLU(inplace=True))",
          hyperparameters = { feedforward = 0.9, feedback = 0.05, pc = 5.0 } },
        { module = "features[7]", predictor = "Sequential(ConvTranspose2d(16, 16, kernel_size=4, stride=2, padding=1), ReLU(inplace=True))",
          hyperparameters = { feedforward = 0.1, feedback = 0.8, pc = 9.0 } },
    ]
)]
struct Tiny2dArrays {
    features: [Box<dyn Module>; 8],
    flatten: Flatten,
    classifier: [Linear; 1],
}

/// `tiny2d_explicit_pcoder_train`: spec file; Predify's feedback training step.
#[predify(spec = "tests/specs/tiny2d_explicit_pcoder_train.toml")]
struct Tiny2dTrain {
    features: Vec<Box<dyn Module>>,
    flatten: Flatten,
    classifier: Vec<Linear>,
}

// ---- the generated constructors, behind one trait so one checker serves every type (the
// rest of the API is `predify::Predified`) ----

trait Generated: Predified + Sized {
    type Backbone;
    fn build(backbone: Self::Backbone, vb: VarBuilder) -> predify::Result<Self>;
    fn the_spec() -> predify::Result<Spec>;
}

macro_rules! predified {
    ($t:ty, $b:ty) => {
        impl Generated for $t {
            type Backbone = $b;
            fn build(backbone: $b, vb: VarBuilder) -> predify::Result<Self> {
                <$t>::new(backbone, vb)
            }
            fn the_spec() -> predify::Result<Spec> {
                <$t>::spec()
            }
        }
    };
}

predified!(Tiny2dExplicitPcoderSep, Tiny2dVec);
predified!(Tiny2dDefaultPcodernSep, Tiny2dArray);
predified!(Tiny3dExplicitPcoderSep, Tiny3d);
predified!(Tiny2dDefaultPcoderSharedRandinit, Tiny2dFields);
predified!(Tiny2dExplicitPcodernShared, Tiny2dArrays);
predified!(Tiny2dExplicitPcoderTrain, Tiny2dTrain);

// ---- building backbones from a fixture's layers ----

fn boxed(op: &Op) -> Box<dyn Module> {
    #[allow(unreachable_patterns)]
    match op.clone() {
        Op::Conv(c) => Box::new(c),
        Op::Relu => Box::new(Relu),
        Op::MaxPool(p) => Box::new(p),
        Op::Linear(l) => Box::new(l),
        Op::Flatten { start_dim } => Box::new(Flatten { start_dim }),
        _ => panic!("unexpected layer in a fixture"),
    }
}

fn features(fx: &Fixture) -> Vec<Box<dyn Module>> {
    fx.backbone.layers().iter().filter(|(p, _)| p.starts_with("features[")).map(|(_, op)| boxed(op)).collect()
}

fn classifier(fx: &Fixture) -> Result<Vec<Linear>> {
    fx.backbone
        .layers()
        .iter()
        .filter(|(p, _)| p.starts_with("classifier["))
        .map(|(p, op)| match op {
            Op::Linear(l) => Ok(l.clone()),
            _ => bail!("{p}: not a Linear"),
        })
        .collect()
}

fn op<'a>(fx: &'a Fixture, path: &str) -> Result<&'a Op> {
    fx.backbone.layers().iter().find(|(p, _)| p == path).map(|(_, op)| op).ok_or_else(|| anyhow!("no layer {path}"))
}

fn array<const N: usize>(v: Vec<Box<dyn Module>>) -> Result<[Box<dyn Module>; N]> {
    v.try_into().map_err(|v: Vec<_>| anyhow!("expected {N} layers, got {}", v.len()))
}

// ---- the comparison ----


/// Builds `M` from `backbone` and the fixture's weights and compares everything recorded.
fn check<M: Generated>(fx: &Fixture, backbone: M::Backbone, expected_spec: &Spec) -> Result<Checker> {
    let mut ck = Checker::new(&fx.name);
    let spec = M::the_spec()?;
    if spec != *expected_spec {
        bail!("{}: the macro's spec differs from the fixture's:\n{spec:#?}\nvs\n{expected_spec:#?}", fx.name);
    }
    let vb = VarBuilder::from_tensors(fx.tensors.clone(), DType::F32, &common::device::device()?);
    let model = M::build(backbone, vb)?;
    let n = model.pnet().len();
    let input = fx.tensor("input")?.clone();
    ck.tensor("plain.logits", &model.forward_plain(&input)?, fx.tensor("plain.logits")?);

    let random_init = fx.meta["random_init"].as_bool().unwrap_or(false);
    let passes = fx.meta["backbone_passes"].as_u64().ok_or_else(|| anyhow!("backbone_passes missing"))? as usize;
    let mut st = model.new_state(&input)?;
    if random_init {
        let reps = (1..=n).map(|i| fx.tensor(&format!("t0.pcoder{i}.rep")).cloned()).collect::<Result<Vec<_>>>()?;
        st = st.with_initial_reps(reps);
    }
    for t in 0..passes {
        let mut ffs: Vec<Tensor> = Vec::new();
        let logits = model.step_inspect(&mut st, |_, ff| ffs.push(ff.clone()))?;
        if ffs.len() != n {
            ck.failures.push(format!("{}: t{t}: {} feedforward drives for {n} pcoders", fx.name, ffs.len()));
        }
        ck.tensor(&format!("t{t}.logits"), &logits, fx.tensor(&format!("t{t}.logits"))?);
        for i in 0..n {
            let p = format!("t{t}.pcoder{}", i + 1);
            let s = st.pcoder(i).ok_or_else(|| anyhow!("{p}: pcoder did not fire"))?;
            ck.tensor(&format!("{p}.rep"), &s.rep, fx.tensor(&format!("{p}.rep"))?);
            ck.tensor(&format!("{p}.prd"), &s.prd, fx.tensor(&format!("{p}.prd"))?);
            ck.tensor(&format!("{p}.grd"), &s.grd, fx.tensor(&format!("{p}.grd"))?);
            ck.scalar(&format!("{p}.prediction_error"), s.prediction_error, fx.tensor(&format!("{p}.prediction_error"))?)?;
            if fx.has(&format!("{p}.ff")) {
                if let Some(ff) = ffs.get(i) {
                    ck.tensor(&format!("{p}.ff"), ff, fx.tensor(&format!("{p}.ff"))?);
                }
            }
        }
    }

    if fx.meta["mode"].as_str() == Some("train") {
        let tr = &fx.meta["training"];
        let g = model.reconstruction_grads(&st)?;
        ck.scalar("train.loss", g.loss, fx.tensor("train.loss")?)?;
        for (name, grad) in &g.grads {
            ck.tensor(&format!("train.grad.{name}"), grad, fx.tensor(&format!("train.grad.{name}"))?);
        }
        let mut sgd = Sgd::new(
            tr["lr"].as_f64().ok_or_else(|| anyhow!("training.lr"))?,
            tr["weight_decay"].as_f64().unwrap_or(0.0),
            tr["momentum"].as_f64().unwrap_or(0.0),
        );
        let vars = model.feedback_vars();
        sgd.step(&vars, &g.grads)?;
        for (name, var) in &vars {
            ck.tensor(&format!("after.{name}"), var.as_tensor(), fx.tensor(&format!("after.{name}"))?);
        }
        let recorded = fx.tensors.keys().filter(|k| k.starts_with("after.")).count();
        if recorded != vars.len() {
            ck.failures.push(format!("{}: {} feedback vars, {recorded} recorded", fx.name, vars.len()));
        }
    }
    Ok(ck)
}

fn report(result: Result<Checker>) {
    let ck = result.unwrap_or_else(|e| panic!("{e:#}"));
    println!("macro parity {}: {} tensors compared, worst relative error {:.2e}", ck.fixture, ck.compared, ck.worst);
    assert!(ck.compared > 0);
    assert!(ck.failures.is_empty(), "{} parity failures:\n{}", ck.failures.len(), ck.failures.join("\n"));
}

#[test]
fn tiny2d_explicit_pcoder_sep_spec_file_vec() {
    report((|| -> Result<Checker> {
        let fx = Fixture::load("tiny2d_explicit_pcoder_sep")?;
        let bb = Tiny2dVec { features: features(&fx), flatten: Flatten::default(), classifier: classifier(&fx)? };
        check::<Tiny2dExplicitPcoderSep>(&fx, bb, &fx.spec)
    })());
}

#[test]
fn tiny2d_default_pcodern_sep_inline_array() {
    report((|| -> Result<Checker> {
        let fx = Fixture::load("tiny2d_default_pcodern_sep")?;
        let classifier = classifier(&fx)?.into_iter().next().ok_or_else(|| anyhow!("no classifier"))?;
        let bb = Tiny2dArray { features: array(features(&fx))?, flatten: Flatten::default(), classifier };
        check::<Tiny2dDefaultPcodernSep>(&fx, bb, &fx.spec)
    })());
}

#[test]
fn tiny3d_explicit_pcoder_sep_inline_func_flatten() {
    report((|| -> Result<Checker> {
        let fx = Fixture::load("tiny3d_explicit_pcoder_sep")?;
        let classifier = classifier(&fx)?.into_iter().next().ok_or_else(|| anyhow!("no classifier"))?;
        let bb = Tiny3d {
            features: features(&fx),
            flatten: Func::new(|x| x.flatten_from(1)),
            classifier,
            description: "skipped: not a layer",
        };
        check::<Tiny3dExplicitPcoderSep>(&fx, bb, &fx.spec)
    })());
}

#[test]
fn tiny2d_default_pcoder_shared_randinit_spec_file_fields() {
    report((|| -> Result<Checker> {
        let fx = Fixture::load("tiny2d_default_pcoder_shared_randinit")?;
        let conv = |p: &str| match op(&fx, p)? {
            Op::Conv(c) => Ok(c.clone()),
            _ => bail!("{p}: not a Conv"),
        };
        let pool = |p: &str| match op(&fx, p)? {
            Op::MaxPool(m) => Ok(m.clone()),
            _ => bail!("{p}: not a MaxPool"),
        };
        let bb = Tiny2dFields {
            conv1: conv("features[0]")?,
            relu1: Relu,
            pool1: pool("features[2]")?,
            conv2: conv("features[3]")?,
            relu2: Relu,
            pool2: pool("features[5]")?,
            conv3: conv("features[6]")?,
            relu3: Relu,
            flatten: Flatten::default(),
            fc: classifier(&fx)?.into_iter().next().ok_or_else(|| anyhow!("no classifier"))?,
        };
        // Same spec as the fixture's, attach points renamed to the struct's fields.
        let mut expected = fx.spec.clone();
        for (i, p) in expected.pcoders.iter_mut().enumerate() {
            p.module = AttachPoint::parse(&format!("relu{}", i + 1)).map_err(|e| anyhow!("{e}"))?;
        }
        assert_eq!(Tiny2dDefaultPcoderSharedRandinit::ATTACH_POINTS, ["relu1", "relu2", "relu3"]);
        check::<Tiny2dDefaultPcoderSharedRandinit>(&fx, bb, &expected)
    })());
}

#[test]
fn tiny2d_explicit_pcodern_shared_inline_arrays() {
    report((|| -> Result<Checker> {
        let fx = Fixture::load("tiny2d_explicit_pcodern_shared")?;
        let classifier: [Linear; 1] = classifier(&fx)?.try_into().map_err(|_| anyhow!("expected one classifier layer"))?;
        let bb = Tiny2dArrays { features: array(features(&fx))?, flatten: Flatten::default(), classifier };
        check::<Tiny2dExplicitPcodernShared>(&fx, bb, &fx.spec)
    })());
}

#[test]
fn tiny2d_explicit_pcoder_train_spec_file() {
    report((|| -> Result<Checker> {
        let fx = Fixture::load("tiny2d_explicit_pcoder_train")?;
        let bb = Tiny2dTrain { features: features(&fx), flatten: Flatten::default(), classifier: classifier(&fx)? };
        check::<Tiny2dExplicitPcoderTrain>(&fx, bb, &fx.spec)
    })());
}

/// A `Vec` field too short for an attach point: `new` fails and names the pcoder.
#[test]
fn vec_index_out_of_range_is_an_error_in_new() -> Result<()> {
    let fx = Fixture::load("tiny2d_explicit_pcoder_sep")?;
    let mut layers = features(&fx);
    layers.truncate(5); // features[7] is gone
    let bb = Tiny2dVec { features: layers, flatten: Flatten::default(), classifier: classifier(&fx)? };
    let vb = VarBuilder::from_tensors(fx.tensors.clone(), DType::F32, &common::device::device()?);
    let err = match Tiny2dExplicitPcoderSep::new(bb, vb) {
        Ok(_) => bail!("a 5-layer `features` was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("pcoder 3") && err.contains("features[7]") && err.contains("5 layers"), "{err}");
    Ok(())
}

/// The generated accessors agree with the runtime they wrap.
#[test]
fn generated_api() -> Result<()> {
    let fx = Fixture::load("tiny2d_explicit_pcoder_sep")?;
    let bb = Tiny2dVec { features: features(&fx), flatten: Flatten::default(), classifier: classifier(&fx)? };
    let vb = VarBuilder::from_tensors(fx.tensors.clone(), DType::F32, &common::device::device()?);
    let mut model = Tiny2dExplicitPcoderSep::new(bb, vb)?;
    assert_eq!(Tiny2dExplicitPcoderSep::NAME, "Tiny2dExplicitPcoderSep");
    assert_eq!(Tiny2dExplicitPcoderSep::NUM_PCODERS, 3);
    assert_eq!(Tiny2dExplicitPcoderSep::INPUT_SIZE, [3, 16, 16]);
    assert_eq!(Tiny2dExplicitPcoderSep::ATTACH_POINTS, ["features[1]", "features[4]", "features[7]"]);
    assert!(Tiny2dExplicitPcoderSep::SPEC_TOML.contains("Tiny2dExplicitPcoderSep"));
    assert_eq!(model.backbone().features.len(), 8);
    let h = model.hyperparameters(1)?;
    assert_eq!((h.feedforward, h.feedback, h.pc), (0.4, 0.1, 30.0));
    let new = predify::Hyperparameters { feedforward: 0.5, feedback: 0.2, pc: 1.0 };
    model.set_hyperparameters(1, new)?;
    assert_eq!(model.hyperparameters(1)?, new);
    let l = model.logits(0)?;
    model.set_logits(2, l)?;
    let back = model.hyperparameters(2)?;
    assert!((back.feedforward - 0.3).abs() < 1e-6 && (back.feedback - 0.2).abs() < 1e-6);
    assert!(model.set_hyperparameters(0, predify::Hyperparameters { feedforward: 0.9, feedback: 0.9, pc: 0.0 }).is_err());
    let names: Vec<String> = model.feedback_vars().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "pcoder1.pmodule.weight");
    let input = fx.tensor("input")?;
    let (logits, st) = model.run(input, 3)?;
    assert_eq!(logits.len(), 3);
    assert_eq!(st.trace().len(), 3);
    assert!(st.trace().iter().all(|t| t.len() == 3 && t.iter().all(|e| e.is_finite())));
    let (backbone, pnet) = model.into_parts();
    assert_eq!((backbone.classifier.len(), pnet.len()), (1, 3));
    Ok(())
}
