//! Input corruptions for robustness evaluation ([`crate::eval`]) and tuning ([`crate::tune`]):
//! additive Gaussian noise and salt-and-pepper noise, drawn from the project's seeded [`Rng`]
//! so that the same seed corrupts the same pixels on every machine.

use crate::common::{Error, Result, Rng};
use candle_core::Tensor;

/// A corruption of the input.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "level", rename_all = "snake_case")]
pub enum Noise {
    /// No corruption.
    Clean,
    /// Additive Gaussian noise of this standard deviation, on the normalised input.
    Gaussian(f32),
    /// Salt-and-pepper noise: this fraction of pixels set to the minimum or maximum value
    /// (half each, in expectation).
    SaltPepper(f32),
}

impl Noise {
    /// A short label: `clean`, `gauss 0.50`, `s&p 0.10`.
    pub fn label(&self) -> String {
        match self {
            Noise::Clean => "clean".into(),
            Noise::Gaussian(s) => format!("gauss {s:.2}"),
            Noise::SaltPepper(p) => format!("s&p {p:.2}"),
        }
    }

    /// `(kind, level)` for tables: `("gaussian", 0.5)`.
    pub fn kind_level(&self) -> (&'static str, f32) {
        match *self {
            Noise::Clean => ("clean", 0.0),
            Noise::Gaussian(s) => ("gaussian", s),
            Noise::SaltPepper(p) => ("salt_pepper", p),
        }
    }

    /// Corrupt `x` with values drawn from `rng`; `range` is the (min, max) pixel value that
    /// salt-and-pepper noise writes.
    pub fn apply(&self, x: &Tensor, rng: &mut Rng, range: (f32, f32)) -> Result<Tensor> {
        let v = match *self {
            Noise::Clean => return Ok(x.clone()),
            Noise::Gaussian(s) => {
                let mut v = x.flatten_all()?.to_vec1::<f32>()?;
                for p in v.iter_mut() {
                    *p += s * rng.normal() as f32;
                }
                v
            }
            Noise::SaltPepper(frac) => {
                let mut v = x.flatten_all()?.to_vec1::<f32>()?;
                let half = frac as f64 / 2.0;
                for p in v.iter_mut() {
                    let u = rng.uniform();
                    if u < half {
                        *p = range.0;
                    } else if u < 2.0 * half {
                        *p = range.1;
                    }
                }
                v
            }
        };
        Ok(Tensor::from_vec(v, x.dims(), x.device())?)
    }

    /// Parse `clean`, `gauss:0.5` / `gaussian:0.5` or `sp:0.1` / `s&p:0.1` / `salt_pepper:0.1`.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "clean" {
            return Ok(Noise::Clean);
        }
        let bad = || Error::Config(format!("noise `{s}`: expected clean, gauss:SIGMA or sp:FRACTION"));
        let (kind, level) = s.split_once(':').ok_or_else(bad)?;
        let level: f32 = level.trim().parse().map_err(|_| bad())?;
        if !level.is_finite() || level < 0.0 {
            return Err(bad());
        }
        match kind.trim() {
            "gauss" | "gaussian" => Ok(Noise::Gaussian(level)),
            "sp" | "s&p" | "salt_pepper" => {
                if level > 1.0 {
                    return Err(Error::Config(format!("noise `{s}`: a salt-and-pepper fraction is at most 1")));
                }
                Ok(Noise::SaltPepper(level))
            }
            _ => Err(bad()),
        }
    }
}
