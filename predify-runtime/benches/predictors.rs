//! Times PVGG16's predictor layers (forward and adjoint) through `layers::Conv`, i.e. whatever
//! algorithm `kernels::plan` picks for each shape:
//!
//! ```text
//! cargo bench -p predify-runtime --bench predictors [-- BATCH]
//! cargo bench -p predify-runtime --bench predictors -- small   # direct kernels vs im2col + GEMM
//! ```
//!
//! A quick look at the kernels alone; `predify-bench` (the workspace's bench binary) times whole
//! timesteps against PyTorch.

use candle_core::{Device, Tensor};
use predify_runtime::layers::Conv;
use predify_spec::ConvSpec;
use std::time::Instant;

fn spec(cin: usize, cout: usize, k: usize, s: usize, p: usize) -> ConvSpec {
    ConvSpec {
        dims: 2,
        in_channels: cin,
        out_channels: cout,
        kernel_size: vec![k, k],
        stride: vec![s, s],
        padding: vec![p, p],
        output_padding: vec![0, 0],
        dilation: vec![1, 1],
        groups: 1,
        bias: true,
    }
}

/// Seconds per call of `f`, averaged over `reps` back-to-back calls.
fn per_call(reps: usize, mut f: impl FnMut()) -> f64 {
    let c = Instant::now();
    for _ in 0..reps {
        f();
    }
    c.elapsed().as_secs_f64() / reps as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batch: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1);
    let dev = Device::Cpu;
    // (name, cin, cout, k, stride, padding, input side): PVGG16's predictors.
    let layers = [
        ("pcoder1 k5 64→3", 64, 3, 5, 1, 2, 224),
        ("pcoder2 k10s2 128→64", 128, 64, 10, 2, 4, 112),
        ("pcoder3 k14s2 256→128", 256, 128, 14, 2, 6, 56),
        ("pcoder4 k14s2 512→256", 512, 256, 14, 2, 6, 28),
        ("pcoder5 k14s2 512→512", 512, 512, 14, 2, 6, 14),
    ];
    println!("batch {batch}, {} rayon threads", rayon::current_num_threads());
    if std::env::args().any(|a| a == "gemm") {
        return gemm_shapes();
    }
    if std::env::args().any(|a| a == "paths") {
        return direct_paths(batch);
    }
    if std::env::args().any(|a| a == "small") {
        return small_layers();
    }
    for (name, cin, cout, k, s, p, hw) in layers {
        let bound = 1.0 / ((cout * k * k) as f32).sqrt();
        let w = Tensor::rand(-bound, bound, (cin, cout, k, k), &dev)?;
        let b = Tensor::rand(-bound, bound, cout, &dev)?;
        let conv = Conv::new(spec(cin, cout, k, s, p), true, w, Some(b), name)?;
        let x = Tensor::rand(0f32, 1f32, (batch, cin, hw, hw), &dev)?;
        let flop = 2.0 * (batch * cin * cout * k * k * hw * hw) as f64;
        let t = Instant::now();
        let y = conv.forward(&x)?;
        let first = t.elapsed().as_secs_f64();
        let mut fwd = Vec::new();
        let mut adj = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let y = conv.forward(&x)?;
            fwd.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let _ = conv.input_grad(x.dims(), &y)?;
            adj.push(t.elapsed().as_secs_f64());
        }
        let _ = y;
        let (f, a) = (median(fwd), median(adj));
        println!("{name:24} first {first:7.3} s | forward {f:7.3} s {:6.1} GFLOP/s | adjoint {a:7.3} s {:6.1} GFLOP/s", flop / f / 1e9, flop / a / 1e9);
    }
    Ok(())
}

