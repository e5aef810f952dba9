//! Candle's autograd through the runtime's layers (custom ops with hand-written backward):
//! gradients w.r.t. the input agree with central finite differences.

use candle_core::{Device, Tensor, Var};
use predify::runtime::layers::{Conv, MaxPool, Upsample};
use predify::spec::{parse_predictor, Layer, Predictor};

fn layer(expr: &str) -> Layer {
    match parse_predictor(expr).unwrap() {
        Predictor::Single(l) => l,
        Predictor::Sequential(mut v) => v.remove(0),
    }
}

fn conv(expr: &str, seed: u64) -> Conv {
    let (Layer::ConvTranspose(spec) | Layer::Conv(spec)) = layer(expr) else { panic!("not a conv") };
    let transposed = expr.starts_with("ConvTranspose");
    let mut wshape = if transposed { vec![spec.in_channels, spec.out_channels / spec.groups] } else { vec![spec.out_channels, spec.in_channels / spec.groups] };
    wshape.extend_from_slice(&spec.kernel_size);
    let n: usize = wshape.iter().product();
    let w: Vec<f32> = (0..n).map(|i| (((i as u64 * 7919 + seed) % 97) as f32 / 48.0) - 1.0).collect();
    let w = Tensor::from_vec(w, wshape, &Device::Cpu).unwrap();
    let b = Tensor::ones(spec.out_channels, candle_core::DType::F32, &Device::Cpu).unwrap();
    Conv::new(spec, transposed, w, Some(b), "probe").unwrap()
}

/// Check d<f(x), r>/dx from autograd against central differences at a few coordinates.
fn check(name: &str, shape: &[usize], f: &dyn Fn(&Tensor) -> Tensor) {
    let n: usize = shape.iter().product();
    let x0: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) + i as f32 * 1e-3).collect();
    let x = Var::from_vec(x0.clone(), shape, &Device::Cpu).unwrap();
    let y = f(x.as_tensor());
    let r: Vec<f32> = (0..y.elem_count()).map(|i| ((i * 13 % 29) as f32 / 14.0) - 1.0).collect();
    let r = Tensor::from_vec(r, y.dims(), &Device::Cpu).unwrap();
    let loss = (y * &r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let g: Vec<f32> = grads.get(x.as_tensor()).expect("gradient").flatten_all().unwrap().to_vec1().unwrap();
    let eval = |v: Vec<f32>| -> f64 {
        let t = Tensor::from_vec(v, shape, &Device::Cpu).unwrap();
        let y: Vec<f32> = f(&t).flatten_all().unwrap().to_vec1().unwrap();
        let r: Vec<f32> = r.flatten_all().unwrap().to_vec1().unwrap();
        y.iter().zip(&r).map(|(a, b)| *a as f64 * *b as f64).sum()
    };
    let h = 1e-2f32;
    for k in (0..n).step_by((n / 17).max(1)) {
        let (mut p, mut m) = (x0.clone(), x0.clone());
        p[k] += h;
        m[k] -= h;
        let fd = (eval(p) - eval(m)) / (2.0 * h as f64);
        let tol = 2e-3 * fd.abs().max(1.0);
        assert!((fd - g[k] as f64).abs() <= tol, "{name}: d/dx[{k}] autograd {} vs finite difference {fd}", g[k]);
    }
}

#[test]
fn conv_transpose_per_axis_grouped() {
    let c = conv("ConvTranspose2d(4, 6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), groups=2)", 1);
    check("convT", &[2, 4, 5, 4], &|x| c.forward(x).unwrap());
}

#[test]
fn conv3d_strided() {
    let c = conv("Conv3d(2, 3, kernel_size=3, stride=(1, 2, 2), padding=1)", 2);
    check("conv3d", &[1, 2, 3, 6, 5], &|x| c.forward(x).unwrap());
}

#[test]
fn max_pool_routes_to_the_max() {
    let p = MaxPool::new(2, &[3, 3], &[2, 2], &[1, 1], &[1, 1], false, "pool").unwrap();
    check("maxpool", &[1, 2, 7, 6], &|x| p.forward(x).unwrap());
}

#[test]
fn bilinear_upsample_and_relu_chain() {
    let Layer::Upsample(spec) = layer("Upsample(scale_factor=(2, 1.5), mode='bilinear')") else { panic!() };
    let u = Upsample::new(spec, "up");
    let c = conv("ConvTranspose2d(3, 2, kernel_size=3, padding=1)", 3);
    check("upsample+convT+relu", &[2, 3, 4, 4], &|x| c.forward(&u.forward(x).unwrap()).unwrap().relu().unwrap());
}
