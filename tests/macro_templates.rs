//! The spec templates for the paper's networks compile against matching backbone structs
//! (the `#[predify]` checks run on them at compile time), say what Predify's networks say, and
//! build and run at full size (224×224) on random weights.

use predify::Predified;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{self as nn, Func, VarBuilder, VarMap};
use predify::predify;
use predify::runtime::default_predictor::default_predictor;
use predify::runtime::layers::Flatten;
use predify::spec::{parse_predictor, AttachPoint};

/// torchvision's VGG16 layout: 31 `features` (an array, so attach indices are checked at
/// compile time), `avgpool`, `flatten`, `classifier`.
#[predify(spec = "templates/pvgg16.toml")]
struct Vgg16 {
    features: [Box<dyn Module>; 31],
    /// `AdaptiveAvgPool2d((7, 7))`: the identity at 224×224, where the features are 7×7.
    avgpool: Func<'static>,
    flatten: Flatten,
    classifier: Vec<Box<dyn Module>>,
}

/// timm's EfficientNet-B0 layout; the stages are stand-ins with the real stages' output shapes
/// (one 3×3 convolution each: the pcoders only see each stage's output).
#[predify(spec = "templates/pefficientnetb0.toml")]
struct EfficientNetB0 {
    conv_stem: nn::Conv2d,
    #[predify(module_t)]
    bn1: nn::BatchNorm,
    act1: nn::Activation,
    blocks: [Box<dyn Module>; 7],
    conv_head: nn::Conv2d,
    #[predify(module_t)]
    bn2: nn::BatchNorm,
    act2: nn::Activation,
    global_pool: Func<'static>,
    classifier: nn::Linear,
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, vb: VarBuilder) -> candle_core::Result<nn::Conv2d> {
    let cfg = nn::Conv2dConfig { padding: k / 2, stride, ..Default::default() };
    nn::conv2d(cin, cout, k, cfg, vb)
}

/// VGG16's `features` (cfg "D"), weights under `backbone.features.{j}`.
fn vgg16_features(vb: &VarBuilder) -> candle_core::Result<[Box<dyn Module>; 31]> {
    let cfg: [Option<usize>; 18] =
        [Some(64), Some(64), None, Some(128), Some(128), None, Some(256), Some(256), Some(256), None, Some(512), Some(512), Some(512), None, Some(512), Some(512), Some(512), None];
    let mut layers: Vec<Box<dyn Module>> = Vec::new();
    let mut cin = 3;
    for c in cfg {
        match c {
            Some(cout) => {
                let j = layers.len();
                layers.push(Box::new(conv(cin, cout, 3, 1, vb.pp(format!("backbone.features.{j}")))?));
                layers.push(Box::new(nn::Activation::Relu));
                cin = cout;
            }
            None => layers.push(Box::new(Func::new(|x| x.max_pool2d(2)))),
        }
    }
    layers.try_into().map_err(|v: Vec<_>| candle_core::Error::Msg(format!("{} VGG16 layers", v.len())))
}

#[test]
fn pvgg16_template_is_predifys_pvgg16() -> predify::Result<()> {
    assert_eq!(PVgg16::ATTACH_POINTS, ["features[3]", "features[8]", "features[15]", "features[22]", "features[29]"]);
    assert_eq!(PVgg16::INPUT_SIZE, [3, 224, 224]);
    let spec = PVgg16::spec()?;
    assert!(spec.gradient_scaling && !spec.shared_hyperparameters);
    let predictors = [
        "ConvTranspose2d(64, 3, kernel_size=5, stride=1, padding=2)",
        "Sequential(ConvTranspose2d(128, 64, kernel_size=10, stride=2, padding=4), ReLU(inplace=True))",
        "Sequential(ConvTranspose2d(256, 128, kernel_size=14, stride=2, padding=6), ReLU(inplace=True))",
        "Sequential(ConvTranspose2d(512, 256, kernel_size=14, stride=2, padding=6), ReLU(inplace=True))",
        "Sequential(ConvTranspose2d(512, 512, kernel_size=14, stride=2, padding=6), ReLU(inplace=True))",
    ];
    let ff = [0.2, 0.4, 0.4, 0.5, 0.6];
    let fb = [0.05, 0.1, 0.1, 0.1, 0.0];
    for (i, p) in spec.pcoders.iter().enumerate() {
        assert_eq!(p.predictor.as_ref(), Some(&parse_predictor(predictors[i]).unwrap()), "pcoder {}", i + 1);
        let h = spec.hyperparameters(i);
        assert_eq!((h.feedforward, h.feedback, h.pc), (ff[i], fb[i], 0.01), "pcoder {}", i + 1);
    }
    Ok(())
}

#[test]
fn pefficientnetb0_template_uses_default_style_predictors() -> predify::Result<()> {
    let mut expected = vec!["act1".to_string()];
    expected.extend((0..7).map(|j| format!("blocks[{j}]")));
    assert_eq!(PEfficientNetB0::ATTACH_POINTS, expected.as_slice());
    let spec = PEfficientNetB0::spec()?;
    assert_eq!(spec.pcoders[1].module, AttachPoint::parse("blocks.0").unwrap());
    assert!(!spec.gradient_scaling);
    // The explicit predictors are exactly what Predify infers from EfficientNet-B0's shapes.
    let shapes: [&[usize]; 9] = [
        &[3, 224, 224],
        &[32, 112, 112],
        &[16, 112, 112],
        &[24, 56, 56],
        &[40, 28, 28],
        &[80, 14, 14],
        &[112, 14, 14],
        &[192, 7, 7],
        &[320, 7, 7],
    ];
    for (i, p) in spec.pcoders.iter().enumerate() {
        let default = default_predictor(shapes[i + 1], shapes[i], "test")?;
        assert_eq!(p.predictor.as_ref(), Some(&default), "pcoder {}", i + 1);
    }
    Ok(())
}

