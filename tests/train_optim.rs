//! The optimisers against PyTorch's update formulas computed by hand in f64, the cosine
//! schedule against `CosineAnnealingWarmRestarts`'s closed form, and optimiser state round trips.

use candle_core::{Device, Tensor, Var};
use predify::runtime::optim::{Adam, CosineWarmRestarts, Optimizer, RmsProp, Sgd};

const P0: [f64; 3] = [0.5, -1.25, 2.0];
const GRADS: [[f64; 3]; 4] = [[0.1, -0.2, 0.3], [-0.4, 0.05, 0.2], [0.25, 0.3, -0.1], [0.0, -0.6, 0.45]];

fn param() -> Vec<(String, Var)> {
    vec![("w".to_string(), Var::from_vec(P0.iter().map(|&v| v as f32).collect::<Vec<_>>(), 3, &Device::Cpu).unwrap())]
}

fn grad(g: &[f64; 3]) -> Vec<(String, Tensor)> {
    vec![("w".to_string(), Tensor::from_vec(g.iter().map(|&v| v as f32).collect::<Vec<_>>(), 3, &Device::Cpu).unwrap())]
}

fn values(p: &[(String, Var)]) -> Vec<f32> {
    p[0].1.as_tensor().to_vec1::<f32>().unwrap()
}

fn close(ours: &[f32], want: &[f64], what: &str) {
    for (a, b) in ours.iter().zip(want) {
        let tol = 1e-6 + 1e-5 * b.abs();
        assert!(((*a as f64) - b).abs() <= tol, "{what}: ours {ours:?}, formula {want:?}");
    }
}

#[test]
fn sgd_with_momentum_and_weight_decay_follows_pytorch() {
    let (lr, wd, mu) = (0.1, 0.01, 0.9);
    let p = param();
    let mut opt = Sgd::new(lr, wd, mu);
    let mut want = P0;
    let mut buf = [0f64; 3];
    for (t, g) in GRADS.iter().enumerate() {
        opt.step(&p, &grad(g)).unwrap();
        for j in 0..3 {
            let d = g[j] + wd * want[j];
            buf[j] = if t == 0 { d } else { mu * buf[j] + d };
            want[j] -= lr * buf[j];
        }
        close(&values(&p), &want, &format!("SGD step {}", t + 1));
    }
    // μ = 0: plain p ← p − lr (g + wd p)
    let p = param();
    let mut opt = Sgd::new(lr, wd, 0.0);
    opt.step(&p, &grad(&GRADS[0])).unwrap();
    let want: Vec<f64> = (0..3).map(|j| P0[j] - lr * (GRADS[0][j] + wd * P0[j])).collect();
    close(&values(&p), &want, "SGD without momentum");
}

fn rmsprop_formula(lr: f64, alpha: f64, eps: f64, wd: f64, mu: f64, centered: bool) -> Vec<Vec<f64>> {
    let mut p = P0;
    let (mut v, mut ga, mut b) = ([0f64; 3], [0f64; 3], [0f64; 3]);
    let mut out = Vec::new();
    for g in &GRADS {
        for j in 0..3 {
            let gj = g[j] + wd * p[j];
            v[j] = alpha * v[j] + (1.0 - alpha) * gj * gj;
            let avg = if centered {
                ga[j] = alpha * ga[j] + (1.0 - alpha) * gj;
                (v[j] - ga[j] * ga[j]).sqrt() + eps
            } else {
                v[j].sqrt() + eps
            };
            if mu > 0.0 {
                b[j] = mu * b[j] + gj / avg;
                p[j] -= lr * b[j];
            } else {
                p[j] -= lr * gj / avg;
            }
        }
        out.push(p.to_vec());
    }
    out
}

#[test]
fn rmsprop_plain_and_centred_with_momentum_follow_pytorch() {
    for (centered, mu, wd) in [(false, 0.0, 0.0), (false, 0.9, 1e-3), (true, 0.5, 1e-2), (true, 0.0, 0.0)] {
        let p = param();
        let mut opt = RmsProp::new(0.01);
        opt.alpha = 0.9;
        opt.eps = 1e-3;
        opt.weight_decay = wd;
        opt.momentum = mu;
        opt.centered = centered;
        let want = rmsprop_formula(0.01, 0.9, 1e-3, wd, mu, centered);
        for (t, g) in GRADS.iter().enumerate() {
            opt.step(&p, &grad(g)).unwrap();
            close(&values(&p), &want[t], &format!("RMSprop centered={centered} μ={mu} wd={wd} step {}", t + 1));
        }
    }
}

