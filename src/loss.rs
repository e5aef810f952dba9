//! The classification loss of supervised backbone training ([`crate::train::supervised`]) and
//! hyperparameter tuning ([`crate::tune`]): mean cross-entropy with its gradient, computed in
//! f64 so that the finite-difference checks of the tuning gradient are not swamped by rounding.

use crate::common::Result;
use candle_core::Tensor;

/// Mean cross-entropy of `logits` `[N, K]` against `labels` (class indices in `0..K`), and its
/// gradient w.r.t. the logits (`(softmax − onehot)/N`, f32 on the logits' device).
///
/// ```
/// use predify::candle_core::{Device, Tensor};
/// let logits = Tensor::new(&[[0f32, 0.0], [2.0, 0.0]], &Device::Cpu)?;
/// let (loss, grad) = predify::loss::cross_entropy(&logits, &[1, 0])?;
/// let want = (2f64.ln() + (1.0 + (-2f64).exp()).ln()) / 2.0;
/// assert!((loss - want).abs() < 1e-9);
/// assert_eq!(grad.dims(), [2, 2]);
/// # Ok::<(), predify::train::Error>(())
/// ```
pub fn cross_entropy(logits: &Tensor, labels: &[u32]) -> Result<(f64, Tensor)> {
    // One implementation, the runtime's (the unrolled-gradient code uses it too).
    let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    Ok(predify_runtime::unroll::cross_entropy(logits, &labels)?)
}
