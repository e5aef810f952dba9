//! `BatchNorm2d` in evaluation mode, PyTorch names and numerics.

use crate::error::{shape_err, Result};
use candle_core::{DType, Module, Tensor};

/// PyTorch's default `eps` of `BatchNorm2d`.
pub const BATCH_NORM_EPS: f64 = 1e-5;

/// `BatchNorm2d` in evaluation mode: `y = (x − running_mean) / √(running_var + eps) · weight + bias`
/// per channel of an `[N, C, H, W]` input.
///
/// Weight names are torchvision's: `weight`, `bias`, `running_mean`, `running_var`
/// (`num_batches_tracked` is not read). The affine map is folded into one scale and one shift
/// per channel when the layer is built.
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    num_features: usize,
    eps: f64,
    /// `weight / √(running_var + eps)`, shaped `[1, C, 1, 1]`.
    scale: Tensor,
    /// `bias − running_mean · scale`, shaped `[1, C, 1, 1]`.
    shift: Tensor,
    name: String,
}

impl BatchNorm2d {
    /// Load the four tensors from a `VarBuilder` positioned at the layer (e.g. `features.0.1`).
    /// Missing tensors are created as PyTorch initialises them (weight 1, bias 0, mean 0,
    /// variance 1) when the builder creates variables.
    pub fn load(num_features: usize, eps: f64, vb: candle_nn::VarBuilder, name: &str) -> Result<Self> {
        use candle_nn::Init::Const;
        let weight = vb.get_with_hints(num_features, "weight", Const(1.0))?;
        let bias = vb.get_with_hints(num_features, "bias", Const(0.0))?;
        let mean = vb.get_with_hints(num_features, "running_mean", Const(0.0))?;
        let var = vb.get_with_hints(num_features, "running_var", Const(1.0))?;
        Self::new(&weight, &bias, &mean, &var, eps, name)
    }

    /// Build from explicit per-channel tensors (each `[C]`).
    pub fn new(weight: &Tensor, bias: &Tensor, running_mean: &Tensor, running_var: &Tensor, eps: f64, name: &str) -> Result<Self> {
        let c = weight.dims().first().copied().unwrap_or(0);
        for (what, t) in [("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)] {
            if t.rank() != 1 || t.dims()[0] != c {
                return shape_err(format!("{name}.{what}"), format!("[{c}]"), t.dims());
            }
        }
        let f = |t: &Tensor| t.to_dtype(DType::F32);
        let scale = f(weight)?.div(&f(running_var)?.affine(1.0, eps)?.sqrt()?)?;
        let shift = (f(bias)? - f(running_mean)?.mul(&scale)?)?;
        // NaN or ±inf in any input, or a negative variance, shows in the folded scale and shift.
        super::check_finite(&scale, &format!("{name} (weight / sqrt(running_var + eps))"))?;
        super::check_finite(&shift, &format!("{name} (bias - running_mean * scale)"))?;
        Ok(Self {
            num_features: c,
            eps,
            scale: scale.reshape((1, c, 1, 1))?,
            shift: shift.reshape((1, c, 1, 1))?,
            name: name.to_string(),
        })
    }

    /// Number of channels `C`.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The `eps` added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Forward pass on `[N, C, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 4 || x.dims()[1] != self.num_features {
            return shape_err(format!("{} input", self.name), format!("[N, {}, H, W]", self.num_features), x.dims());
        }
        Ok(x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)?)
    }

    /// Gradient w.r.t. the input for an output gradient `g` (a per-channel scaling).
    pub fn input_grad(&self, g: &Tensor) -> Result<Tensor> {
        Ok(g.broadcast_mul(&self.scale)?)
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        BatchNorm2d::forward(self, xs).map_err(super::to_candle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn eval_formula_and_shape_checks() {
        let d = &Device::Cpu;
        let t = |v: &[f32]| Tensor::new(v, d).unwrap();
        let bn = BatchNorm2d::new(&t(&[2.0, 0.5]), &t(&[1.0, -1.0]), &t(&[0.5, -2.0]), &t(&[4.0, 0.25]), BATCH_NORM_EPS, "bn").unwrap();
        let x = Tensor::new(&[[[[1.0f32, 3.0]], [[0.0, -2.0]]]], d).unwrap(); // [1, 2, 1, 2]
        let y = bn.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let f = |x: f32, w: f32, b: f32, m: f32, v: f32| (x - m) / (v + 1e-5f32).sqrt() * w + b;
        let want = [f(1.0, 2.0, 1.0, 0.5, 4.0), f(3.0, 2.0, 1.0, 0.5, 4.0), f(0.0, 0.5, -1.0, -2.0, 0.25), f(-2.0, 0.5, -1.0, -2.0, 0.25)];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        assert!(bn.forward(&Tensor::zeros((1, 3, 2, 2), DType::F32, d).unwrap()).is_err());
        assert!(BatchNorm2d::new(&t(&[1.0]), &t(&[1.0, 2.0]), &t(&[0.0]), &t(&[1.0]), 1e-5, "bn").is_err());
    }
}
