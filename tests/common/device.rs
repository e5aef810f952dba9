//! The device the parity tests run on: `PREDIFY_DEVICE` = `cpu` (default), `cuda` or `cuda:N`
//! (needs `--features cuda`; scripts/gpu-check.sh sets it).

use anyhow::{bail, Context, Result};
use candle_core::Device;

/// The device named by `$PREDIFY_DEVICE`.
#[allow(dead_code)] // not every test binary that includes `common` uses it
pub fn device() -> Result<Device> {
    let name = std::env::var("PREDIFY_DEVICE").unwrap_or_default();
    let ordinal = match name.trim() {
        "" | "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => 0,
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => bail!("PREDIFY_DEVICE={name}: expected cpu, cuda or cuda:N"),
        },
    };
    Device::new_cuda(ordinal).with_context(|| format!("PREDIFY_DEVICE={name} (is the test built with --features cuda, and is there a GPU?)"))
}
