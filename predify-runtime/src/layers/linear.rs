//! `Linear` (y = x Wᵀ + b), PyTorch weight layout `[out, in]`.

use crate::error::{shape_err, Result};
use candle_core::{Tensor, Var};

/// A fully connected layer.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Var,
    bias: Option<Var>,
    name: String,
}

impl Linear {
    /// Build from a weight `[out, in]` and optional bias `[out]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>, name: &str) -> Result<Self> {
        if weight.rank() != 2 {
            return shape_err(format!("{name}.weight"), "[out, in]", weight.dims());
        }
        if let Some(b) = &bias {
            if b.dims() != [weight.dims()[0]] {
                return shape_err(format!("{name}.bias"), format!("[{}]", weight.dims()[0]), b.dims());
            }
        }
        super::check_finite(&weight, &format!("{name}.weight"))?;
        if let Some(b) = &bias {
            super::check_finite(b, &format!("{name}.bias"))?;
        }
        Ok(Self {
            weight: Var::from_tensor(&weight)?,
            bias: bias.map(|b| Var::from_tensor(&b)).transpose()?,
            name: name.to_string(),
        })
    }

    /// Load `weight` and `bias` from a `VarBuilder` positioned at the layer.
    pub fn load(in_features: usize, out_features: usize, bias: bool, vb: candle_nn::VarBuilder, name: &str) -> Result<Self> {
        let bound = 1.0 / (in_features.max(1) as f64).sqrt();
        let init = candle_nn::Init::Uniform { lo: -bound, up: bound };
        match out_features.checked_mul(in_features) {
            Some(n) if n <= predify_spec::MAX_LAYER_WEIGHTS => {}
            _ => {
                return crate::error::usage(format!(
                    "{name}: a weight of {out_features} x {in_features} has more than {} elements",
                    predify_spec::MAX_LAYER_WEIGHTS
                ))
            }
        }
        let w = vb.get_with_hints((out_features, in_features), "weight", init)?;
        let b = if bias { Some(vb.get_with_hints(out_features, "bias", init)?) } else { None };
        Self::new(w, b, name)
    }

    /// Forward pass on `[N, in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let inf = self.weight.dims()[1];
        if x.rank() != 2 || x.dims()[1] != inf {
            return shape_err(format!("{} input", self.name), format!("[N, {inf}]"), x.dims());
        }
        let w = self.weight.as_tensor();
        let y = if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && w.dtype() == candle_core::DType::F32 {
            x.contiguous()?.apply_op2(&w.contiguous()?, crate::ops::LinearOp)?
        } else {
            x.matmul(&w.t()?)?
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b.as_tensor())?,
            None => y,
        })
    }

    /// Gradient w.r.t. the input for an output gradient `g` (`[N, out]`).
    pub fn input_grad(&self, g: &Tensor) -> Result<Tensor> {
        Ok(g.matmul(self.weight.as_tensor())?)
    }
}
