// Code that uses the generated type after a spec error: only the spec error is reported (the
// macro emits a placeholder of `PNet` with the whole API).
#![allow(dead_code, unused_variables)]
use predify::candle_core::{DType, Device, Module, Tensor};
use predify::candle_nn::{VarBuilder, VarMap};
use predify::predify;
use predify::Predified;

#[predify(name = "PNet", input_size = [1, 8, 8], pcoders = [{ module = "featurs[1]" }])]
struct Net {
    features: Vec<Box<dyn Module + Send + Sync>>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vb = VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu);
    let net = PNet::new(Net { features: Vec::new() }, vb)?;
    let x = Tensor::zeros((1, 1, 8, 8), DType::F32, &Device::Cpu)?;
    let (logits, state) = net.run(&x, 3)?;
    assert_eq!(PNet::NUM_PCODERS, net.pnet().len());
    let plain = net.forward_plain(&x)?;
    let (backbone, pnet) = net.into_parts();
    Ok(())
}
