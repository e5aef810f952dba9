//! Parity of the gradients through the unrolled dynamics with the original Predify: every
//! fixture in `$PREDIFY_UNROLL_FIXTURES` (default `../shared/fixtures-unroll`) is rebuilt from
//! its sidecar, unrolled for its T calls and differentiated with Predify's semantics (the error
//! term constant), and every recorded `unroll.*` tensor is compared at the fixtures' tolerance
//! `|a − b| ≤ 1e-5 + 1e-4·max|b|` (shared/fixtures/FORMAT.md, "Unrolled-gradient fixtures").
//! A fixture that cannot be handled is a failure, never a skip; a second test proves that the
//! checker fails on a corrupted copy.

#[allow(dead_code)] // the parity helpers this test does not use
mod common;

use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use common::fixture::{fixture_names_in, unroll_fixture_dir as unroll_dir, Fixture};
use predify::runtime::sequential::PredifiedSequential;
use predify::runtime::unroll::{cross_entropy_grads, BackwardOptions, LossOn, Tape};
use predify::runtime::CSqrtSource;
use std::collections::BTreeSet;
use std::path::Path;

/// The fixtures' tolerance, per tensor: `|a − b| ≤ 1e-5 + 1e-4·max|b|` element-wise.
const ABS: f64 = 1e-5;
const REL: f64 = 1e-4;

/// Comparisons of one fixture, collected so every mismatch is reported at once.
struct Report {
    compared: BTreeSet<String>,
    worst: f64,
    failures: Vec<String>,
}

impl Report {
    fn compare(&mut self, fixture: &str, key: &str, ours: &Tensor, theirs: &Tensor) {
        self.compared.insert(key.to_string());
        match compare(ours, theirs) {
            Ok((ok, rel)) => {
                self.worst = self.worst.max(rel);
                if !ok {
                    self.failures.push(format!("{fixture}: {key}: max |a − b| beyond 1e-5 + 1e-4·max|b| (relative error {rel:.3e})"));
                }
            }
            Err(e) => self.failures.push(format!("{fixture}: {key}: {e}")),
        }
    }
}

/// Whether every element is within tolerance, and max|a − b| / max|b| (the worst relative
/// error printed per fixture; max|b| floored at 1e-30).
fn compare(a: &Tensor, b: &Tensor) -> Result<(bool, f64)> {
    let (a, b) = (a.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?, b.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
    if a.len() != b.len() {
        bail!("{} values vs {} recorded", a.len(), b.len());
    }
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(&b).fold(0f64, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() { f64::INFINITY } else { m.max(d) }
    });
    Ok((diff <= ABS + REL * scale, diff / scale.max(1e-30)))
}

