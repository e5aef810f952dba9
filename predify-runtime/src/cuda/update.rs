//! The fused PCoder state update as one CUDA kernel (`state_update.cu`).

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::op::BackpropOp;
use candle_core::{CudaStorage, DType, Device, Storage, Tensor};
use std::sync::OnceLock;

const SOURCE: &str = include_str!("state_update.cu");
const FUNC: &str = "predify_state_update";
const MODULE: &str = "predify_state_update";

/// The kernel's PTX, compiled once per process with NVRTC (no CUDA toolkit needed at build
/// time beyond what Candle itself needs, and the driver JIT-compiles it for the GPU at hand).
fn ptx() -> candle_core::Result<&'static str> {
    static PTX: OnceLock<Result<String, String>> = OnceLock::new();
    let r = PTX.get_or_init(|| {
        candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(SOURCE)
            .map(|p| p.to_src())
            .map_err(|e| format!("{e:?}"))
    });
    match r {
        Ok(s) => Ok(s.as_str()),
        Err(e) => candle_core::bail!("predify state update (CUDA): NVRTC could not compile {FUNC}: {e}"),
    }
}

/// `β·ff + m·rep (+ λ·fb) − s·grd` in one pass over CUDA tensors, with `coeffs = [β, m, λ, s]`
/// and the products and sums in the order of the CPU path (identical results).
///
/// Returns `Ok(None)` when the fused kernel does not apply and the caller's tensor-op path
/// should run instead: not on CUDA, not f32, shapes differ, a missing feedback where one is
/// expected, or an operand that autograd tracks (the kernel records no backward).
pub(crate) fn fused_update(
    ff: &Tensor,
    rep: &Tensor,
    fb: Option<&Tensor>,
    grd: &Tensor,
    coeffs: [f32; 4],
) -> candle_core::Result<Option<Tensor>> {
    let Device::Cuda(dev) = ff.device() else { return Ok(None) };
    let mut ops: Vec<&Tensor> = vec![ff, rep, grd];
    ops.extend(fb);
    let n = ff.elem_count();
    if ops.iter().any(|t| !t.device().same_device(ff.device()) || t.dtype() != DType::F32 || t.dims() != ff.dims() || t.track_op())
        || u32::try_from(n).is_err()
    {
        return Ok(None);
    }
    let func = dev.get_or_load_custom_func(FUNC, MODULE, ptx()?)?;
    let (ff, rep, grd) = (ff.contiguous()?, rep.contiguous()?, grd.contiguous()?);
    let fb = fb.map(|t| t.contiguous()).transpose()?;
    // Read guards on the operands' storage for the duration of the launch (distinct tensors of
    // one state; nothing writes them meanwhile).
    let guards = [Some(&ff), Some(&rep), Some(&grd), fb.as_ref()].map(|t| t.map(|t| t.storage_and_layout()));
    let mut views = Vec::with_capacity(4);
    for (st, l) in guards.iter().flatten() {
        match &**st {
            Storage::Cuda(c) => views.push(c.as_cuda_slice::<f32>()?.slice(l.start_offset()..l.start_offset() + n)),
            _ => candle_core::bail!("predify state update (CUDA): an operand of shape {:?} is not on the CUDA device", l.dims()),
        }
    }
    let has_fb = i32::from(views.len() == 4);
    // SAFETY: the kernel writes all n elements.
    let out = unsafe { dev.alloc::<f32>(n)? };
    let mut b = func.builder();
    b.arg(&views[0]);
    b.arg(&views[1]);
    // Without feedback the kernel never reads `fb`; any valid pointer will do.
    b.arg(if has_fb == 1 { &views[3] } else { &views[0] });
    b.arg(&views[2]);
    b.arg(&out);
    let [beta, memory, lambda, scale] = coeffs;
    let n64 = n as u64;
    b.arg(&beta);
    b.arg(&memory);
    b.arg(&lambda);
    b.arg(&scale);
    b.arg(&n64);
    b.arg(&has_fb);
    // SAFETY: argument list matches the kernel's signature; all views hold n f32s.
    unsafe { b.launch(LaunchConfig::for_num_elems(n as u32)) }.w()?;
    drop(views);
    drop(guards);
    let storage = CudaStorage::wrap_cuda_slice(out, dev.clone());
    Ok(Some(Tensor::from_storage(Storage::Cuda(storage), ff.shape().clone(), BackpropOp::none(), false)))
}
