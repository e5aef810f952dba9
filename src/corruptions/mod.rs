//! MNIST-C's 15 corruptions (Mu & Gilmer 2019, `google-research/mnist-c`, `corruptions.py`),
//! written natively and deterministic per image.
//!
//! Each [`Corruption`] follows the reference function at the severity MNIST-C used (the
//! functions' default `severity`), on a single-channel image with pixels in `[0, 1]` (MNIST as
//! this crate loads it: `pixels / 255`). The reference works on PIL images and `0..=255`
//! arrays; where that scale matters it is reproduced here (glass blur truncates to 8 bits in
//! the middle, motion blur runs on the 8-bit image and rounds its result to 8 bits as the PNG
//! round trip through ImageMagick does). Everything else is the same arithmetic divided by 255,
//! in `f64` as numpy computes it, and the result is clipped to `[0, 1]`.
//!
//! Randomness: every draw comes from a generator seeded by `(seed, corruption, image index)`
//! only, so an image's corruption does not depend on batch layout, order or thread count. The
//! draws follow the reference's distributions but not numpy's stream: a corrupted set is *a*
//! draw of MNIST-C, not the published files.
//!
//! ```
//! use predify::corruptions::{apply, Corruption};
//!
//! let digit = vec![0.0f32; 28 * 28];
//! let foggy = apply(Corruption::Fog, &digit, 28, 28, 7, 0);
//! assert_eq!(foggy.len(), 28 * 28);
//! assert_eq!("zigzag".parse::<Corruption>().unwrap(), Corruption::Zigzag);
//! ```

mod affine;
mod blur;
mod edges;
mod filters;
mod fog;
mod intensity;
mod lines;
mod noise;
mod rng;
mod spatter;

use rayon::prelude::*;
use rng::Rng;

/// One of MNIST-C's 15 corruptions (its `CORRUPTIONS` list without `identity`), with the
/// reference's parameters at the severity MNIST-C used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Corruption {
    /// `shot_noise`, severity 5: `clip(poisson(x · 3) / 3, 0, 1)`.
    ShotNoise,
    /// `impulse_noise`, severity 4: skimage salt and pepper, `amount = 0.17`, half salt (1),
    /// half pepper (0).
    ImpulseNoise,
    /// `glass_blur`, severity 1: `(sigma, max_delta, iterations) = (0.7, 1, 2)`: Gaussian,
    /// 8-bit truncation, local pixel swaps, Gaussian. The Gaussians blur vertically only, as
    /// skimage's `gaussian(..., multichannel=True)` does on a 2-D array (MNIST-C's behaviour).
    GlassBlur,
    /// `motion_blur`, severity 1: ImageMagick `MotionBlurImage(radius=10, sigma=3, angle)`,
    /// angle uniform in `[-45°, 45°)`: a one-sided 21-tap Gaussian streak on the 8-bit image.
    MotionBlur,
    /// `shear`, severity 2: skimage `AffineTransform(shear=±0.4)` about the centre, bilinear.
    Shear,
    /// `scale`, severity 3: skimage `AffineTransform(scale=1/0.7)` about the centre (the digit
    /// shrinks to 0.7×), bilinear.
    Scale,
    /// `rotate`, severity 2: skimage `AffineTransform(rotation=±0.4 rad)` about the centre,
    /// bilinear.
    Rotate,
    /// `brightness`, severity 5: HSV value `+ 0.5`, which on a gray image is `min(x + 0.5, 1)`.
    Brightness,
    /// `translate`, severity 3: by 3 pixels along each axis, each direction drawn at random.
    Translate,
    /// `stripe`: the outer 7 of 28 columns on each side inverted (`1 − x`).
    Stripe,
    /// `fog`, severity 5: `(c, wibbledecay) = (3.0, 1.4)`: `x + 3 · plasma_fractal(256)`,
    /// rescaled by `max(x) / (max(x) + 3)`.
    Fog,
    /// `spatter`, severity 4: `(0.65, 0.3, 1, 0.65, 1.5)`: blurred, thresholded Gaussian noise
    /// as a mask of mud (gray 63/255).
    Spatter,
    /// `dotted_line`: a random line from the left to the right edge, drawn in 2-column dashes.
    DottedLine,
    /// `zigzag`: a random zigzag (zig length and width 2) from column 2 to column 25.
    Zigzag,
    /// `canny_edges`: skimage `canny` with its defaults (σ = 1, thresholds 0.1 / 0.2): the
    /// binary edge map replaces the image.
    CannyEdges,
}

