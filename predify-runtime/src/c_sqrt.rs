//! √C of gradient-scaled pcoders (PCoderN): C is the number of prediction elements one
//! representation cell influences.

use crate::error::{usage, Result};
use crate::predictor::Predictor;
use crate::tensor_io::{from_vec, to_vec};
use candle_core::Tensor;
use rand::{Rng, SeedableRng};

/// Index of the probed cell in a per-sample shape: the centre `[C/2, …/2]`, as Predify uses.
fn centre(shape: &[usize]) -> usize {
    let mut idx = 0;
    for &d in shape {
        idx = idx * d + d / 2;
    }
    idx
}

/// √C computed exactly from the predictor's structure: the number of prediction elements the
/// centre cell of one sample's representation is connected to (channels × reachable positions
/// per axis), without running the predictor. For linear predictors this equals Predify's
/// estimate (e.g. k3 s1 → 9·C_out; bilinear ×2 then k3 → 36·C_out).
pub fn exact(pred: &Predictor, ff_shape: &[usize]) -> Result<f32> {
    if ff_shape.is_empty() || ff_shape.iter().any(|&d| d == 0) {
        return usage(format!("cannot probe a representation of shape {ff_shape:?}"));
    }
    let mut shape = vec![1];
    shape.extend_from_slice(ff_shape);
    Ok((pred.footprint(&shape)? as f32).sqrt())
}

/// √C estimated the way Predify does on the first batch: 10 times, replace the centre cell of
/// every sample's representation by a random integer in [−10000, 10000), re-run the predictor and
/// count the changed prediction elements per sample; √ of the mean count. Seeded, so repeatable
/// (the numbers differ from PyTorch's generator; load Predify's `C_sqrt` for parity).
pub fn estimate(pred: &Predictor, rep: &Tensor, seed: u64) -> Result<f32> {
    let dims = rep.dims().to_vec();
    let (n, per) = match dims.split_first() {
        Some((&n, rest)) if n > 0 => (n, rest.to_vec()),
        _ => return usage(format!("cannot estimate C from a representation of shape {dims:?}")),
    };
    let base = to_vec(rep, "rep")?;
    let base_out = to_vec(&pred.forward(rep)?, "prediction")?;
    let plen: usize = per.iter().product();
    let c = centre(&per);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut total = 0usize;
    const DRAWS: usize = 10;
    for _ in 0..DRAWS {
        let mut x = base.clone();
        for s in 0..n {
            x[s * plen + c] = rng.random_range(-10000i32..10000) as f32;
        }
        let out = to_vec(&pred.forward(&from_vec(x, &dims, rep.device())?)?, "prediction")?;
        total += out.iter().zip(&base_out).filter(|(a, b)| a != b).count();
    }
    Ok(((total as f64) / (n * DRAWS) as f64).sqrt() as f32)
}
