//! Parity with the original Predify: every fixture in `$PREDIFY_FIXTURES` (default
//! `../shared/fixtures`) is rebuilt from its sidecar and every recorded tensor is compared at
//! every timestep. A fixture that cannot be handled is a failure, never a skip.

mod common;

use predify::runtime::chain::Segmented;
use predify::Predified;
use anyhow::{anyhow, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::checker::Checker;
use common::fixture::{fixture_dir, fixture_names, Fixture};
use predify::runtime::optim::Sgd;
use predify::runtime::sequential::PredifiedSequential;
use predify::runtime::CSqrtSource;



fn check(name: &str) -> Result<Checker> {
    let fx = Fixture::load(name)?;
    let mut ck = Checker::new(name);
    let vb = VarBuilder::from_tensors(fx.tensors.clone(), DType::F32, &common::device::device()?);
    let model = PredifiedSequential::new(fx.backbone.clone(), &fx.spec, vb.clone(), CSqrtSource::CheckpointOrExact)?;
    let pnet = model.pnet();
    let n = pnet.len();
    let input = fx.tensor("input")?.clone();

    ck.tensor("plain.logits", &fx.backbone.forward(&input)?, fx.tensor("plain.logits")?);

    // Effective hyperparameters as Predify used them (shared HP semantics included).
    for (i, pc) in fx.meta["pcoders"].as_array().ok_or_else(|| anyhow!("no pcoders"))?.iter().enumerate() {
        let h = pnet.hyperparameters(i)?;
        let eff = &pc["effective"];
        for (k, ours) in [("ffm", h.feedforward), ("erm", h.pc)] {
            let want = eff[k].as_f64().ok_or_else(|| anyhow!("effective.{k}"))?;
            ck.scalar(&format!("pcoder{}.effective.{k}", i + 1), ours, &Tensor::new(want as f32, &Device::Cpu)?)?;
        }
        // The exact √C equals Predify's estimate wherever the estimate is deterministic.
        if pc["C_sqrt_rng_dependent"].as_bool() == Some(false) {
            let exact = predify::runtime::c_sqrt::exact(pnet.pcoders()[i].predictor(), pnet.pcoders()[i].ff_shape())?;
            ck.scalar(&format!("pcoder{}.C_sqrt (exact)", i + 1), exact, fx.tensor(&format!("pcoder{}.C_sqrt", i + 1))?)?;
        }
    }

    let random_init = fx.meta["random_init"].as_bool().unwrap_or(false);
    let passes = fx.meta["backbone_passes"].as_u64().ok_or_else(|| anyhow!("backbone_passes missing"))? as usize;
    let mut st = pnet.new_state(input.clone())?;
    if random_init {
        let reps = (1..=n).map(|i| fx.tensor(&format!("t0.pcoder{i}.rep")).cloned()).collect::<Result<Vec<_>>>()?;
        st = st.with_initial_reps(reps);
    }
    for t in 0..passes {
        let logits = model.step(&mut st)?;
        ck.tensor(&format!("t{t}.logits"), &logits, fx.tensor(&format!("t{t}.logits"))?);
        for i in 0..n {
            let p = format!("t{t}.pcoder{}", i + 1);
            let s = st.pcoder(i).ok_or_else(|| anyhow!("{p}: pcoder did not fire"))?;
            ck.tensor(&format!("{p}.rep"), &s.rep, fx.tensor(&format!("{p}.rep"))?);
            ck.tensor(&format!("{p}.prd"), &s.prd, fx.tensor(&format!("{p}.prd"))?);
            ck.tensor(&format!("{p}.grd"), &s.grd, fx.tensor(&format!("{p}.grd"))?);
            ck.scalar(&format!("{p}.prediction_error"), s.prediction_error, fx.tensor(&format!("{p}.prediction_error"))?)?;
            if fx.has(&format!("{p}.ff")) {
                let below = if i == 0 { input.clone() } else { st.rep(i - 1).cloned().ok_or_else(|| anyhow!("no rep"))? };
                let ff = model.segment_forward(i, &below)?;
                ck.tensor(&format!("{p}.ff"), &ff, fx.tensor(&format!("{p}.ff"))?);
            }
        }
    }

    if fx.meta["mode"].as_str() == Some("train") {
        let tr = &fx.meta["training"];
        let g = pnet.reconstruction_grads(&st)?;
        ck.scalar("train.loss", g.loss, fx.tensor("train.loss")?)?;
        for (i, l) in g.per_pcoder.iter().enumerate() {
            ck.scalar(&format!("train.loss.pcoder{}", i + 1), *l, fx.tensor(&format!("train.loss.pcoder{}", i + 1))?)?;
        }
        for (name, grad) in &g.grads {
            ck.tensor(&format!("train.grad.{name}"), grad, fx.tensor(&format!("train.grad.{name}"))?);
        }
        let mut sgd = Sgd::new(
            tr["lr"].as_f64().ok_or_else(|| anyhow!("training.lr"))?,
            tr["weight_decay"].as_f64().unwrap_or(0.0),
            tr["momentum"].as_f64().unwrap_or(0.0),
        );
        let vars = pnet.feedback_vars();
        sgd.step(&vars, &g.grads)?;
        for (name, var) in &vars {
            ck.tensor(&format!("after.{name}"), var.as_tensor(), fx.tensor(&format!("after.{name}"))?);
        }
        // every recorded gradient must have been produced
        for key in fx.tensors.keys().filter(|k| k.starts_with("train.grad.")) {
            if !g.grads.iter().any(|(n, _)| format!("train.grad.{n}") == *key) {
                ck.failures.push(format!("{name}: {key} recorded but not computed"));
            }
        }
    }
    Ok(ck)
}

#[test]
fn every_fixture_matches_the_original() {
    let names = fixture_names().expect("listing fixtures");
    assert!(!names.is_empty(), "no fixtures found in {}", fixture_dir().display());
    let mut failures = Vec::new();
    for name in &names {
        match check(name) {
            Ok(ck) => {
                println!(
                    "parity {name}: {} tensors compared, worst relative error {:.2e}{}",
                    ck.compared,
                    ck.worst,
                    if ck.failures.is_empty() { String::new() } else { format!(", {} FAILED", ck.failures.len()) }
                );
                failures.extend(ck.failures);
            }
            Err(e) => failures.push(format!("{name}: could not run: {e:#}")),
        }
    }
    println!("parity: {} fixtures from {}", names.len(), fixture_dir().display());
    assert!(failures.is_empty(), "{} parity failures:\n{}", failures.len(), failures.join("\n"));
}
