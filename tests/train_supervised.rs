//! Supervised backbone training (the Fashion-MNIST route): the hand-written backward pass lowers
//! the loss, the weights round-trip through safetensors, and bad weight files are clear errors.

mod train_common;

use candle_core::{DType, Device, Module, Tensor};
use predify::train::supervised::{self, SupervisedConfig};
use train_common::{synthetic_set, temp_dir};

#[test]
fn backbone_training_learns_and_round_trips() {
    let data = synthetic_set(200, 11);
    let cfg = SupervisedConfig { epochs: 2, batch_size: 20, lr: 3e-3, seed: 1, train_limit: None, progress: false };
    let mut losses = Vec::new();
    let net = supervised::train_backbone(&data, &cfg, |_, l, _| losses.push(l)).unwrap();
    println!("epoch losses {losses:?}");
    assert!(losses[1] < losses[0] && losses[0] < 2.3, "{losses:?}");
    let acc = supervised::accuracy(&net, &data, 50).unwrap();
    assert!(acc > 0.5, "training accuracy {acc}");

    let dir = temp_dir("backbone");
    let path = dir.join("backbone.safetensors");
    supervised::save_backbone(&net, &path).unwrap();
    let back = supervised::load_backbone(&path).unwrap();
    let x = predify::data::gather(&data, &[0, 1, 2], &Device::Cpu).unwrap().0;
    let d = (net.forward(&x).unwrap() - back.forward(&x).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(d < 1e-5, "reloaded backbone differs by {d}");

    // wrong names and shapes name the tensor and the file
    let mut t = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    t.insert("conv2.weight".into(), Tensor::zeros((16, 8, 3, 3), DType::F32, &Device::Cpu).unwrap());
    let bad = dir.join("bad-shape.safetensors");
    candle_core::safetensors::save(&t, &bad).unwrap();
    let e = supervised::load_backbone(&bad).err().unwrap().to_string();
    assert!(e.contains("bad-shape.safetensors") && e.contains("conv2.weight") && e.contains("[16, 8, 3, 3]"), "{e}");
    let mut t = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    t.remove("fc.bias");
    let missing = dir.join("missing.safetensors");
    candle_core::safetensors::save(&t, &missing).unwrap();
    let e = supervised::load_backbone(&missing).err().unwrap().to_string();
    assert!(e.contains("missing.safetensors") && e.contains("fc.bias"), "{e}");
    // an all-NaN backbone is refused, naming the file and the tensor
    let t: std::collections::HashMap<String, Tensor> = candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.affine(0.0, f64::NAN).unwrap()))
        .collect();
    let nan = dir.join("nan.safetensors");
    candle_core::safetensors::save(&t, &nan).unwrap();
    let e = supervised::load_backbone(&nan).err().unwrap().to_string();
    assert!(e.contains("nan.safetensors") && (e.contains("weight") || e.contains("bias")), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
