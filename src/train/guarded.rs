//! One optimiser step that never leaves non-finite weights behind: every trainer's update.

use crate::common::{Error, Result};
use candle_core::{Tensor, Var};
use predify_runtime::optim::Optimizer;
use predify_runtime::tensor_io::all_finite;

/// Apply `grads` to `vars` with `optimizer`, all or nothing: a non-finite gradient is refused
/// before anything is touched; if the update fails or makes any weight non-finite (an
/// overflowing learning rate), the weights and the optimiser's state are put back as they were.
/// The error comes from `diverged` (given a message naming the parameter).
pub(crate) fn step_or_restore(optimizer: &mut dyn Optimizer, vars: &[(String, Var)], grads: &[(String, Tensor)], diverged: impl Fn(String) -> Error) -> Result<()> {
    for (name, g) in grads {
        if !all_finite(g)? {
            return Err(diverged(format!("gradient of `{name}` is not finite")));
        }
    }
    // `Var::set` writes in place, so the copies must be deep ones; the optimiser's buffers are
    // replaced by each step, so its state's tensors stay valid as they are.
    let saved: Vec<Tensor> = vars.iter().map(|(_, v)| v.as_tensor().copy()).collect::<candle_core::Result<_>>()?;
    let state = optimizer.state();
    let outcome = optimizer.step(vars, grads).map_err(Error::from).and_then(|()| {
        for (name, var) in vars {
            if !all_finite(var.as_tensor())? {
                return Err(diverged(format!("parameter `{name}` would not be finite after the update")));
            }
        }
        Ok(())
    });
    if let Err(e) = outcome {
        for ((_, var), t) in vars.iter().zip(&saved) {
            var.set(t)?;
        }
        optimizer.load_state(&state)?;
        return Err(e);
    }
    Ok(())
}
