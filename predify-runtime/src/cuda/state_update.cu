// Fused PCoder state update for predify-runtime's CUDA path (compiled at run time with NVRTC;
// scripts/cuda-check.sh also compiles it with nvcc so CI catches syntax errors).
//
//   out = beta*ff + memory*rep (+ lambda*fb) - scale*grd
//
// The same operation order as the CPU path in pnet.rs (products first, then left-to-right sums),
// with explicitly rounded intrinsics so the compiler cannot contract them into FMAs: the result
// is bit-identical to the CPU's tensor ops.
extern "C" __global__ void predify_state_update(
    const float* __restrict__ ff,
    const float* __restrict__ rep,
    const float* __restrict__ fb,
    const float* __restrict__ grd,
    float* __restrict__ out,
    const float beta,
    const float memory,
    const float lambda,
    const float scale,
    const unsigned long long n,
    const int has_fb)
{
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)blockDim.x * gridDim.x) {
        float r = __fadd_rn(__fmul_rn(ff[i], beta), __fmul_rn(rep[i], memory));
        if (has_fb) {
            r = __fadd_rn(r, __fmul_rn(fb[i], lambda));
        }
        out[i] = __fsub_rn(r, __fmul_rn(grd[i], scale));
    }
}