/// The error of `Corruption`'s `FromStr`: the name is not one of [`Corruption::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCorruption(pub String);

impl std::fmt::Display for UnknownCorruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = Corruption::ALL.iter().map(|c| c.name()).collect();
        write!(f, "unknown corruption {:?} (expected one of: {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownCorruption {}

impl Corruption {
    /// All 15, in MNIST-C's order (`CORRUPTIONS` without `identity`).
    pub const ALL: [Corruption; 15] = [
        Corruption::ShotNoise,
        Corruption::ImpulseNoise,
        Corruption::GlassBlur,
        Corruption::MotionBlur,
        Corruption::Shear,
        Corruption::Scale,
        Corruption::Rotate,
        Corruption::Brightness,
        Corruption::Translate,
        Corruption::Stripe,
        Corruption::Fog,
        Corruption::Spatter,
        Corruption::DottedLine,
        Corruption::Zigzag,
        Corruption::CannyEdges,
    ];

    /// The reference's name (`"shot_noise"`, …, `"canny_edges"`): also MNIST-C's directory names.
    pub fn name(self) -> &'static str {
        match self {
            Corruption::ShotNoise => "shot_noise",
            Corruption::ImpulseNoise => "impulse_noise",
            Corruption::GlassBlur => "glass_blur",
            Corruption::MotionBlur => "motion_blur",
            Corruption::Shear => "shear",
            Corruption::Scale => "scale",
            Corruption::Rotate => "rotate",
            Corruption::Brightness => "brightness",
            Corruption::Translate => "translate",
            Corruption::Stripe => "stripe",
            Corruption::Fog => "fog",
            Corruption::Spatter => "spatter",
            Corruption::DottedLine => "dotted_line",
            Corruption::Zigzag => "zigzag",
            Corruption::CannyEdges => "canny_edges",
        }
    }

    /// Whether the corruption draws random numbers (scale, brightness, stripe and canny edges
    /// do not: their output ignores `seed` and `index`).
    pub fn is_random(self) -> bool {
        !matches!(self, Corruption::Scale | Corruption::Brightness | Corruption::Stripe | Corruption::CannyEdges)
    }

    /// The stream key of this corruption's generator: a hash of its name, so that the draws do
    /// not change if variants are reordered.
    fn stream(self) -> u64 {
        self.name().bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3))
    }
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Corruption {
    type Err = UnknownCorruption;

    /// The reference's name, ignoring ASCII case, with `-` accepted for `_` (`motion-blur`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_ascii_lowercase().replace('-', "_");
        Corruption::ALL.into_iter().find(|c| c.name() == key).ok_or_else(|| UnknownCorruption(s.to_string()))
    }
}

/// Corrupts one `height × width` image (row-major, pixels in `[0, 1]`; values outside are
/// clamped first) with `c`, the random draws keyed by `(seed, c, index)`: the same arguments
/// always give the same image. Returns the corrupted image, same shape, in `[0, 1]`.
///
/// # Panics
///
/// If `image.len() != height * width`.
pub fn apply(c: Corruption, image: &[f32], height: usize, width: usize, seed: u64, index: u64) -> Vec<f32> {
    let mut out = vec![0.0; image.len()];
    apply_into(c, image, height, width, seed, index, &mut out);
    out
}

