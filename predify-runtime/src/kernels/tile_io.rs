//! Small helpers shared by the tiled transform paths ([`super::fft_conv`],
//! [`super::winograd_conv`]): reading a plane with zero padding, and how many samples one pass
//! takes.

/// `plane[i, j]` of an `hw` grid, zero outside.
pub(crate) fn read_padded(plane: &[f32], hw: [usize; 2], i: isize, j: isize) -> f32 {
    if i < 0 || j < 0 || i as usize >= hw[0] || j as usize >= hw[1] {
        0.0
    } else {
        plane[i as usize * hw[1] + j as usize]
    }
}

/// Samples per pass: as many as keep a transient of `bytes_per_sample` per sample under 64 MB
/// (at least one, at most `batch`), so that one GEMM serves several samples without a large
/// buffer.
pub(crate) fn samples_per_chunk(bytes_per_sample: usize, batch: usize) -> usize {
    const MAX_BYTES: usize = 64 << 20;
    (MAX_BYTES / bytes_per_sample.max(1)).clamp(1, batch.max(1))
}
