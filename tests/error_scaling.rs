//! `error_scaling = "per_sample"`: the error term normalised per sample, so that every sample
//! evolves as it would alone (Predify's batch mean makes the dynamics depend on the batch size).

mod train_common;

use candle_core::{Device, IndexOp, Tensor};
use predify::runtime::unroll::Tape;
use predify::runtime::Hyperparameters;
use predify::spec::{ErrorScaling, Spec};
use predify::Predified;
use train_common::{synthetic_set, tiny_net};

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// The logits of sample 0 after 4 timesteps, run alone and inside a batch of 6.
fn alone_and_batched(extra: &str) -> (Tensor, Tensor) {
    let mut net = tiny_net("PScale", extra, 3);
    // A large α, so that the error term moves the representations visibly.
    for i in 0..2 {
        net.pnet_mut().set_hyperparameters(i, Hyperparameters { feedforward: 0.3, feedback: if i == 0 { 0.3 } else { 0.0 }, pc: 2.0 }).unwrap();
    }
    let set = synthetic_set(6, 1);
    let (x, _) = predify::data::gather(&set, &(0..6).collect::<Vec<_>>(), &Device::Cpu).unwrap();
    let (batched, _) = net.run(&x, 4).unwrap();
    let (alone, _) = net.run(&x.i(0..1).unwrap(), 4).unwrap();
    (alone[3].clone(), batched[3].i(0..1).unwrap())
}

#[test]
fn per_sample_scaling_makes_the_dynamics_batch_invariant() {
    let (alone, batched) = alone_and_batched("error_scaling = \"per_sample\"");
    let d = max_abs(&alone, &batched);
    assert!(d < 1e-5, "per_sample: sample 0 differs by {d} between batch 1 and batch 6");
    // Predify's batch mean: the same sample moves differently in a batch of 6.
    let (alone, batched) = alone_and_batched("");
    let d = max_abs(&alone, &batched);
    assert!(d > 1e-4, "batch_mean: expected a batch-size effect, found {d}");
}

#[test]
fn the_unrolled_recording_follows_the_same_scaling() {
    let net = tiny_net("PScale", "error_scaling = \"per_sample\"\ngradient_scaling = true", 2);
    let set = synthetic_set(5, 2);
    let (x, _) = predify::data::gather(&set, &(0..5).collect::<Vec<_>>(), &Device::Cpu).unwrap();
    let (logits, _) = net.run(&x, 4).unwrap();
    let tape = Tape::record(&net, &x, 4).unwrap();
    for (t, (a, b)) in tape.logits().iter().zip(&logits).enumerate() {
        assert!(max_abs(a, b) < 1e-5, "timestep {t}");
    }
}

#[test]
fn the_spec_key_parses_renders_and_rejects_other_values() {
    let base = "name = \"P\"\ninput_size = [1, 8, 8]\n[[pcoders]]\nmodule = \"a\"\n";
    let spec = Spec::from_toml_str(base).unwrap();
    assert_eq!(spec.error_scaling, ErrorScaling::BatchMean, "Predify's default");
    assert!(!spec.to_toml_string().contains("error_scaling"), "the default is not written");
    let per = Spec::from_toml_str(&format!("error_scaling = \"per_sample\"\n{base}")).unwrap();
    assert_eq!(per.error_scaling, ErrorScaling::PerSample);
    assert_eq!(Spec::from_toml_str(&per.to_toml_string()).unwrap(), per, "round trip");
    let e = Spec::from_toml_str(&format!("error_scaling = \"per_pixel\"\n{base}")).unwrap_err().to_string();
    assert!(e.contains("error_scaling") && e.contains("per_sample"), "{e}");
}
