//! The classification loss of supervised backbone training ([`crate::train::supervised`]) and
//! hyperparameter tuning ([`crate::tune`]): mean cross-entropy with its gradient, computed in
//! f64 so that the finite-difference checks of the tuning gradient are not swamped by rounding.
//! Also the predicted classes and correct counts that training, tuning, evaluation and the
//! attacks all score logits with, so that they agree on what "correct" means (ties: Candle's
//! `argmax`).

use crate::common::Result;
use candle_core::{Tensor, D};

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

/// The predicted class of each row of `[N, K]` logits: the argmax over the last dimension.
pub(crate) fn predicted_classes(logits: &Tensor) -> Result<Vec<u32>> {
    Ok(logits.argmax(D::Minus1)?.to_vec1::<u32>()?)
}

/// Per row of `logits`: whether its predicted class equals the label (as many rows as the
/// shorter of the two).
pub(crate) fn correct_rows(logits: &Tensor, labels: &[u32]) -> Result<Vec<bool>> {
    Ok(predicted_classes(logits)?.iter().zip(labels).map(|(p, l)| p == l).collect())
}

/// How many rows of `logits` are predicted as their label.
pub(crate) fn count_correct(logits: &Tensor, labels: &[u32]) -> Result<usize> {
    Ok(correct_rows(logits, labels)?.into_iter().filter(|&c| c).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn predictions_and_correct_counts() {
        let logits = Tensor::new(&[[0f32, 1.0, 0.5], [2.0, 0.0, 1.0], [0.0, 0.0, 3.0]], &Device::Cpu).unwrap();
        assert_eq!(predicted_classes(&logits).unwrap(), [1, 0, 2]);
        assert_eq!(correct_rows(&logits, &[1, 2, 2]).unwrap(), [true, false, true]);
        assert_eq!(count_correct(&logits, &[1, 2, 2]).unwrap(), 2);
    }
}
