//! `Conv2d`/`Conv3d` and `ConvTranspose2d`/`ConvTranspose3d` with per-axis parameters and groups.

use super::{join_nc, split_nc};
use crate::error::{shape_err, usage, Result};
use crate::kernels::conv::ConvShape;
use crate::kernels::transform_cache::{Pin, TransformCache};
use std::sync::Arc;
use crate::ops::{ConvDir, ConvOp, ConvWeightGradOp};
use crate::kernels::geometry::lift3;
use crate::kernels::ConvGeometry;
use candle_core::{Tensor, Var};
use predify_spec::ConvSpec;

/// A convolution or transposed convolution; weight names `weight` and `bias`, PyTorch layouts
/// (Conv `[out, in/groups, k…]`, ConvTranspose `[in, out/groups, k…]`).
#[derive(Debug, Clone)]
pub struct Conv {
    spec: ConvSpec,
    transposed: bool,
    weight: Var,
    bias: Option<Var>,
    name: String,
    /// The weight transformed for the FFT or Winograd path, shared by clones (rebuilt on weight changes).
    transforms: Arc<TransformCache>,
}

impl Conv {
    /// Load a layer from a `VarBuilder` already positioned at the layer (e.g. `pcoder1.pmodule`).
    /// Missing tensors are initialised like PyTorch does when the builder creates variables.
    pub fn load(spec: &ConvSpec, transposed: bool, vb: candle_nn::VarBuilder, name: &str) -> Result<Self> {
        let wshape = Self::weight_shape_of(spec, transposed);
        // A spec built in code skips the spec's validation: check the size before allocating.
        match wshape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
            Some(n) if n <= predify_spec::MAX_LAYER_WEIGHTS => {}
            _ => return usage(format!("{name}: a weight of shape {wshape:?} has more than {} elements", predify_spec::MAX_LAYER_WEIGHTS)),
        }
        let k: usize = spec.kernel_size.iter().product();
        // PyTorch's default init: kaiming_uniform(a=√5) → U(±1/√fan_in), fan_in = dim1 · K.
        let fan_in = (wshape[1] * k).max(1) as f64;
        let bound = 1.0 / fan_in.sqrt();
        let init = candle_nn::Init::Uniform { lo: -bound, up: bound };
        let weight = vb.get_with_hints(wshape.as_slice(), "weight", init)?;
        let bias = if spec.bias {
            Some(vb.get_with_hints(spec.out_channels, "bias", init)?)
        } else {
            None
        };
        Self::new(spec.clone(), transposed, weight, bias, name)
    }

    /// Build from explicit tensors (checked against the spec).
    pub fn new(spec: ConvSpec, transposed: bool, weight: Tensor, bias: Option<Tensor>, name: &str) -> Result<Self> {
        let wshape = Self::weight_shape_of(&spec, transposed);
        if weight.dims() != wshape.as_slice() {
            return shape_err(format!("{name}.weight"), format!("{wshape:?}"), weight.dims());
        }
        if let Some(b) = &bias {
            if b.dims() != [spec.out_channels] {
                return shape_err(format!("{name}.bias"), format!("[{}]", spec.out_channels), b.dims());
            }
        }
        if spec.groups == 0 || spec.in_channels % spec.groups != 0 || spec.out_channels % spec.groups != 0 {
            return usage(format!("{name}: groups={} must divide in_channels={} and out_channels={}", spec.groups, spec.in_channels, spec.out_channels));
        }
        let weight = weight.to_dtype(candle_core::DType::F32)?.contiguous()?;
        super::check_finite(&weight, &format!("{name}.weight"))?;
        let bias = match bias {
            Some(b) => {
                let b = b.to_dtype(candle_core::DType::F32)?.contiguous()?;
                super::check_finite(&b, &format!("{name}.bias"))?;
                Some(b)
            }
            None => None,
        };
        Ok(Self {
            spec,
            transposed,
            weight: Var::from_tensor(&weight)?,
            bias: match bias {
                Some(b) => Some(Var::from_tensor(&b)?),
                None => None,
            },
            name: name.to_string(),
            transforms: Arc::new(TransformCache::new()),
        })
    }

    fn weight_shape_of(spec: &ConvSpec, transposed: bool) -> Vec<usize> {
        let g = spec.groups.max(1);
        let mut s = if transposed {
            vec![spec.in_channels, spec.out_channels / g]
        } else {
            vec![spec.out_channels, spec.in_channels / g]
        };
        s.extend_from_slice(&spec.kernel_size);
        s
    }

    /// The layer's description.
    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }

    /// Whether this is a transposed convolution.
    pub fn is_transposed(&self) -> bool {
        self.transposed
    }

    /// The weight variable.
    pub fn weight(&self) -> &Var {
        &self.weight
    }

    /// The bias variable, if any.
    pub fn bias(&self) -> Option<&Var> {
        self.bias.as_ref()
    }

    fn lifted(&self, v: &[usize], fill: usize) -> Result<[usize; 3]> {
        match lift3(v, fill) {
            Some(a) => Ok(a),
            None => usage(format!("{}: per-axis parameters must have 1 to 3 entries, got {v:?}", self.name)),
        }
    }

    /// Kernel shape and geometry for an input of shape `[N, C, spatial…]`; returns
    /// (batch, shape, output shape).
    fn plan(&self, in_shape: &[usize]) -> Result<(usize, ConvShape, Vec<usize>)> {
        let s = &self.spec;
        let (n, c, sp) = split_nc(in_shape, s.dims, &format!("{} input", self.name))?;
        if c != s.in_channels {
            return shape_err(format!("{} input", self.name), format!("{} channels", s.in_channels), in_shape);
        }
        let kernel = self.lifted(&s.kernel_size, 1)?;
        let stride = self.lifted(&s.stride, 1)?;
        let padding = self.lifted(&s.padding, 0)?;
        let dilation = self.lifted(&s.dilation, 1)?;
        let geom = if self.transposed {
            let op = self.lifted(&s.output_padding, 0)?;
            ConvGeometry::for_conv_transpose(sp, kernel, stride, padding, op, dilation)
        } else {
            ConvGeometry::for_conv(sp, kernel, stride, padding, dilation)
        };
        let Some(geom) = geom else {
            return shape_err(format!("{}: input too small for kernel {:?}", self.name, s.kernel_size), "a larger spatial size", in_shape);
        };
        let (small_channels, big_channels, out_sp) = if self.transposed {
            (s.in_channels, s.out_channels, geom.big)
        } else {
            (s.out_channels, s.in_channels, geom.small)
        };
        let shape = ConvShape { small_channels, big_channels, groups: s.groups, geom };
        Ok((n, shape, join_nc(n, s.out_channels, out_sp, s.dims)))
    }

    /// The output shape for an input shape.
    pub fn output_shape(&self, in_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(self.plan(in_shape)?.2)
    }

    /// The custom op mapping an input of `in_shape` forward (`adjoint = false`) or an output
    /// gradient back to that input (`adjoint = true`, reusing the transforms `pin` names).
    fn op(&self, in_shape: &[usize], adjoint: bool, pin: Option<Pin>) -> Result<ConvOp> {
        let (batch, shape, out_shape) = self.plan(in_shape)?;
        let fwd = if self.transposed { ConvDir::SmallToBig } else { ConvDir::BigToSmall };
        let transforms = Some(self.transforms.clone());
        Ok(if adjoint {
            let dir = if fwd == ConvDir::SmallToBig { ConvDir::BigToSmall } else { ConvDir::SmallToBig };
            ConvOp { shape, dir, batch, in_shape: out_shape, out_shape: in_shape.to_vec(), transforms, pin, relu: false }
        } else {
            ConvOp { shape, dir: fwd, batch, in_shape: in_shape.to_vec(), out_shape, transforms, pin: None, relu: false }
        })
    }

    /// The weight as a constant for autograd (gradients w.r.t. weights are computed explicitly
    /// by [`Conv::param_grads`]; tracking them would cost a weight gradient per backward).
    fn weight_const(&self) -> Result<Tensor> {
        Ok(self.weight.as_tensor().detach().contiguous()?)
    }

    /// Forward pass (differentiable w.r.t. `x` through Candle's autograd).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, false)
    }

    /// `relu(forward(x))`, the ReLU applied inside the layer's op on the CPU (one pass less
    /// over the output, and in parallel); differentiable like [`Self::forward`].
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, true)
    }

    /// [`Self::forward`], or [`Self::forward_relu`] with `relu`.
    pub(crate) fn forward_with(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        if relu && !x.device().is_cpu() {
            return Ok(self.forward(x)?.relu()?);
        }
        let mut op = self.op(x.dims(), false, None)?;
        op.relu = relu;
        // On the CPU the kernel adds the bias itself (one pass less over the output).
        if let (Some(b), true) = (&self.bias, x.device().is_cpu()) {
            let b = b.as_tensor().detach().contiguous()?;
            return Ok(x.contiguous()?.apply_op3(&self.weight_const()?, &b, op)?);
        }
        let y = x.contiguous()?.apply_op2(&self.weight_const()?, op)?;
        match &self.bias {
            Some(b) => {
                let mut shape = vec![1; y.rank()];
                shape[1] = self.spec.out_channels;
                Ok(y.broadcast_add(&b.as_tensor().detach().reshape(shape)?)?)
            }
            None => Ok(y),
        }
    }

    /// The forward pass without the bias: the layer's linear part, which is also its
    /// Jacobian–vector product (the Jacobian of a convolution is the convolution itself).
    pub fn forward_linear(&self, x: &Tensor) -> Result<Tensor> {
        let op = self.op(x.dims(), false, None)?;
        Ok(x.contiguous()?.apply_op2_no_bwd(&self.weight_const()?, &op)?)
    }

    /// The adjoint of the forward pass w.r.t. its input: maps an output gradient `g` to the
    /// gradient w.r.t. an input of shape `in_shape`.
    pub fn input_grad(&self, in_shape: &[usize], g: &Tensor) -> Result<Tensor> {
        self.input_grad_pinned(in_shape, g, None)
    }

    /// [`Self::forward`] (with `relu`: [`Self::forward_relu`]), also naming the FFT / Winograd
    /// transforms it used (`None` if it took another path), for [`Self::input_grad_pinned`].
    pub(crate) fn forward_pinned(&self, x: &Tensor, relu: bool) -> Result<(Tensor, Option<Pin>)> {
        // Forget what an earlier call used: the pin must be this call's.
        self.transforms.take_used();
        let y = self.forward_with(x, relu)?;
        Ok((y, self.transforms.take_used()))
    }

    /// [`Self::input_grad`] for the adjoint of the forward that returned `pin`: its transforms
    /// are reused without fingerprinting the weights again (two reads of up to 205 MB per
    /// timestep become one), so the weights must not have changed in between.
    pub(crate) fn input_grad_pinned(&self, in_shape: &[usize], g: &Tensor, pin: Option<Pin>) -> Result<Tensor> {
        let op = self.op(in_shape, true, pin)?;
        if g.dims() != op.in_shape.as_slice() {
            return shape_err(format!("{} output gradient", self.name), format!("{:?}", op.in_shape), g.dims());
        }
        Ok(g.contiguous()?.apply_op2_no_bwd(&self.weight_const()?, &op)?)
    }

    /// Gradients of `<forward(x), g>` w.r.t. the weight and the bias.
    pub fn param_grads(&self, x: &Tensor, g: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let (batch, shape, out_shape) = self.plan(x.dims())?;
        if g.dims() != out_shape.as_slice() {
            return shape_err(format!("{} output gradient", self.name), format!("{out_shape:?}"), g.dims());
        }
        let (x, g) = (x.contiguous()?, g.contiguous()?);
        let (small, big) = if self.transposed { (&x, &g) } else { (&g, &x) };
        let op = ConvWeightGradOp { shape, batch, weight_shape: self.weight.dims().to_vec() };
        let dw = small.apply_op2_no_bwd(big, &op)?;
        let db = match &self.bias {
            // Σ over batch and positions.
            Some(_) => Some(g.flatten_from(2)?.sum(2)?.sum(0)?),
            None => None,
        };
        Ok((dw, db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn fused_relu_equals_the_separate_one_forward_and_backward() {
        let dev = &Device::Cpu;
        // A strided transposed convolution with bias (the predictors' pair) and a plain one.
        for (transposed, stride) in [(true, 2), (false, 1)] {
            let spec = ConvSpec {
                dims: 2,
                in_channels: 3,
                out_channels: 4,
                kernel_size: vec![4, 4],
                stride: vec![stride; 2],
                padding: vec![1; 2],
                output_padding: vec![0; 2],
                dilation: vec![1; 2],
                groups: 1,
                bias: true,
            };
            let wshape = Conv::weight_shape_of(&spec, transposed);
            let w = Tensor::randn(0f32, 0.5, wshape.as_slice(), dev).unwrap();
            let b = Tensor::randn(0f32, 0.5, 4, dev).unwrap();
            let conv = Conv::new(spec, transposed, w, Some(b), "c").unwrap();
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 6, 5), dev).unwrap()).unwrap();
            let fused = conv.forward_relu(x.as_tensor()).unwrap();
            let separate = conv.forward(x.as_tensor()).unwrap().relu().unwrap();
            let (f, s) = (fused.flatten_all().unwrap().to_vec1::<f32>().unwrap(), separate.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            assert_eq!(f, s, "transposed {transposed}: forward");
            assert!(f.iter().any(|&v| v == 0.0) && f.iter().any(|&v| v > 0.0), "the clamp is exercised");
            // Candle's autograd through both, with a weighting that differs per element.
            let wgt = Tensor::randn(0f32, 1.0, fused.dims(), dev).unwrap();
            let grad = |y: &Tensor| (y * &wgt).unwrap().sum_all().unwrap().backward().unwrap().get(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(grad(&fused), grad(&separate), "transposed {transposed}: input gradient");
        }
    }
}
