//! The index geometry shared by convolutions, transposed convolutions and their adjoints.

/// Geometry of a convolution between a "big" spatial grid and a "small" one.
///
/// A convolution maps big → small; a transposed convolution with the same parameters maps
/// small → big, and each is the other's adjoint. A kernel tap `k` connects small index `i` to big
/// index `o = i·stride − padding + k·dilation` (per axis) when `0 ≤ o < big`.
/// Axes are always three (`[D, H, W]`); unused leading axes have size 1 and unit parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Big grid (convolution input / transposed-convolution output).
    pub big: [usize; 3],
    /// Small grid (convolution output / transposed-convolution input).
    pub small: [usize; 3],
    /// Kernel size per axis.
    pub kernel: [usize; 3],
    /// Stride per axis.
    pub stride: [usize; 3],
    /// Zero padding per axis.
    pub padding: [usize; 3],
    /// Dilation per axis.
    pub dilation: [usize; 3],
}

/// Lift per-axis values of 1..=3 spatial dims to three axes, filling leading axes with `fill`.
pub fn lift3(values: &[usize], fill: usize) -> Option<[usize; 3]> {
    let mut out = [fill; 3];
    if values.is_empty() || values.len() > 3 {
        return None;
    }
    let off = 3 - values.len();
    out[off..].copy_from_slice(values);
    Some(out)
}

impl ConvGeometry {
    /// Geometry of a convolution whose input grid is `big`; `None` if the kernel does not fit.
    pub fn for_conv(
        big: [usize; 3],
        kernel: [usize; 3],
        stride: [usize; 3],
        padding: [usize; 3],
        dilation: [usize; 3],
    ) -> Option<Self> {
        let mut small = [0; 3];
        for a in 0..3 {
            let span = dilation[a].checked_mul(kernel[a].checked_sub(1)?)? + 1;
            let padded = big[a] + 2 * padding[a];
            if stride[a] == 0 || padded < span {
                return None;
            }
            small[a] = (padded - span) / stride[a] + 1;
        }
        Some(Self { big, small, kernel, stride, padding, dilation })
    }

    /// Geometry of a transposed convolution whose input grid is `small`; `None` if the output
    /// would be empty or negative.
    pub fn for_conv_transpose(
        small: [usize; 3],
        kernel: [usize; 3],
        stride: [usize; 3],
        padding: [usize; 3],
        output_padding: [usize; 3],
        dilation: [usize; 3],
    ) -> Option<Self> {
        let mut big = [0; 3];
        for a in 0..3 {
            if small[a] == 0 || kernel[a] == 0 {
                return None;
            }
            let full = (small[a] - 1) * stride[a]
                + dilation[a] * (kernel[a] - 1)
                + output_padding[a]
                + 1;
            big[a] = full.checked_sub(2 * padding[a]).filter(|&v| v > 0)?;
        }
        Some(Self { big, small, kernel, stride, padding, dilation })
    }

    /// Number of big-grid elements per channel.
    pub fn big_len(&self) -> usize {
        self.big.iter().product()
    }

    /// Number of small-grid elements per channel.
    pub fn small_len(&self) -> usize {
        self.small.iter().product()
    }

    /// Number of kernel taps.
    pub fn kernel_len(&self) -> usize {
        self.kernel.iter().product()
    }

    /// For one axis and one kernel tap: the range of small indices whose big index is in bounds,
    /// and the big index of the first of them. Hoisting this out of the inner loops is what makes
    /// im2col/col2im cheap.
    pub(crate) fn valid_range(&self, axis: usize, tap: usize) -> (usize, usize, isize) {
        let s = self.stride[axis] as isize;
        let off = (tap * self.dilation[axis]) as isize - self.padding[axis] as isize;
        let big = self.big[axis] as isize;
        let small = self.small[axis] as isize;
        // smallest i with i*s + off >= 0, largest with i*s + off < big
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let hi = if big - off <= 0 { 0 } else { ((big - off - 1) / s + 1).min(small) };
        let lo = lo.min(hi);
        (lo as usize, hi as usize, lo * s + off)
    }
}
