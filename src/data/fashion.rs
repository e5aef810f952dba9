//! Fashion-MNIST (Zalando; 60 000 training and 10 000 test images of clothing, 28×28, ten
//! classes, MNIST's IDX format), from the Debian package [`PACKAGE`] (gzipped IDX files, MIT
//! licence). The files load with [`super::mnist::load_dir`] as a [`super::mnist::MnistSet`].

use super::mnist::{self, Split};
use super::{io_err, Error, Result};
use std::path::{Path, PathBuf};

/// The Debian package that carries Fashion-MNIST.
pub const PACKAGE: &str = "dataset-fashion-mnist";
/// Where [`obtain`] keeps the files, inside the cache directory.
pub const SUBDIR: &str = "fashion-mnist";
/// Where the Debian package installs the files.
pub const INSTALLED_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// A directory holding Fashion-MNIST's four IDX files: `cache_dir/fashion-mnist` if they are
/// there, else the installed package's [`INSTALLED_DIR`], else obtained into
/// `cache_dir/fashion-mnist` with `apt-get download dataset-fashion-mnist` and `dpkg-deb -x`.
/// A private work folder `cache_dir/.fashion-download-<pid>` is removed again either way.
pub fn obtain(cache_dir: impl AsRef<Path>) -> Result<PathBuf> {
    let cache_dir = cache_dir.as_ref();
    let target = cache_dir.join(SUBDIR);
    let complete = |d: &Path| mnist::has_split(d, Split::Train) && mnist::has_split(d, Split::Test);
    if complete(&target) {
        return Ok(target);
    }
    let installed = Path::new(INSTALLED_DIR);
    if complete(installed) {
        return Ok(installed.to_path_buf());
    }
    let work = cache_dir.join(format!(".fashion-download-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io_err(&work))?;
    let run = |cmd: &str, args: &[&str]| -> Result<()> {
        let out = std::process::Command::new(cmd).args(args).current_dir(&work).output().map_err(|e| {
            Error::NotFound(format!(
                "Fashion-MNIST is not in {} and `{cmd}` could not be run ({e}); on Debian/Ubuntu run `apt-get download {PACKAGE}`, or pass --idx-dir with the IDX files",
                target.display()
            ))
        })?;
        if !out.status.success() {
            return Err(Error::NotFound(format!("`{cmd} {}` failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(())
    };
    let result = (|| -> Result<()> {
        run("apt-get", &["download", PACKAGE])?;
        let deb = std::fs::read_dir(&work)
            .map_err(io_err(&work))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| Error::NotFound(format!("`apt-get download {PACKAGE}` produced no .deb")))?;
        // `run` works inside `work`: name the package relative to it
        let deb_name = deb.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        run("dpkg-deb", &["-x", &deb_name, "root"])?;
        let src = work.join("root").join(INSTALLED_DIR.trim_start_matches('/'));
        if !complete(&src) {
            return Err(Error::Format { path: deb.clone(), message: "the package does not hold the four IDX files".into() });
        }
        std::fs::create_dir_all(&target).map_err(io_err(&target))?;
        for e in std::fs::read_dir(&src).map_err(io_err(&src))?.filter_map(|e| e.ok()) {
            let name = e.file_name();
            // copy under a hidden name, then rename: never a partial file under the real name
            let tmp = target.join(format!(".{}.tmp", name.to_string_lossy()));
            std::fs::copy(e.path(), &tmp).map_err(io_err(&tmp))?;
            std::fs::rename(&tmp, target.join(&name)).map_err(io_err(target.join(&name)))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result?;
    Ok(target)
}
