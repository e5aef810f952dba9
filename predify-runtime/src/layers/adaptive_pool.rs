//! `AdaptiveAvgPool2d` with PyTorch's bin arithmetic.

use crate::error::{shape_err, usage, Result};
use candle_core::{Module, Tensor};

/// Adaptive average pooling to a fixed `[out_h, out_w]`, as `torch.nn.AdaptiveAvgPool2d`:
/// output cell `i` of an axis of input length `L` and output length `O` averages the input
/// range `floor(i·L/O) .. ceil((i+1)·L/O)` (bins may overlap when `O` does not divide `L`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    output_size: [usize; 2],
}

impl AdaptiveAvgPool2d {
    /// Pooling to `[out_h, out_w]`; both must be positive.
    pub fn new(out_h: usize, out_w: usize) -> Result<Self> {
        if out_h == 0 || out_w == 0 {
            return usage(format!("AdaptiveAvgPool2d: output size must be positive, got [{out_h}, {out_w}]"));
        }
        Ok(Self { output_size: [out_h, out_w] })
    }

    /// The output's spatial size.
    pub fn output_size(&self) -> [usize; 2] {
        self.output_size
    }

    /// The input range `(start, end)` averaged into output cell `i` of an axis.
    pub fn bin(i: usize, input: usize, output: usize) -> (usize, usize) {
        let start = i * input / output;
        let end = ((i + 1) * input).div_ceil(output);
        (start, end)
    }

    /// Pool one axis (2 or 3) of `x` to `output` cells.
    #[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87; MSRV is 1.80
    fn pool_axis(x: &Tensor, axis: usize, output: usize) -> Result<Tensor> {
        let input = x.dims()[axis];
        if input == output {
            return Ok(x.clone());
        }
        if output == 1 {
            return Ok(x.mean_keepdim(axis)?);
        }
        if input % output == 0 {
            // Equal, disjoint bins: split the axis and average the inner part.
            let mut shape = x.dims().to_vec();
            shape[axis] = input / output;
            shape.insert(axis, output);
            return Ok(x.reshape(shape)?.mean(axis + 1)?);
        }
        let parts = (0..output)
            .map(|i| {
                let (s, e) = Self::bin(i, input, output);
                x.narrow(axis, s, e - s)?.mean_keepdim(axis)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, axis)?)
    }

    /// Forward pass on `[N, C, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 4 || x.dims()[2] == 0 || x.dims()[3] == 0 {
            return shape_err("AdaptiveAvgPool2d input", "[N, C, H, W] with H, W > 0", x.dims());
        }
        let h = Self::pool_axis(x, 2, self.output_size[0])?;
        Self::pool_axis(&h, 3, self.output_size[1])
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        AdaptiveAvgPool2d::forward(self, xs).map_err(super::to_candle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// PyTorch's definition, cell by cell.
    fn brute(x: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for i in 0..oh {
            let (h0, h1) = AdaptiveAvgPool2d::bin(i, h, oh);
            for j in 0..ow {
                let (w0, w1) = AdaptiveAvgPool2d::bin(j, w, ow);
                let mut s = 0.0;
                for a in h0..h1 {
                    for b in w0..w1 {
                        s += x[a * w + b];
                    }
                }
                out.push(s / ((h1 - h0) * (w1 - w0)) as f32);
            }
        }
        out
    }

    #[test]
    fn bins_follow_pytorch() {
        // torch: start = floor(i*L/O), end = ceil((i+1)*L/O); 10 -> 7 overlaps.
        let bins: Vec<_> = (0..7).map(|i| AdaptiveAvgPool2d::bin(i, 10, 7)).collect();
        assert_eq!(bins, [(0, 2), (1, 3), (2, 5), (4, 6), (5, 8), (7, 9), (8, 10)]);
        assert_eq!(AdaptiveAvgPool2d::bin(0, 5, 1), (0, 5));
    }

    #[test]
    fn matches_the_definition_on_every_path() {
        for (h, w, oh, ow) in [(10, 9, 7, 7), (14, 14, 7, 7), (7, 7, 7, 7), (8, 6, 1, 1), (5, 12, 3, 4), (3, 3, 5, 5)] {
            let n = h * w;
            let x: Vec<f32> = (0..2 * n).map(|k| ((k * 37 % 101) as f32) / 7.0).collect();
            let t = Tensor::from_vec(x.clone(), (2, 1, h, w), &Device::Cpu).unwrap();
            let y = AdaptiveAvgPool2d::new(oh, ow).unwrap().forward(&t).unwrap();
            assert_eq!(y.dims(), [2, 1, oh, ow]);
            let got = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for s in 0..2 {
                let want = brute(&x[s * n..(s + 1) * n], h, w, oh, ow);
                for (g, e) in got[s * oh * ow..(s + 1) * oh * ow].iter().zip(&want) {
                    assert!((g - e).abs() < 1e-5, "{h}x{w}->{oh}x{ow}: {g} vs {e}");
                }
            }
        }
        assert!(AdaptiveAvgPool2d::new(0, 1).is_err());
    }
}