/// The GEMM shapes under the direct paths (m, k, n): PVGG16's pcoder5 and pcoder4 phases
/// (weights × im2col), and a backbone layer.
fn gemm_shapes() -> Result<(), Box<dyn std::error::Error>> {
    use predify_runtime::kernels::gemm::{matmul, MatRef};
    for (m, k, n) in [(512, 25088, 196), (256, 25088, 784), (512, 196, 25088), (64, 576, 12544), (512, 4608, 196)] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            matmul(&mut c, MatRef::new(&a, m, k), MatRef::new(&b, k, n), false);
            times.push(t.elapsed().as_secs_f64());
        }
        let t = median(times);
        // matrixmultiply (single-threaded without its `threading` feature): compare against
        // `gemm` on one thread, interleaved.
        let (mut tg, mut tm) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let c0 = Instant::now();
            predify_runtime::kernels::gemm::matmul_serial(&mut c, MatRef::new(&a, m, k), MatRef::new(&b, k, n), false);
            tg.push(c0.elapsed().as_secs_f64());
            let c0 = Instant::now();
            // SAFETY: a is m×k, b is k×n, c is m×n, all row-major and fully allocated.
            unsafe {
                matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0, c.as_mut_ptr(), n as isize, 1);
            }
            tm.push(c0.elapsed().as_secs_f64());
        }
        let gf = |t: f64| 2.0 * (m * k * n) as f64 / t / 1e9;
        let (tg, tm) = (median(tg), median(tm));
        println!("gemm {m}x{k}x{n}: gemm crate, all threads {:.1} GFLOP/s | one thread: gemm {:.1}, matrixmultiply {:.1} GFLOP/s", gf(t), gf(tg), gf(tm));
    }
    Ok(())
}

/// The two direct algorithms (stride phases vs plain im2col/col2im + GEMM) on pcoder4/5's
/// shapes, interleaved so that load changes hit both alike.
fn direct_paths(batch: usize) -> Result<(), Box<dyn std::error::Error>> {
    use predify_runtime::kernels::conv::{self, ConvShape};
    use predify_runtime::kernels::{phase, ConvGeometry};
    for (cin, cout, hw) in [(512, 256, 28), (512, 512, 14)] {
        let geom = ConvGeometry::for_conv_transpose([1, hw, hw], [1, 14, 14], [1, 2, 2], [0, 6, 6], [0, 0, 0], [1, 1, 1]).ok_or("geometry")?;
        let s = ConvShape { small_channels: cin, big_channels: cout, groups: 1, geom };
        let w: Vec<f32> = (0..s.weight_len()).map(|i| (i % 13) as f32 * 0.01).collect();
        let x: Vec<f32> = (0..batch * cin * geom.small_len()).map(|i| (i % 7) as f32 * 0.1).collect();
        let g: Vec<f32> = (0..batch * cout * geom.big_len()).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut big = vec![0f32; g.len()];
        let mut small = vec![0f32; x.len()];
        let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..3 {
            let c = Instant::now();
            phase::small_to_big(&x, batch, &w, &s, &mut big);
            t[0].push(c.elapsed().as_secs_f64());
            let c = Instant::now();
            conv::small_to_big(&x, batch, &w, &s, &mut big);
            t[1].push(c.elapsed().as_secs_f64());
            let c = Instant::now();
            phase::big_to_small_phased(&g, batch, &w, &s, &mut small);
            t[2].push(c.elapsed().as_secs_f64());
            let c = Instant::now();
            conv::big_to_small(&g, batch, &w, &s, &mut small);
            t[3].push(c.elapsed().as_secs_f64());
        }
        let [a, b, c, d] = t.map(median);
        println!("{cin}->{cout} on {hw}: forward phases {a:.3} s, im2col {b:.3} s | adjoint phases {c:.3} s, im2col {d:.3} s");
    }
    Ok(())
}

