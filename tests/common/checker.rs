//! Collects tensor comparisons against a fixture's recordings, failing none until the end so a
//! parity test reports every mismatch at once.

use super::fixture::rel_err;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};

/// Relative tolerance (max |ours − theirs| / max |theirs| per tensor).
pub const TOL: f64 = 1e-4;

/// Comparisons made for one fixture.
pub struct Checker {
    pub fixture: String,
    pub compared: usize,
    pub worst: f64,
    pub failures: Vec<String>,
}

impl Checker {
    pub fn new(fixture: &str) -> Self {
        Self { fixture: fixture.to_string(), compared: 0, worst: 0.0, failures: vec![] }
    }

    pub fn tensor(&mut self, key: &str, ours: &Tensor, theirs: &Tensor) {
        self.compared += 1;
        match rel_err(ours, theirs) {
            Ok(e) if e <= TOL => self.worst = self.worst.max(e),
            Ok(e) => self.failures.push(format!("{}: {key}: relative error {e:.3e} > {TOL:e}", self.fixture)),
            Err(e) => self.failures.push(format!("{}: {key}: {e}", self.fixture)),
        }
    }

    pub fn scalar(&mut self, key: &str, ours: f32, theirs: &Tensor) -> Result<()> {
        let t = Tensor::new(ours, &Device::Cpu)?;
        self.tensor(key, &t, &theirs.to_dtype(DType::F32)?.reshape(())?);
        Ok(())
    }
}
