//! Input corruptions for robustness evaluation ([`crate::eval`]) and tuning ([`crate::tune`]):
//! additive Gaussian noise, salt-and-pepper noise and MNIST-C's 15 corruptions
//! ([`crate::corruptions`]), drawn from the project's seeded [`Rng`] so that the same seed
//! corrupts the same pixels on every machine.
//!
//! Two ways to draw: [`Noise::apply`] draws a whole batch from one generator (tuning, where the
//! batch is the unit), [`Noise::apply_indexed`] draws every image from its own generator keyed
//! by `(seed, condition, image index)` (evaluation: the corrupted image is then the same for any
//! batch size, batch order or thread count, so a table does not depend on how it was computed).

use crate::common::{Error, Result, Rng};
use crate::corruptions::{self, Corruption};
use candle_core::Tensor;
use rayon::prelude::*;

/// A corruption of the input.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "NoiseRepr", try_from = "NoiseRepr")]
pub enum Noise {
    /// No corruption.
    Clean,
    /// Additive Gaussian noise of this standard deviation, on the normalised input.
    Gaussian(f32),
    /// Salt-and-pepper noise: this fraction of pixels set to the minimum or maximum value
    /// (half each, in expectation).
    SaltPepper(f32),
    /// One of MNIST-C's corruptions at the severity MNIST-C used (serialised by its name:
    /// `{"kind": "corruption", "level": "fog"}`). It works on `[0, 1]` pixels: the input is
    /// mapped from the pixel range to `[0, 1]` and back.
    Corruption(Corruption),
}

/// [`Noise`]'s serialised form: `{"kind": "gaussian", "level": 0.5}`, a corruption by its
/// MNIST-C name (`{"kind": "corruption", "level": "fog"}`; `crate::corruptions` has no serde).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "level", rename_all = "snake_case")]
enum NoiseRepr {
    Clean,
    Gaussian(f32),
    SaltPepper(f32),
    Corruption(String),
}

impl From<Noise> for NoiseRepr {
    fn from(n: Noise) -> Self {
        match n {
            Noise::Clean => NoiseRepr::Clean,
            Noise::Gaussian(s) => NoiseRepr::Gaussian(s),
            Noise::SaltPepper(p) => NoiseRepr::SaltPepper(p),
            Noise::Corruption(c) => NoiseRepr::Corruption(c.name().into()),
        }
    }
}

impl TryFrom<NoiseRepr> for Noise {
    type Error = crate::corruptions::UnknownCorruption;

    fn try_from(n: NoiseRepr) -> std::result::Result<Self, Self::Error> {
        Ok(match n {
            NoiseRepr::Clean => Noise::Clean,
            NoiseRepr::Gaussian(s) => Noise::Gaussian(s),
            NoiseRepr::SaltPepper(p) => Noise::SaltPepper(p),
            NoiseRepr::Corruption(c) => Noise::Corruption(c.parse()?),
        })
    }
}

impl Noise {
    /// A short label: `clean`, `gauss 0.50`, `s&p 0.10`, or the corruption's name (`fog`).
    pub fn label(&self) -> String {
        match self {
            Noise::Clean => "clean".into(),
            Noise::Gaussian(s) => format!("gauss {s:.2}"),
            Noise::SaltPepper(p) => format!("s&p {p:.2}"),
            Noise::Corruption(c) => c.name().into(),
        }
    }

    /// `(kind, level)` for tables: `("gaussian", 0.5)`; a corruption is `(its name, 0)` (it has
    /// one fixed severity).
    pub fn kind_level(&self) -> (&'static str, f32) {
        match *self {
            Noise::Clean => ("clean", 0.0),
            Noise::Gaussian(s) => ("gaussian", s),
            Noise::SaltPepper(p) => ("salt_pepper", p),
            Noise::Corruption(c) => (c.name(), 0.0),
        }
    }

    /// The key of this condition's random streams: the kind and the level at full precision
    /// (`gaussian:0.5`), so that two conditions whose labels round alike still draw apart.
    pub fn stream_key(&self) -> String {
        match *self {
            Noise::Clean => "clean".into(),
            Noise::Gaussian(s) => format!("gaussian:{s}"),
            Noise::SaltPepper(p) => format!("salt_pepper:{p}"),
            Noise::Corruption(c) => format!("corruption:{}", c.name()),
        }
    }

