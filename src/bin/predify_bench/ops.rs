//! The op-level table of `shared/NOTES-candle.md`, for our kernels
//! (`predify::runtime::layers::Conv` forward and `input_grad`) next to Candle's own ops on the
//! same shapes and data. `scripts/bench_reference.py --ops` times PyTorch on the same list.

use super::models::BoxResult;
use super::util::{num, string, time_op};
use candle_core::{DType, Device, Tensor};
use predify::runtime::layers::Conv;
use predify::spec::ConvSpec;

/// One row of the table.
pub struct OpCase {
    /// Stable key (shared with the PyTorch script).
    pub key: &'static str,
    /// What it is, for the table.
    pub label: &'static str,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    transposed: bool,
    /// Adjoint (gradient w.r.t. the input) instead of the forward pass.
    adjoint: bool,
    /// Input of the layer's forward pass, `[N, C, H, W]`.
    input: [usize; 4],
}

impl OpCase {
    /// FLOPs: 2·Cin·Cout·k²·(small grid) per sample; the adjoint costs the same.
    pub fn flop(&self) -> f64 {
        let [n, _, h, w] = self.input;
        let (ho, wo) = self.out_hw();
        let small = if self.transposed { h * w } else { ho * wo };
        2.0 * (n * self.cin * self.cout * self.k * self.k * small) as f64
    }

    fn out_hw(&self) -> (usize, usize) {
        let [_, _, h, w] = self.input;
        let f = |i: usize| {
            if self.transposed {
                (i - 1) * self.stride + self.k - 2 * self.pad
            } else {
                (i + 2 * self.pad - self.k) / self.stride + 1
            }
        };
        (f(h), f(w))
    }

    fn spec(&self) -> ConvSpec {
        ConvSpec {
            dims: 2,
            in_channels: self.cin,
            out_channels: self.cout,
            kernel_size: vec![self.k, self.k],
            stride: vec![self.stride, self.stride],
            padding: vec![self.pad, self.pad],
            output_padding: vec![0, 0],
            dilation: vec![1, 1],
            groups: 1,
            bias: false,
        }
    }
}

/// The shapes of `shared/NOTES-candle.md` (plus the adjoint of the k3 transposed convolution,
/// which every default predictor's error gradient runs).
pub const CASES: [OpCase; 5] = [
    OpCase { key: "conv2d_k3", label: "conv2d 64→64 3×3 p1, [4,64,112,112]", cin: 64, cout: 64, k: 3, stride: 1, pad: 1, transposed: false, adjoint: false, input: [4, 64, 112, 112] },
    OpCase { key: "convT_k10s2", label: "conv_transpose2d 128→64 k10 s2 p4, [4,128,112,112]→[4,64,224,224]", cin: 128, cout: 64, k: 10, stride: 2, pad: 4, transposed: true, adjoint: false, input: [4, 128, 112, 112] },
    OpCase { key: "convT_k10s2_adjoint", label: "  its adjoint (grad w.r.t. the input)", cin: 128, cout: 64, k: 10, stride: 2, pad: 4, transposed: true, adjoint: true, input: [4, 128, 112, 112] },
    OpCase { key: "convT_k3", label: "conv_transpose2d 128→64 k3 s1 p1, [4,128,224,224]", cin: 128, cout: 64, k: 3, stride: 1, pad: 1, transposed: true, adjoint: false, input: [4, 128, 224, 224] },
    OpCase { key: "convT_k3_adjoint", label: "  its adjoint (grad w.r.t. the input)", cin: 128, cout: 64, k: 3, stride: 1, pad: 1, transposed: true, adjoint: true, input: [4, 128, 224, 224] },
];

/// The measurements of one case.
pub struct OpResult {
    pub ours_s: f64,
    pub ours_reps: usize,
    pub candle_s: f64,
    pub candle_reps: usize,
    /// max |ours − Candle| / max |Candle|.
    pub max_rel_diff: f64,
}

/// Time one case: our `Conv` and Candle's op on the same random data.
pub fn run_case(c: &OpCase) -> BoxResult<OpResult> {
    let dev = Device::Cpu;
    // Weight layouts: Conv `[out, in, k, k]`; ConvTranspose `[in, out, k, k]`.
    let wshape = if c.transposed { (c.cin, c.cout, c.k, c.k) } else { (c.cout, c.cin, c.k, c.k) };
    let bound = 1.0 / ((wshape.1 * c.k * c.k) as f32).sqrt();
    let w = Tensor::rand(-bound, bound, wshape, &dev)?;
    let layer = Conv::new(c.spec(), c.transposed, w.clone(), None, c.key)?;
    let [n, _, h, wd] = c.input;
    let (ho, wo) = c.out_hw();
    let (ours_s, ours_reps, ours, candle_s, candle_reps, theirs);
    if !c.adjoint {
        let x = Tensor::rand(0f32, 1f32, (n, c.cin, h, wd), &dev)?;
        (ours_s, ours_reps, ours) = time_op(|| layer.forward(&x))?;
        (candle_s, candle_reps, theirs) = time_op(|| {
            if c.transposed {
                x.conv_transpose2d(&w, c.pad, 0, c.stride, 1)
            } else {
                x.conv2d(&w, c.pad, c.stride, 1, 1)
            }
        })?;
    } else {
        // Gradient w.r.t. the input of a transposed convolution = the convolution with the
        // same weight (Candle's conv2d reads `[c_out, c_in, k, k]` = ConvTranspose's `[in, out]`).
        let g = Tensor::rand(-1f32, 1f32, (n, c.cout, ho, wo), &dev)?;
        let in_shape = [n, c.cin, h, wd];
        (ours_s, ours_reps, ours) = time_op(|| layer.input_grad(&in_shape, &g))?;
        (candle_s, candle_reps, theirs) = time_op(|| g.conv2d(&w, c.pad, c.stride, 1, 1))?;
    }
    let scale = theirs.abs()?.max_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let diff = (&ours - &theirs)?.abs()?.max_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok(OpResult { ours_s, ours_reps, candle_s, candle_reps, max_rel_diff: diff / scale.max(f64::MIN_POSITIVE) })
}

/// The JSON lines of one case (one per implementation).
pub fn json_lines(c: &OpCase, r: &OpResult, threads: usize) -> Vec<String> {
    let gflop = c.flop() / 1e9;
    let line = |imp: &str, s: f64, reps: usize, extra: String| {
        format!(
            "{{\"kind\":\"op\",\"op\":{},\"label\":{},\"impl\":{},\"threads\":{threads},\"time_s\":{},\"reps\":{reps},\"gflop\":{},\"gflops\":{}{extra}}}",
            string(c.key),
            string(c.label.trim()),
            string(imp),
            num(s),
            num(gflop),
            num(gflop / s)
        )
    };
    vec![
        line("predify-rs", r.ours_s, r.ours_reps, format!(",\"max_rel_diff_vs_candle\":{}", num(r.max_rel_diff))),
        line("candle", r.candle_s, r.candle_reps, String::new()),
    ]
}
