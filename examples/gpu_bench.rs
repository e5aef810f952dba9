//! Times PVGG16 timesteps on a chosen device (the CUDA path's counterpart of `predify-bench`,
//! which runs on the CPU; `scripts/gpu-check.sh` runs this next to PyTorch on the GPU).
//!
//! ```text
//! cargo run --release --no-default-features --features cuda --example gpu_bench -- \
//!     [--device cuda|cuda:N|cpu] [--batch N] [--timesteps K]
//! ```
//!
//! Random weights (PyTorch's default initialisation), a uniform [0, 1) batch of 3×224×224
//! images, K + 1 passes (t = 0 is the feedforward initialisation and warm-up); prints one JSON
//! object with the same fields as `predify-bench --json` where they apply (`timestep_s` is the
//! median of the K timed steps, each ended by a device synchronisation).

use predify::Predified;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use predify::zoo::vgg16::{PVgg16, Vgg16};
use predify::CSqrtSource;
use std::time::Instant;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn device(name: &str) -> BoxResult<Device> {
    Ok(match name {
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => Device::new_cuda(0)?,
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Device::new_cuda(n)?,
            None => return Err(format!("--device {s}: expected cpu, cuda or cuda:N").into()),
        },
    })
}

fn main() -> BoxResult<()> {
    let (mut dev_name, mut batch, mut timesteps) = ("cuda".to_string(), 1usize, 3usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--device" => dev_name = val()?,
            "--batch" => batch = val()?.parse()?,
            "--timesteps" => timesteps = val()?.parse()?,
            _ => return Err(format!("unknown argument {a}; usage: gpu_bench [--device D] [--batch N] [--timesteps K]").into()),
        }
    }
    let dev = device(&dev_name)?;
    let t = Instant::now();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let net = PVgg16::with_c_sqrt(Vgg16::load(vb.pp("backbone"), 1000)?, vb, CSqrtSource::Exact)?;
    dev.synchronize()?;
    let setup_s = t.elapsed().as_secs_f64();
    let input = Tensor::rand(0f32, 1f32, (batch, 3, 224, 224), &dev)?;
    let mut st = net.new_state(&input)?;
    let mut times = Vec::with_capacity(timesteps + 1);
    for step in 0..=timesteps {
        let start = Instant::now();
        let logits = net.step(&mut st)?;
        dev.synchronize()?;
        let dt = start.elapsed().as_secs_f64();
        drop(logits);
        eprintln!("[gpu_bench] pvgg16 batch {batch} on {dev_name}: timestep {step}/{timesteps} {dt:.4} s");
        times.push(dt);
    }
    let mut timed = times[1..].to_vec();
    timed.sort_by(f64::total_cmp);
    let timestep_s = if timed.is_empty() { f64::NAN } else { timed[timed.len() / 2] };
    let errors: Vec<f32> = st.trace().last().cloned().unwrap_or_default();
    println!(
        "{{\"kind\":\"model\",\"impl\":\"predify-rs\",\"device\":\"{dev_name}\",\"model\":\"pvgg16\",\"batch\":{batch},\"timesteps\":{timesteps},\"timestep_s\":{timestep_s},\"t0_s\":{},\"timesteps_s\":{:?},\"setup_s\":{setup_s},\"prediction_errors\":{:?}}}",
        times[0],
        &times[1..],
        errors
    );
    Ok(())
}
