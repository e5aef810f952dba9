//! Shared checks of the ImageNet zoo tests (`zoo_vgg16`, `zoo_efficientnet`).
#![allow(dead_code)]

use anyhow::{ensure, Result};
use candle_core::{Device, Tensor};
use predify::Predified;
use std::time::Instant;

/// The largest absolute difference of `a` and `b`, relative to `b`'s largest magnitude: one
/// scale-free number for logits whose size depends on the random weights.
pub fn rel_err(a: &Tensor, b: &Tensor) -> Result<f32> {
    let d = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    let m = b.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok(d / m.max(1e-12))
}

/// The checks every predified ImageNet network passes, on random 224×224 images: its pcoders'
/// feedforward shapes are Predify's (`predify_shapes`), two timesteps at batch 2 give finite
/// `[2, 1000]` logits, timestep 0 equals the plain backbone, and the prediction errors are
/// finite. Prints the timing (seconds with `digits` decimals) and the errors under `name`.
pub fn runs_two_timesteps_at_batch_2<M: Predified>(name: &str, net: &M, predify_shapes: &[[usize; 3]], digits: usize) -> Result<()> {
    let shapes: Vec<Vec<usize>> = net.pnet().pcoders().iter().map(|p| p.ff_shape().to_vec()).collect();
    let want: Vec<Vec<usize>> = predify_shapes.iter().map(|s| s.to_vec()).collect();
    ensure!(shapes == want, "pcoder shapes {shapes:?}, Predify's {want:?}");

    let x = Tensor::rand(0f32, 1f32, (2, 3, 224, 224), &Device::Cpu)?;
    let t = Instant::now();
    let (logits, state) = net.run(&x, 2)?;
    println!("{name}: 2 timesteps at batch 2 in {:.*} s", digits, t.elapsed().as_secs_f64());
    ensure!(logits.len() == 2);
    for l in &logits {
        ensure!(l.dims() == [2, 1000], "logits {:?}", l.dims());
        ensure!(l.abs()?.sum_all()?.to_scalar::<f32>()?.is_finite(), "non-finite logits");
    }
    // Timestep 0 starts every representation at its feedforward drive: the plain logits.
    let plain = net.forward_plain(&x)?;
    let e = rel_err(&logits[0], &plain)?;
    ensure!(e < 1e-5, "timestep 0 vs feedforward: {e}");
    for (t, errs) in state.trace().iter().enumerate() {
        println!("{name}: t={t} prediction errors {errs:?}");
        ensure!(errs.iter().all(|e| e.is_finite()), "non-finite prediction error at t={t}");
    }
    Ok(())
}