/// Rebuild fixture `name` from `dir`, unroll it and compare every `unroll.*` tensor.
fn check(dir: &Path, name: &str) -> Result<Report> {
    let fx = Fixture::load_from(dir, name)?;
    if fx.meta["mode"].as_str() != Some("unroll") {
        bail!("not an unrolled-gradient fixture (mode {})", fx.meta["mode"]);
    }
    if fx.meta["random_init"].as_bool() == Some(true) {
        bail!("random_init fixtures are not supported by the unrolled recording");
    }
    let steps = fx.meta["timesteps"].as_u64().ok_or_else(|| anyhow!("timesteps missing"))? as usize;
    let vb = VarBuilder::from_tensors(fx.tensors.clone(), DType::F32, &common::device::device()?);
    let model = PredifiedSequential::new(fx.backbone.clone(), &fx.spec, vb, CSqrtSource::CheckpointOrExact)?;
    let input = fx.tensor("input")?.clone();
    let labels: Vec<usize> = fx.tensor("labels")?.to_dtype(DType::F32)?.to_vec1::<f32>()?.iter().map(|&v| v as usize).collect();

    let mut r = Report { compared: BTreeSet::new(), worst: 0.0, failures: Vec::new() };
    let tape = Tape::record(&model, &input, steps)?;
    for (t, logits) in tape.logits().iter().enumerate() {
        let key = format!("unroll.t{t}.logits");
        r.compare(name, &key, logits, fx.tensor(&key)?);
    }
    for (on, label) in [(LossOn::Last, "last"), (LossOn::Sum, "sum")] {
        let (loss, dlogits) = cross_entropy_grads(&tape, &labels, on)?;
        let key = format!("unroll.loss_{label}");
        r.compare(name, &key, &Tensor::new(loss, &candle_core::Device::Cpu)?, fx.tensor(&key)?);
        // Parameter gradients are recorded for loss_sum only.
        let opts = if on == LossOn::Sum { BackwardOptions::predify() } else { BackwardOptions::predify().without_params() };
        let g = tape.backward(&model, &dlogits, opts)?;
        let key = format!("unroll.grad_input.{label}");
        r.compare(name, &key, &g.input, fx.tensor(&key)?);
        for (p, grad) in &g.params {
            let key = format!("unroll.grad.{label}.{p}");
            match fx.tensors.get(&key) {
                Some(want) => r.compare(name, &key, grad, want),
                None if on == LossOn::Sum => r.failures.push(format!("{name}: {key} computed but not recorded")),
                None => {}
            }
        }
    }
    // Every recorded tensor of the unrolled run must have been compared.
    for key in fx.tensors.keys().filter(|k| k.starts_with("unroll.")) {
        if !r.compared.contains(key) {
            r.failures.push(format!("{name}: {key} recorded but not compared"));
        }
    }
    Ok(r)
}

/// Check every fixture of `dir`; one line per fixture; the failures.
fn check_dir(dir: &Path) -> Vec<String> {
    let names = match fixture_names_in(dir) {
        Ok(n) if !n.is_empty() => n,
        Ok(_) => return vec![format!("no fixtures found in {}", dir.display())],
        Err(e) => return vec![format!("listing {}: {e:#}", dir.display())],
    };
    let mut failures = Vec::new();
    for name in &names {
        match check(dir, name) {
            Ok(r) => {
                println!(
                    "unroll parity {name}: {} tensors compared, worst relative error {:.2e}{}",
                    r.compared.len(),
                    r.worst,
                    if r.failures.is_empty() { String::new() } else { format!(", {} FAILED", r.failures.len()) }
                );
                failures.extend(r.failures);
            }
            Err(e) => failures.push(format!("{name}: could not run: {e:#}")),
        }
    }
    println!("unroll parity: {} fixtures from {}", names.len(), dir.display());
    failures
}

#[test]
fn every_unroll_fixture_matches_the_original() {
    let failures = check_dir(&unroll_dir());
    assert!(failures.is_empty(), "{} unroll parity failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_corrupted_fixture_fails() {
    let dir = unroll_dir();
    let name = fixture_names_in(&dir).expect("listing fixtures").into_iter().next().expect("no unroll fixtures");
    let tmp = std::env::temp_dir().join(format!("predify-unroll-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::copy(dir.join(format!("{name}.json")), tmp.join(format!("{name}.json"))).unwrap();
    let mut tensors = candle_core::safetensors::load(dir.join(format!("{name}.safetensors")), &candle_core::Device::Cpu).unwrap();
    // One value of one gradient off by 1% of the tensor's largest magnitude: 100× the tolerance.
    let key = "unroll.grad_input.sum";
    let t = &tensors[key];
    let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let mid = v.len() / 2;
    v[mid] += 0.01 * max;
    let bad = Tensor::from_vec(v, t.dims(), &candle_core::Device::Cpu).unwrap();
    tensors.insert(key.to_string(), bad);
    candle_core::safetensors::save(&tensors, tmp.join(format!("{name}.safetensors"))).unwrap();
    let failures = check_dir(&tmp);
    std::fs::remove_dir_all(&tmp).ok();
    println!("corrupted copy of {name}: {failures:?}");
    assert_eq!(failures.len(), 1, "exactly the corrupted tensor must fail: {failures:?}");
    assert!(failures[0].contains(key), "{failures:?}");
}