fn efficientnet_b0(vb: &VarBuilder) -> candle_core::Result<EfficientNetB0> {
    let bb = vb.pp("backbone");
    let stages: [(usize, usize, usize); 7] = [(32, 16, 1), (16, 24, 2), (24, 40, 2), (40, 80, 2), (80, 112, 1), (112, 192, 2), (192, 320, 1)];
    let mut blocks: Vec<Box<dyn Module>> = Vec::new();
    for (j, (cin, cout, stride)) in stages.into_iter().enumerate() {
        blocks.push(Box::new(conv(cin, cout, 3, stride, bb.pp(format!("blocks.{j}")))?));
    }
    Ok(EfficientNetB0 {
        conv_stem: conv(3, 32, 3, 2, bb.pp("conv_stem"))?,
        bn1: nn::batch_norm(32, nn::BatchNormConfig::default(), bb.pp("bn1"))?,
        act1: nn::Activation::Silu,
        blocks: blocks.try_into().map_err(|_| candle_core::Error::Msg("7 stages".into()))?,
        conv_head: conv(320, 1280, 1, 1, bb.pp("conv_head"))?,
        bn2: nn::batch_norm(1280, nn::BatchNormConfig::default(), bb.pp("bn2"))?,
        act2: nn::Activation::Silu,
        global_pool: Func::new(|x| x.mean(candle_core::D::Minus1)?.mean(candle_core::D::Minus1)),
        classifier: nn::linear(1280, 1000, bb.pp("classifier"))?,
    })
}

#[test]
fn pefficientnetb0_builds_and_runs_at_224() -> predify::Result<()> {
    let t = std::time::Instant::now();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = PEfficientNetB0::new(efficientnet_b0(&vb)?, vb.clone())?;
    let ff: Vec<Vec<usize>> = model.pnet().pcoders().iter().map(|p| p.ff_shape().to_vec()).collect();
    assert_eq!(ff[0], [32, 112, 112]);
    assert_eq!(ff[7], [320, 7, 7]);
    let x = Tensor::rand(0f32, 1f32, (1, 3, 224, 224), &Device::Cpu)?;
    let (logits, state) = model.run(&x, 2)?;
    assert_eq!(logits[1].dims(), [1, 1000]);
    assert!(state.trace()[1].iter().all(|e| e.is_finite()));
    assert_eq!(model.feedback_vars().len(), 16); // weight + bias of each pcoder's ConvTranspose2d
    println!("PEfficientNetB0 at 224x224: build + 2 timesteps in {:.1?}", t.elapsed());
    Ok(())
}

fn vgg16(vb: &VarBuilder) -> candle_core::Result<Vgg16> {
    Ok(Vgg16 {
        features: vgg16_features(vb)?,
        avgpool: Func::new(|x| Ok(x.clone())),
        flatten: Flatten::default(),
        // A small head: the pcoders only see `features`.
        classifier: vec![Box::new(nn::linear(512 * 7 * 7, 10, vb.pp("backbone.classifier.0"))?)],
    })
}

/// Construction at full size (one probing pass of VGG16 at 224×224; zero weights and given √C,
/// so that no predictor has to run): the attach points' shapes are VGG16's.
#[test]
fn pvgg16_builds_at_224() -> predify::Result<()> {
    let t = std::time::Instant::now();
    let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
    let model = PVgg16::with_c_sqrt(vgg16(&vb)?, vb, predify::CSqrtSource::Given(vec![1.0; 5]))?;
    let ff: Vec<Vec<usize>> = model.pnet().pcoders().iter().map(|p| p.ff_shape().to_vec()).collect();
    assert_eq!(ff, [vec![64, 224, 224], vec![128, 112, 112], vec![256, 56, 56], vec![512, 28, 28], vec![512, 14, 14]]);
    assert_eq!(model.feedback_vars().len(), 10);
    println!("PVgg16 at 224x224: built in {:.1?}", t.elapsed());
    Ok(())
}

/// A full timestep of PVGG16 at 224×224 on random weights (√C computed exactly). Some
/// 200 GFLOP on the CPU: about a minute on two cores, hence ignored by default; run it with
/// `cargo test --release --test macro_templates -- --ignored`.
#[test]
#[ignore = "slow on CPU: run with --ignored"]
fn pvgg16_runs_a_timestep_at_224() -> predify::Result<()> {
    let t = std::time::Instant::now();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = PVgg16::new(vgg16(&vb)?, vb.clone())?;
    let built = t.elapsed();
    let x = Tensor::rand(0f32, 1f32, (1, 3, 224, 224), &Device::Cpu)?;
    let mut state = model.new_state(&x)?;
    let logits = model.step(&mut state)?;
    assert_eq!(logits.dims(), [1, 10]);
    assert!(state.trace()[0].iter().all(|e| e.is_finite()));
    println!("PVgg16 at 224x224: build {built:.1?}, one timestep {:.1?}", t.elapsed() - built);
    Ok(())
}
