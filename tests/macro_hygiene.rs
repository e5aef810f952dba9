//! The generated code names everything by absolute path: a user's own `core`, `std`-like
//! names, `Tensor`, `Result` and `Module` in scope change nothing. And a predified model is
//! `Send + Sync` (one model serves many threads) when its layers are.

#![allow(dead_code)]

mod core {}
struct Tensor;
type Result = ();
struct Var;
struct PNet;
struct Vec;

mod model {
    use predify::candle_nn::{Activation, Conv2d, Linear};
    use predify::predify;
    use predify::runtime::layers::Flatten;

    // Shadow the names the expansion could be tempted to use unqualified.
    #[allow(unused_imports)]
    use super::{core, PNet, Result, Tensor, Var};
    type Box<T> = std::boxed::Box<T>;
    struct Module;

    #[predify(
        name = "PHygienic",
        input_size = [1, 8, 8],
        pcoders = [{ module = "relu" }, { module = "blocks[0]" }],
    )]
    pub struct Hygienic {
        conv: Conv2d,
        relu: Activation,
        blocks: std::vec::Vec<Box<dyn predify::candle_core::Module + Send + Sync>>,
        flatten: Flatten,
        head: Linear,
    }

    pub fn build() -> predify::Result<PHygienic> {
        use predify::candle_core::{DType, Device};
        use predify::candle_nn::{conv2d, linear, Conv2dConfig, VarBuilder, VarMap};
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let conv = conv2d(1, 4, 3, Conv2dConfig { padding: 1, ..Default::default() }, vb.pp("backbone.conv"))?;
        let block = conv2d(4, 4, 3, Conv2dConfig { padding: 1, ..Default::default() }, vb.pp("backbone.block"))?;
        let head = linear(4 * 8 * 8, 3, vb.pp("backbone.head"))?;
        let backbone = Hygienic { conv, relu: Activation::Relu, blocks: vec![Box::new(block)], flatten: Flatten::default(), head };
        PHygienic::new(backbone, vb)
    }
}

fn assert_send_sync<T: Send + Sync>(_: &T) {}

#[test]
fn expands_with_shadowing_names_in_scope_and_is_send_sync() {
    use predify::Predified;
    let net = model::build().expect("building the model");
    assert_send_sync(&net);
    let x = predify::candle_core::Tensor::zeros((2, 1, 8, 8), predify::candle_core::DType::F32, &predify::candle_core::Device::Cpu).unwrap();
    // One model, two threads, two states.
    std::thread::scope(|s| {
        let a = s.spawn(|| net.run(&x, 3).map(|(l, _)| l.len()));
        let b = s.spawn(|| net.run(&x, 2).map(|(l, _)| l.len()));
        assert_eq!(a.join().unwrap().unwrap(), 3);
        assert_eq!(b.join().unwrap().unwrap(), 2);
    });
    assert_eq!(model::PHygienic::ATTACH_POINTS, ["relu", "blocks[0]"]);
}

#[test]
fn the_zoo_models_are_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<predify::zoo::mnist8::PMnist8>();
    send_sync::<predify::zoo::vgg16::PVgg16>();
    send_sync::<predify::runtime::sequential::PredifiedSequential>();
}