#[test]
fn adam_with_l2_weight_decay_follows_pytorch() {
    let (lr, b1, b2, eps, wd) = (0.01, 0.9, 0.999, 1e-8, 0.05);
    let p = param();
    let mut opt = Adam::new(lr);
    opt.weight_decay = wd;
    let mut want = P0;
    let (mut m, mut v) = ([0f64; 3], [0f64; 3]);
    for (t, g) in GRADS.iter().enumerate() {
        opt.step(&p, &grad(g)).unwrap();
        let step = (t + 1) as i32;
        for j in 0..3 {
            let gj = g[j] + wd * want[j];
            m[j] = b1 * m[j] + (1.0 - b1) * gj;
            v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
            let denom = v[j].sqrt() / (1.0 - b2.powi(step)).sqrt() + eps;
            want[j] -= lr / (1.0 - b1.powi(step)) * m[j] / denom;
        }
        close(&values(&p), &want, &format!("Adam step {}", t + 1));
    }
}

/// Run two steps, save the state, restore it into a fresh optimiser on a copy of the
/// parameters, and check both continue identically.
fn check_state_round_trip(mut a: Box<dyn Optimizer>, mut b: Box<dyn Optimizer>, what: &str) {
    let pa = param();
    for g in &GRADS[..2] {
        a.step(&pa, &grad(g)).unwrap();
    }
    let st = a.state();
    assert!(!st.buffers.is_empty(), "{what}: no buffers saved");
    assert_eq!(st.steps, 2);
    let pb = vec![("w".to_string(), Var::from_tensor(pa[0].1.as_tensor()).unwrap())];
    b.load_state(&st).unwrap();
    for g in &GRADS[2..] {
        a.step(&pa, &grad(g)).unwrap();
        b.step(&pb, &grad(g)).unwrap();
    }
    assert_eq!(values(&pa), values(&pb), "{what}: restored optimiser diverges");
}

#[test]
fn optimiser_state_restores_exactly() {
    check_state_round_trip(Box::new(Sgd::new(0.1, 1e-3, 0.9)), Box::new(Sgd::new(0.1, 1e-3, 0.9)), "SGD");
    let rms = || {
        let mut o = RmsProp::new(0.01);
        o.momentum = 0.9;
        o.centered = true;
        Box::new(o) as Box<dyn Optimizer>
    };
    check_state_round_trip(rms(), rms(), "RMSprop");
    check_state_round_trip(Box::new(Adam::new(0.01)), Box::new(Adam::new(0.01)), "Adam");
}

#[test]
fn optimiser_errors_name_the_parameter_or_buffer() {
    let p = param();
    let mut sgd = Sgd::new(0.1, 0.0, 0.0);
    let e = sgd.step(&p, &[("v".to_string(), Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap())]).unwrap_err().to_string();
    assert!(e.contains("`v`"), "{e}");
    let mut adam = Adam::new(0.1);
    let e = adam.step(&p, &[("w".to_string(), Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap())]).unwrap_err().to_string();
    assert!(e.contains("`w`") && e.contains("[3]"), "{e}");
    // nothing was changed by the failed steps
    assert_eq!(values(&p), P0.iter().map(|&v| v as f32).collect::<Vec<_>>());
    // state of another kind / unknown buffer
    let mut st = Adam::new(0.1).state();
    let e = Sgd::new(0.1, 0.0, 0.9).load_state(&st).unwrap_err().to_string();
    assert!(e.contains("adam"), "{e}");
    st.buffers.insert("w.bogus".into(), Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap());
    let e = Adam::new(0.1).load_state(&st).unwrap_err().to_string();
    assert!(e.contains("w.bogus"), "{e}");
}

#[test]
fn cosine_warm_restarts_matches_pytorch_closed_form() {
    let pi = std::f64::consts::PI;
    let s = CosineWarmRestarts::new(0.1, 10.0, 1.0, 0.001).unwrap();
    let f = |tc: f64, ti: f64| 0.001 + (0.1 - 0.001) * (1.0 + (pi * tc / ti).cos()) / 2.0;
    for (e, want) in [(0.0, 0.1), (2.5, f(2.5, 10.0)), (5.0, f(5.0, 10.0)), (9.99, f(9.99, 10.0)), (10.0, 0.1), (13.0, f(3.0, 10.0))] {
        assert!((s.lr_at(e) - want).abs() < 1e-12, "T_mult 1, epoch {e}: {} vs {want}", s.lr_at(e));
    }
    // T_mult = 2: cycles of 10, 20, 40 epochs starting at 0, 10, 30.
    let s = CosineWarmRestarts::new(0.1, 10.0, 2.0, 0.0).unwrap();
    let g = |tc: f64, ti: f64| 0.1 * (1.0 + (pi * tc / ti).cos()) / 2.0;
    for (e, want) in [(0.0, 0.1), (5.0, g(5.0, 10.0)), (10.0, 0.1), (20.0, g(10.0, 20.0)), (29.0, g(19.0, 20.0)), (30.0, 0.1), (50.0, g(20.0, 40.0))] {
        assert!((s.lr_at(e) - want).abs() < 1e-12, "T_mult 2, epoch {e}: {} vs {want}", s.lr_at(e));
    }
    assert!(CosineWarmRestarts::new(0.1, 0.0, 1.0, 0.0).is_err());
    assert!(CosineWarmRestarts::new(0.1, 5.0, 0.5, 0.0).is_err());
}
