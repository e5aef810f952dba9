//! Process-wide settings for programs that run many timesteps (the `predify-*` binaries use
//! them; a library user calls them once at start-up if they want the same).

/// Keep freed tensor buffers inside the allocator instead of returning them to the kernel.
///
/// Every timestep allocates fresh output tensors of the same sizes as the last one. With glibc's
/// defaults, buffers above its (adaptive) mmap threshold are mapped and unmapped each time, and
/// every first touch of a fresh page faults and is zeroed by the kernel: on the MNIST-scale
/// benchmark that was ~14% of the CPU time (`sys`), ~4% with these settings (mmap threshold
/// 32 MiB, trim threshold 128 MiB). Larger buffers are still mapped; the cost is that up to
/// 128 MiB of freed memory may stay with the process. Returns whether the settings were applied
/// (glibc on Linux only; elsewhere a no-op).
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is called before any threads
        // that allocate concurrently are started by the binaries (and is thread-safe in glibc).
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Give Candle's own element-wise thread pool no workers unless `CANDLE_NUM_THREADS` is set.
///
/// Candle 0.11 runs large element-wise ops on a pool of its own whose threads spin-wait; the
/// runtime's kernels and fused ops run on rayon's pool, and with both active they compete for the
/// same cores (measured 10–20% slower on the MNIST-scale net). What is left to Candle (ReLU,
/// small reductions) then runs on the calling thread. Call it at start-up, before other threads
/// read the environment. Returns whether it set the variable.
pub fn prefer_rayon_threads() -> bool {
    if std::env::var_os("CANDLE_NUM_THREADS").is_some() {
        return false;
    }
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    true
}
