//! One optimiser step that never leaves non-finite weights behind: every trainer's update.

use crate::common::{Error, Result};
use candle_core::{Tensor, Var};
use predify_runtime::optim::Optimizer;
use predify_runtime::tensor_io::all_finite;

/// Apply `grads` to `vars` with `optimizer`, all or nothing: a non-finite gradient is refused
/// before anything is touched; if the update fails or makes any weight non-finite (an
/// overflowing learning rate), the weights and the optimiser's state are put back as they were.
/// The error comes from `diverged` (given a message naming the parameter).
///
/// `saved` holds the weights before the step; pass the same one every step, so that its
/// buffers are reused.
pub(crate) fn step_or_restore(optimizer: &mut dyn Optimizer, vars: &[(String, Var)], grads: &[(String, Tensor)], saved: &mut Snapshot, diverged: impl Fn(String) -> Error) -> Result<()> {
    for (name, g) in grads {
        if !all_finite(g)? {
            return Err(diverged(format!("gradient of `{name}` is not finite")));
        }
    }
    // The optimiser's buffers are replaced by each step, so its state's tensors stay valid as
    // they are.
    saved.save(vars)?;
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
        saved.restore(vars)?;
        optimizer.load_state(&state)?;
        return Err(e);
    }
    Ok(())
}

/// Deep copies of the weights (`Var::set` writes in place), in buffers kept from step to step:
/// a fresh copy of every weight per step cost hundreds of MB of fresh pages each time.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// CPU `f32` weights, one buffer per variable.
    host: Vec<Vec<f32>>,
    /// Anything else, copied as a tensor.
    other: Vec<Option<Tensor>>,
}

impl Snapshot {
    fn save(&mut self, vars: &[(String, Var)]) -> Result<()> {
        self.host.resize_with(vars.len(), Vec::new);
        self.other.resize(vars.len(), None);
        for (((_, var), buf), other) in vars.iter().zip(&mut self.host).zip(&mut self.other) {
            let t = var.as_tensor();
            let (storage, layout) = t.storage_and_layout();
            match (&*storage, layout.contiguous_offsets()) {
                (candle_core::Storage::Cpu(cpu), Some((a, b))) if t.dtype() == candle_core::DType::F32 => {
                    buf.clear();
                    buf.extend_from_slice(&cpu.as_slice::<f32>()?[a..b]);
                    *other = None;
                }
                _ => {
                    drop(storage);
                    *other = Some(t.copy()?);
                }
            }
        }
        Ok(())
    }

    fn restore(&self, vars: &[(String, Var)]) -> Result<()> {
        for (((_, var), buf), other) in vars.iter().zip(&self.host).zip(&self.other) {
            match other {
                Some(t) => var.set(t)?,
                None => var.set(&Tensor::from_slice(buf, var.shape(), var.device())?)?,
            }
        }
        Ok(())
    }
}
