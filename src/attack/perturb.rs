//! One attack on one batch: signed-gradient steps through the unrolled dynamics, each projected
//! onto the ε-ball around the clean image intersected with the image range.

use super::config::AttackConfig;
use crate::common::{Error, Result, Rng};
use crate::loss::predicted_classes;
use predify_runtime::chain::Segmented;
use predify_runtime::unroll::{cross_entropy_grads, BackwardOptions, LossOn, Tape};
use predify_runtime::Predified;
use candle_core::{Tensor, D};

/// The random-start stream; its index packs ε's index above the image's index, so every
/// (seed, ε, image) has its own draws whatever batch the image lands in.
const START_STREAM: &str = "attack-start";

fn start_index(eps_index: usize, image: usize) -> u64 {
    ((eps_index as u64) << 40) ^ image as u64
}

/// Project `v` onto `[x − ε, x + ε] ∩ [lo, hi]` (the range wins if `x` itself lies outside it).
fn project(v: f32, x: f32, eps: f32, (lo, hi): (f32, f32)) -> f32 {
    v.max(x - eps).min(x + eps).max(lo).min(hi)
}

/// The adversarial versions of the batch `x` (`[N, ..input]`, f32) under `config`.
///
/// `labels` are the true classes, `ids` each image's index in its data set (the random start's
/// key). Every step records `config.timesteps` passes ([`Tape::record`]), takes the
/// cross-entropy of the last timestep's logits to the label (untargeted, ascended) or the
/// target (targeted, descended), backpropagates it to the input only and moves each pixel by
/// the step size times the gradient's sign (0 where the gradient is exactly 0), then projects.
/// With ε = 0 the result is the (range-clipped) clean batch.
pub fn perturb<M: Segmented + ?Sized>(model: &M, x: &Tensor, labels: &[usize], ids: &[usize], config: &AttackConfig) -> Result<Tensor> {
    let n = x.dim(0)?;
    if labels.len() != n || ids.len() != n {
        return Err(Error::Config(format!("{} labels and {} image indices for a batch of {n}", labels.len(), ids.len())));
    }
    if config.timesteps == 0 {
        return Err(Error::Config("an attack needs at least one timestep (T = 1: the plain network)".into()));
    }
    if config.eps.is_nan() || config.eps < 0.0 || config.range.0 > config.range.1 {
        return Err(Error::Config(format!("ε = {} and range {:?}: need ε ≥ 0 and lo ≤ hi", config.eps, config.range)));
    }
    let (eps, range) = (config.eps, config.range);
    let clean: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let per = clean.len() / n.max(1);
    let mut adv: Vec<f32> = clean.iter().map(|&v| project(v, v, 0.0, range)).collect();
    if config.random_start && eps > 0.0 {
        for (b, (img, orig)) in adv.chunks_exact_mut(per).zip(clean.chunks_exact(per)).enumerate() {
            let mut rng = Rng::derive(config.seed, START_STREAM, start_index(config.eps_index, ids[b]));
            for (v, &c) in img.iter_mut().zip(orig) {
                let u = (2.0 * rng.uniform() - 1.0) as f32;
                *v = project(c + eps * u, c, eps, range);
            }
        }
    }
    if eps == 0.0 {
        return Ok(Tensor::from_vec(adv, x.dims(), x.device())?);
    }
    let (steps, size) = config.method.schedule(eps);
    // Ascend the label's loss, descend the target's.
    let sign = match config.goal {
        super::Goal::Untargeted => 1.0f32,
        super::Goal::Targeted { .. } => -1.0,
    };
    let opts = BackwardOptions { semantics: config.semantics, params: false };
    let mut classes = None;
    for _ in 0..steps {
        let xt = Tensor::from_vec(adv.clone(), x.dims(), x.device())?;
        let tape = Tape::record(model, &xt, config.timesteps)?;
        let k = *classes.get_or_insert(tape.steps()[0].logits.dim(D::Minus1)?);
        let ys: Vec<usize> = labels.iter().map(|&l| config.goal.loss_class(l, k)).collect();
        // The batch mean's 1/N scales every gradient alike: the signs are per image.
        let (_, dl) = cross_entropy_grads(&tape, &ys, LossOn::Last)?;
        let g: Vec<f32> = tape.backward(model, &dl, opts)?.input.flatten_all()?.to_vec1()?;
        for ((v, &c), &gi) in adv.iter_mut().zip(&clean).zip(&g) {
            let s = if gi > 0.0 { 1.0 } else if gi < 0.0 { -1.0 } else { 0.0 };
            *v = project(*v + sign * size * s, c, eps, range);
        }
    }
    Ok(Tensor::from_vec(adv, x.dims(), x.device())?)
}

/// The predicted class of every image of `x` at each timestep `0..timesteps` of `model`
/// ([`Predified::run`]): `preds[t][b]`.
pub fn predictions<M: Predified + ?Sized>(model: &M, x: &Tensor, timesteps: usize) -> Result<Vec<Vec<usize>>> {
    let (logits, _) = model.run(x, timesteps)?;
    logits.iter().map(argmax_rows).collect()
}

/// The argmax of each row of `[N, K]` logits.
pub(super) fn argmax_rows(logits: &Tensor) -> Result<Vec<usize>> {
    // As usize: the attacks index classes with the runtime's `usize` labels.
    Ok(predicted_classes(logits)?.into_iter().map(|p| p as usize).collect())
}