    /// Whether this is one of MNIST-C's corruptions.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Noise::Corruption(_))
    }

    /// All 15 MNIST-C corruptions as conditions, in MNIST-C's order.
    pub fn corruptions() -> Vec<Noise> {
        Corruption::ALL.iter().map(|&c| Noise::Corruption(c)).collect()
    }

    /// Corrupt the batch `x` (`[N, ...]`) drawing image `i`'s values from a generator of its own,
    /// `Rng::derive(seed, "eval-noise/" + stream_key, first_index + i)`: image `first_index + i`
    /// of a data set gets the same corruption whatever batch it is in. `range` is the (min, max)
    /// pixel value of the input (written by salt-and-pepper noise; mapped to `[0, 1]` for the
    /// MNIST-C corruptions).
    pub fn apply_indexed(&self, x: &Tensor, seed: u64, first_index: u64, range: (f32, f32)) -> Result<Tensor> {
        if let Noise::Clean = self {
            return Ok(x.clone());
        }
        let n = x.dims().first().copied().unwrap_or(0);
        let mut v = x.flatten_all()?.to_vec1::<f32>()?;
        if n == 0 || v.is_empty() {
            return Ok(x.clone());
        }
        let per = v.len() / n;
        if let Noise::Corruption(c) = *self {
            self.corrupt(c, x, &mut v, per, range, |i| (seed, first_index + i as u64))?;
        } else {
            let stream = format!("eval-noise/{}", self.stream_key());
            v.par_chunks_mut(per).enumerate().for_each(|(i, img)| {
                let mut rng = Rng::derive(seed, &stream, first_index + i as u64);
                self.draw(img, &mut rng, range);
            });
        }
        Ok(Tensor::from_vec(v, x.dims(), x.device())?)
    }

    /// Gaussian or salt-and-pepper noise on `v` in place, drawn from `rng` pixel by pixel.
    fn draw(&self, v: &mut [f32], rng: &mut Rng, range: (f32, f32)) {
        match *self {
            Noise::Gaussian(s) => {
                for p in v.iter_mut() {
                    *p += s * rng.normal() as f32;
                }
            }
            Noise::SaltPepper(frac) => {
                let half = frac as f64 / 2.0;
                for p in v.iter_mut() {
                    let u = rng.uniform();
                    if u < half {
                        *p = range.0;
                    } else if u < 2.0 * half {
                        *p = range.1;
                    }
                }
            }
            Noise::Clean | Noise::Corruption(_) => {}
        }
    }

    /// Apply corruption `c` to the images in `v` (`per` values each, batch `x`'s layout
    /// `[N, C, H, W]` or `[N, H, W]`): every channel plane of image `i` gets the draws of
    /// `key(i) = (seed, index)`, so a colour image's planes move together. The pixel `range` is
    /// mapped to `[0, 1]`, where MNIST-C's arithmetic lives, and back.
    fn corrupt(&self, c: Corruption, x: &Tensor, v: &mut [f32], per: usize, range: (f32, f32), key: impl Fn(usize) -> (u64, u64) + Sync) -> Result<()> {
        let dims = x.dims();
        if dims.len() < 3 {
            return Err(Error::Config(format!("corruption {}: needs images [N, (C,) H, W], got shape {dims:?}", c.name())));
        }
        let (h, w) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        let (lo, span) = (range.0, range.1 - range.0);
        // Written so that a NaN span is refused too.
        if span.is_nan() || span <= 0.0 {
            return Err(Error::Config(format!("corruption {}: empty pixel range {range:?}", c.name())));
        }
        v.par_chunks_mut(per).enumerate().for_each(|(i, img)| {
            let (seed, index) = key(i);
            for plane in img.chunks_mut(h * w) {
                let unit: Vec<f32> = plane.iter().map(|&p| (p - lo) / span).collect();
                let out = corruptions::apply(c, &unit, h, w, seed, index);
                for (p, o) in plane.iter_mut().zip(out) {
                    *p = lo + o * span;
                }
            }
        });
        Ok(())
    }

    /// Corrupt `x` with values drawn from `rng` (one generator for the whole batch: the result
    /// depends on the batch; see [`Noise::apply_indexed`] for draws per image); `range` is the
    /// (min, max) pixel value that salt-and-pepper noise writes.
    pub fn apply(&self, x: &Tensor, rng: &mut Rng, range: (f32, f32)) -> Result<Tensor> {
        let v = match *self {
            Noise::Clean => return Ok(x.clone()),
            Noise::Corruption(c) => {
                // MNIST-C's generators are keyed per image: take one seed from `rng` for the
                // batch and key the images by their position in it.
                let seed = rng.next_u64();
                let n = x.dims().first().copied().unwrap_or(0).max(1);
                let mut v = x.flatten_all()?.to_vec1::<f32>()?;
                let per = (v.len() / n).max(1);
                self.corrupt(c, x, &mut v, per, range, |i| (seed, i as u64))?;
                v
            }
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

    /// Parse `clean`, `gauss:0.5` / `gaussian:0.5`, `sp:0.1` / `s&p:0.1` / `salt_pepper:0.1`,
    /// or an MNIST-C corruption's name (`fog`, `motion-blur`, optionally as `corruption:fog`).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "clean" {
            return Ok(Noise::Clean);
        }
        if let Ok(c) = s.strip_prefix("corruption:").unwrap_or(s).parse::<Corruption>() {
            return Ok(Noise::Corruption(c));
        }
        let bad = || Error::Config(format!("noise `{s}`: expected clean, gauss:SIGMA, sp:FRACTION or an MNIST-C corruption"));
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
