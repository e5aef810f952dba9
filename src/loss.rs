//! The classification loss of supervised backbone training ([`crate::train::supervised`]) and
//! hyperparameter tuning ([`crate::tune`]): mean cross-entropy with its gradient, computed in
//! f64 so that the finite-difference checks of the tuning gradient are not swamped by rounding.

use crate::common::{Error, Result};
use candle_core::{DType, Tensor};

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
    let (n, k) = logits.dims2()?;
    if labels.len() != n {
        return Err(Error::Config(format!("{} labels for {n} logits", labels.len())));
    }
    let v = logits.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    let mut loss = 0.0;
    let mut g = vec![0f32; n * k];
    for (r, (row, &y)) in v.iter().zip(labels).enumerate() {
        let y = y as usize;
        if y >= k {
            return Err(Error::Config(format!("label {y} out of range for {k} classes")));
        }
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|a| (a - m).exp()).sum();
        loss += z.ln() + m - row[y];
        for c in 0..k {
            let p = (row[c] - m).exp() / z;
            g[r * k + c] = ((p - if c == y { 1.0 } else { 0.0 }) / n as f64) as f32;
        }
    }
    Ok((loss / n as f64, Tensor::from_vec(g, (n, k), logits.device())?))
}