/// [`apply`] writing into `out` (same length as `image`).
///
/// # Panics
///
/// If `image.len()` or `out.len()` is not `height * width`.
pub fn apply_into(c: Corruption, image: &[f32], height: usize, width: usize, seed: u64, index: u64, out: &mut [f32]) {
    let (h, w) = (height, width);
    assert_eq!(image.len(), h * w, "corruptions::apply: image has {} pixels, not {h}×{w}", image.len());
    assert_eq!(out.len(), h * w, "corruptions::apply: output has {} pixels, not {h}×{w}", out.len());
    if h == 0 || w == 0 {
        return;
    }
    let x: Vec<f64> = image.iter().map(|&v| (v as f64).clamp(0.0, 1.0)).collect();
    let mut rng = Rng::for_image(seed, c.stream(), index);
    let y = match c {
        Corruption::ShotNoise => noise::shot(&x, &mut rng),
        Corruption::ImpulseNoise => noise::impulse(&x, &mut rng),
        Corruption::GlassBlur => blur::glass(&x, h, w, &mut rng),
        Corruption::MotionBlur => blur::motion(&x, h, w, &mut rng),
        Corruption::Shear => affine::shear(&x, h, w, &mut rng),
        Corruption::Scale => affine::scale(&x, h, w),
        Corruption::Rotate => affine::rotate(&x, h, w, &mut rng),
        Corruption::Brightness => intensity::brightness(&x),
        Corruption::Translate => affine::translate(&x, h, w, &mut rng),
        Corruption::Stripe => intensity::stripe(&x, h, w),
        Corruption::Fog => fog::fog(&x, h, w, &mut rng),
        Corruption::Spatter => spatter::spatter(&x, h, w, &mut rng),
        Corruption::DottedLine => lines::dotted_line(&x, h, w, &mut rng),
        Corruption::Zigzag => lines::zigzag(&x, h, w, &mut rng),
        Corruption::CannyEdges => edges::canny(&x, h, w),
    };
    for (o, v) in out.iter_mut().zip(y) {
        *o = v.clamp(0.0, 1.0) as f32;
    }
}

/// Corrupts `n = images.len() / (height · width)` images stored one after another, image `i`
/// with index `first_index + i`, in parallel on rayon's pool. The result equals calling
/// [`apply`] on each image, whatever the thread count or how a data set is cut into batches.
///
/// # Panics
///
/// If `images.len()` is not a multiple of `height * width` (with `height * width > 0`).
pub fn apply_batch(c: Corruption, images: &[f32], height: usize, width: usize, seed: u64, first_index: u64) -> Vec<f32> {
    let size = height * width;
    let whole = images.len().checked_rem(size) == Some(0);
    assert!(whole, "corruptions::apply_batch: {} values are not whole {height}×{width} images", images.len());
    let mut out = vec![0.0; images.len()];
    out.par_chunks_mut(size).zip(images.par_chunks(size)).enumerate().for_each(|(i, (o, img))| {
        apply_into(c, img, height, width, seed, first_index + i as u64, o);
    });
    out
}

/// Gap between the tiles of [`example_grid`], in pixels.
pub const GRID_GAP: usize = 2;
/// Gray level of [`example_grid`]'s gaps (mid-gray, visible against both black background and
/// white strokes).
pub const GRID_GAP_LEVEL: u8 = 128;

/// One example of each corruption, for a picture: a 4×4 grid of tiles, the clean image first
/// then [`Corruption::ALL`] in order (row-major), with [`GRID_GAP`]-pixel gaps of gray
/// [`GRID_GAP_LEVEL`]; every corruption uses `(seed, index 0)`. Returns the 8-bit grayscale
/// buffer (row-major, `round(255 · v)`) and its `(height, width)`: `4h + 6` by `4w + 6`.
///
/// # Panics
///
/// If `image.len() != h * w`.
pub fn example_grid(image: &[f32], h: usize, w: usize, seed: u64) -> (Vec<u8>, usize, usize) {
    assert_eq!(image.len(), h * w, "corruptions::example_grid: image has {} pixels, not {h}×{w}", image.len());
    let (gh, gw) = (4 * h + 3 * GRID_GAP, 4 * w + 3 * GRID_GAP);
    let mut grid = vec![GRID_GAP_LEVEL; gh * gw];
    let clean: Vec<f32> = image.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    let tiles = std::iter::once(clean).chain(Corruption::ALL.iter().map(|&c| apply(c, image, h, w, seed, 0)));
    for (t, tile) in tiles.enumerate() {
        let (top, left) = ((t / 4) * (h + GRID_GAP), (t % 4) * (w + GRID_GAP));
        for r in 0..h {
            for c in 0..w {
                grid[(top + r) * gw + left + c] = (tile[r * w + c] * 255.0).round() as u8;
            }
        }
    }
    (grid, gh, gw)
}