/// The direct correlation kernels against im2col/col2im + GEMM (sample-parallel where the
/// batch allows, as `kernels::plan` would pick without the direct kernels) on the few-channel
/// layers: PVGG16's pcoder1 and VGG's first convolution at batch 1, the MNIST-scale net's
/// layers at batch 64; both directions, interleaved.
fn small_layers() -> Result<(), Box<dyn std::error::Error>> {
    use predify_runtime::kernels::conv::{self, ConvShape};
    use predify_runtime::kernels::{conv_batched, direct, ConvGeometry};
    // (name, small channels, big channels, big side, k, padding, batch)
    let layers = [
        ("pvgg16 pcoder1 64/3 k5", 64, 3, 224, 5, 2, 1),
        ("vgg16 conv1 64/3 k3", 64, 3, 224, 3, 1, 1),
        ("mnist conv1 8/1 k5", 8, 1, 28, 5, 2, 64),
        ("mnist conv2 16/8 k5", 16, 8, 14, 5, 2, 64),
        ("mnist pred1 8/1 k3", 8, 1, 28, 3, 1, 64),
        ("mnist pred2 16/8 k3", 16, 8, 28, 3, 1, 64),
    ];
    {
        // The MNIST-scale pcoder2 predictor's bilinear ×2 upsample, [64·16, 14, 14] → 28×28.
        use predify_runtime::kernels::upsample::{interpolate, interpolate_adjoint, AxisMap};
        let maps = [AxisMap::identity(1), AxisMap::linear(14, 28, Some(2.0), false), AxisMap::linear(14, 28, Some(2.0), false)];
        let x: Vec<f32> = (0..1024 * 196).map(|i| (i % 7) as f32 * 0.1).collect();
        let g: Vec<f32> = (0..1024 * 784).map(|i| (i % 5) as f32 * 0.1).collect();
        let (mut f, mut a) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            f.push(per_call(20, || drop(std::hint::black_box(interpolate(&x, 1024, [1, 14, 14], &maps)))));
            a.push(per_call(20, || drop(std::hint::black_box(interpolate_adjoint(&g, 1024, [1, 14, 14], &maps)))));
        }
        println!("mnist upsample x2 [1024,14,14]: forward {:.3} ms, adjoint {:.3} ms", median(f) * 1e3, median(a) * 1e3);
        // Its first max pooling, 2×2 stride 2 on [64·8, 28, 28].
        use predify_runtime::kernels::pool::{max_pool_values, PoolGeometry};
        let g = PoolGeometry::new([1, 28, 28], [1, 2, 2], [1, 2, 2], [0, 0, 0], [1, 1, 1], false).ok_or("pool geometry")?;
        let x: Vec<f32> = (0..512 * 784).map(|i| ((i * 7919) % 1000) as f32 * 0.001).collect();
        let mut t = Vec::new();
        for _ in 0..5 {
            t.push(per_call(20, || drop(std::hint::black_box(max_pool_values(&x, 512, &g)))));
        }
        println!("mnist max pool 2x2 [512,28,28]: {:.3} ms", median(t) * 1e3);
    }
    for (name, cs, cb, side, k, p, batch) in layers {
        let geom = ConvGeometry::for_conv([1, side, side], [1, k, k], [1, 1, 1], [0, p, p], [1, 1, 1]).ok_or("geometry")?;
        let s = ConvShape { small_channels: cs, big_channels: cb, groups: 1, geom };
        let w: Vec<f32> = (0..s.weight_len()).map(|i| (i % 13) as f32 * 0.01).collect();
        let small: Vec<f32> = (0..batch * cs * geom.small_len()).map(|i| (i % 7) as f32 * 0.1).collect();
        let big: Vec<f32> = (0..batch * cb * geom.big_len()).map(|i| (i % 5) as f32 * 0.1).collect();
        let (mut ob, mut os) = (vec![0f32; big.len()], vec![0f32; small.len()]);
        let batched = conv_batched::suits(&s, batch);
        let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        let reps = if batch == 1 { 5 } else { 50 };
        for _ in 0..5 {
            t[0].push(per_call(reps, || direct::big_to_small(&big, batch, &w, &s, None, &mut os)));
            t[1].push(per_call(reps, || {
                if batched {
                    conv_batched::big_to_small(&big, batch, &w, &s, None, &mut os);
                } else {
                    conv::big_to_small(&big, batch, &w, &s, &mut os);
                }
            }));
            t[2].push(per_call(reps, || direct::small_to_big(&small, batch, &w, &s, None, &mut ob)));
            t[3].push(per_call(reps, || {
                if batched {
                    conv_batched::small_to_big(&small, batch, &w, &s, None, &mut ob);
                } else {
                    conv::small_to_big(&small, batch, &w, &s, &mut ob);
                }
            }));
        }
        let [a, b, c, d] = t.map(median);
        let gf = |t: f64| 2.0 * (batch * s.weight_len() * geom.small_len()) as f64 / t / 1e9;
        println!(
            "{name:24} batch {batch:2}: big→small direct {:8.3} ms {:5.1} GFLOP/s, gemm {:8.3} ms {:5.1} | small→big direct {:8.3} ms {:5.1}, gemm {:8.3} ms {:5.1}",
            a * 1e3, gf(a), b * 1e3, gf(b), c * 1e3, gf(c), d * 1e3, gf(d)
        );
    }
    Ok(())
}
