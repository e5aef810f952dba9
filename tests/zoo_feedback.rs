//! Loading Predify's feedback checkpoints: its per-pcoder PyTorch files
//! (`{'pcoderweights': state_dict, 'optimizer': …, 'epoch': …}`, fixtures written by
//! `scripts/make_pth_fixtures.py` in torch.save's zip format) and safetensors files, into
//! `pcoder{i}.pmodule.*` tensors that a predified network loads.

use predify::Predified;
use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use predify::zoo::feedback;
use predify::zoo::mnist8::{Mnist8, PMnist8};
use std::collections::HashMap;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The values `scripts/make_pth_fixtures.py` writes into its `t`-th tensor.
fn fixture_values(t: usize, n: usize) -> Vec<f32> {
    (0..n).map(|k| (((k * 37 + t * 11) % 101) as f32 - 50.0) / 64.0).collect()
}

fn values(m: &HashMap<String, Tensor>, k: &str) -> Result<Vec<f32>> {
    Ok(m.get(k).with_context(|| format!("missing {k}; have {:?}", m.keys()))?.flatten_all()?.to_vec1::<f32>()?)
}

fn sorted_keys(m: &HashMap<String, Tensor>) -> Vec<String> {
    let mut k: Vec<String> = m.keys().cloned().collect();
    k.sort();
    k
}

fn random_backbone(dev: &Device) -> Result<Mnist8> {
    let vm = VarMap::new();
    Ok(Mnist8::load(VarBuilder::from_varmap(&vm, DType::F32, dev))?)
}

#[test]
fn predify_pth_checkpoints_load_under_runtime_names() -> Result<()> {
    let paths = feedback::find_checkpoints(fixtures(), 2)?;
    ensure!(paths[0].ends_with("pmnist8_pc1_004.pth") && paths[1].ends_with("pmnist8_pc2_004.pth"), "{paths:?}");
    ensure!(feedback::file_kind(&paths[0])? == feedback::FileKind::PyTorchZip);

    let pc1 = feedback::load_pcoder_checkpoint(&paths[0], 1)?;
    ensure!(sorted_keys(&pc1) == ["pcoder1.C_sqrt", "pcoder1.pmodule.bias", "pcoder1.pmodule.weight"], "{:?}", sorted_keys(&pc1));
    ensure!(pc1["pcoder1.pmodule.weight"].dims() == [8, 1, 5, 5]);
    ensure!(values(&pc1, "pcoder1.pmodule.weight")? == fixture_values(0, 200));
    ensure!(values(&pc1, "pcoder1.pmodule.bias")? == fixture_values(1, 1));
    ensure!(values(&pc1, "pcoder1.C_sqrt")? == [5.0]);

    // pc2 stores C_sqrt = -1 ("not estimated yet"): dropped, so the exact value is used.
    let all = feedback::load_feedback_checkpoints(&paths)?;
    ensure!(
        sorted_keys(&all)
            == ["pcoder1.C_sqrt", "pcoder1.pmodule.bias", "pcoder1.pmodule.weight", "pcoder2.pmodule.0.bias", "pcoder2.pmodule.0.weight"],
        "{:?}",
        sorted_keys(&all)
    );
    ensure!(all["pcoder2.pmodule.0.weight"].dims() == [16, 8, 10, 10]);
    ensure!(values(&all, "pcoder2.pmodule.0.weight")? == fixture_values(0, 12800));
    ensure!(values(&all, "pcoder2.pmodule.0.bias")? == fixture_values(1, 8));

    // They load into PMnist8 (templates/pmnist8.toml) unchanged.
    let dev = Device::Cpu;
    let net = PMnist8::new(random_backbone(&dev)?, VarBuilder::from_tensors(all.clone(), DType::F32, &dev))?;
    for (name, var) in net.feedback_vars() {
        let want = values(&all, &name)?;
        ensure!(var.as_tensor().flatten_all()?.to_vec1::<f32>()? == want, "{name} differs from the file");
    }
    let x = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &dev)?;
    let (logits, _) = net.run(&x, 3)?;
    ensure!(logits.len() == 3 && logits[2].dims() == [2, 10]);
    Ok(())
}

#[test]
fn safetensors_checkpoints_round_trip() -> Result<()> {
    let dev = Device::Cpu;
    let dir = std::env::temp_dir().join(format!("predify-feedback-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let backbone = random_backbone(&dev)?;
    let vm = VarMap::new();
    let a = PMnist8::new(backbone.clone(), VarBuilder::from_varmap(&vm, DType::F32, &dev))?;

    // One file per pcoder with the pcoder's own state-dict names (`pmodule.*`), as Predify's
    // per-pcoder checkpoints name them; and one file for the whole network.
    let mut per: Vec<HashMap<String, Tensor>> = vec![HashMap::new(); 2];
    let mut whole = HashMap::new();
    for (name, var) in a.feedback_vars() {
        let (pc, local) = name.split_once('.').context("name")?;
        let i: usize = pc.trim_start_matches("pcoder").parse()?;
        per[i - 1].insert(local.to_string(), var.as_tensor().clone());
        whole.insert(name.clone(), var.as_tensor().clone());
    }
    per[0].insert("C_sqrt".into(), Tensor::new(-1f32, &dev)?);
    let paths: Vec<PathBuf> = (1..=2).map(|i| dir.join(format!("feedback_pc{i}.safetensors"))).collect();
    for (p, m) in paths.iter().zip(&per) {
        candle_core::safetensors::save(m, p)?;
    }
    candle_core::safetensors::save(&whole, dir.join("all.safetensors"))?;

    let x = Tensor::rand(0f32, 1f32, (3, 1, 28, 28), &dev)?;
    let (want, _) = a.run(&x, 4)?;
    for loaded in [feedback::load_feedback_checkpoints(&paths)?, feedback::load_network_file(dir.join("all.safetensors"))?] {
        ensure!(!loaded.contains_key("pcoder1.C_sqrt"), "a -1 C_sqrt must be dropped");
        let b = PMnist8::new(backbone.clone(), VarBuilder::from_tensors(loaded, DType::F32, &dev))?;
        let (got, _) = b.run(&x, 4)?;
        for (g, w) in got.iter().zip(&want) {
            let d = (g - w)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            ensure!(d < 1e-6, "logits differ by {d}");
        }
    }
    ensure!(feedback::find_checkpoints(&dir, 2)? == paths);

    // Errors name the file.
    let junk = dir.join("junk_pc9.pth");
    std::fs::write(&junk, b"definitely not a checkpoint")?;
    let e = feedback::load_pcoder_checkpoint(&junk, 9).unwrap_err().to_string();
    ensure!(e.contains("junk_pc9.pth") && e.contains("neither"), "{e}");
    let legacy = dir.join("legacy.pth");
    std::fs::write(&legacy, b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")?;
    let e = feedback::load_pcoder_checkpoint(&legacy, 1).unwrap_err().to_string();
    ensure!(e.contains("legacy.pth") && e.contains("legacy"), "{e}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
