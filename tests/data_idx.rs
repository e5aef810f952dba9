//! The IDX loader: plain and gzip files, and clear errors (naming the file) for truncated,
//! wrong-magic and wrongly shaped files.

mod data_common;

use anyhow::{ensure, Result};
use data_common::TempDir;
use predify::data::idx::{self, IdxArray};
use predify::data::mnist::{self, Split};

fn images(n: usize) -> IdxArray {
    let data = (0..n * 28 * 28).map(|i| (i * 7 % 256) as u8).collect();
    IdxArray::new(vec![n, 28, 28], data).unwrap()
}

fn labels(n: usize) -> IdxArray {
    IdxArray::new(vec![n], (0..n).map(|i| (i % 10) as u8).collect()).unwrap()
}

fn err_of<T: std::fmt::Debug>(r: predify::data::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn plain_and_gzip_round_trip() -> Result<()> {
    let d = TempDir::new("idx-roundtrip")?;
    let img = images(3);
    idx::write(d.path("imgs-idx3-ubyte"), &img, false)?;
    idx::write(d.path("imgs-idx3-ubyte.gz"), &img, true)?;
    // The exact bytes of the format: magic, dims, data.
    let raw = std::fs::read(d.path("imgs-idx3-ubyte"))?;
    ensure!(raw[..16] == [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28], "header {:?}", &raw[..16]);
    ensure!(raw.len() == 16 + 3 * 784);
    let gz = std::fs::read(d.path("imgs-idx3-ubyte.gz"))?;
    ensure!(gz[..2] == [0x1f, 0x8b], "not gzip");
    ensure!(idx::read_images(d.path("imgs-idx3-ubyte"))? == img);
    ensure!(idx::read_images(d.path("imgs-idx3-ubyte.gz"))? == img);
    // Gzip is recognised by content, not by name.
    std::fs::copy(d.path("imgs-idx3-ubyte.gz"), d.path("renamed"))?;
    ensure!(idx::read(d.path("renamed"))? == img);

    let lbl = labels(3);
    idx::write(d.path("l.gz"), &lbl, true)?;
    let back = idx::read_labels(d.path("l.gz"))?;
    ensure!(back.dims() == [3] && back.data() == [0, 1, 2]);
    let t = back.to_tensor(&candle_core::Device::Cpu)?;
    ensure!(t.dims() == [3] && t.dtype() == candle_core::DType::U8);
    Ok(())
}

#[test]
fn truncated_files_are_reported_with_their_name() -> Result<()> {
    let d = TempDir::new("idx-trunc")?;
    let bytes = idx::to_bytes(&images(2));
    // Data cut short.
    std::fs::write(d.path("short-idx3-ubyte"), &bytes[..bytes.len() - 10])?;
    let e = err_of(idx::read_images(d.path("short-idx3-ubyte")));
    ensure!(e.contains("short-idx3-ubyte") && e.contains("truncated") && e.contains("1568"), "{e}");
    // Header cut short.
    std::fs::write(d.path("hdr"), &bytes[..10])?;
    let e = err_of(idx::read(d.path("hdr")));
    ensure!(e.contains("hdr") && e.contains("truncated") && e.contains("header"), "{e}");
    std::fs::write(d.path("tiny"), [0u8, 0])?;
    let e = err_of(idx::read(d.path("tiny")));
    ensure!(e.contains("tiny") && e.contains("truncated"), "{e}");
    // A truncated gzip stream.
    idx::write(d.path("cut.gz"), &images(2), true)?;
    let gz = std::fs::read(d.path("cut.gz"))?;
    std::fs::write(d.path("cut.gz"), &gz[..gz.len() / 2])?;
    let e = err_of(idx::read(d.path("cut.gz")));
    ensure!(e.contains("cut.gz") && e.contains("gzip") && e.contains("truncated"), "{e}");
    // Trailing garbage is an error too.
    let mut long = bytes.clone();
    long.extend_from_slice(&[1, 2, 3]);
    std::fs::write(d.path("long"), &long)?;
    let e = err_of(idx::read(d.path("long")));
    ensure!(e.contains("long") && e.contains("3 unexpected bytes"), "{e}");
    // A missing file names itself.
    let e = err_of(idx::read(d.path("nope")));
    ensure!(e.contains("nope"), "{e}");
    Ok(())
}

#[test]
fn wrong_magic_is_reported() -> Result<()> {
    let d = TempDir::new("idx-magic")?;
    let mut bytes = idx::to_bytes(&labels(4));
    bytes[0] = 0x12;
    std::fs::write(d.path("bad-magic"), &bytes)?;
    let e = err_of(idx::read(d.path("bad-magic")));
    ensure!(e.contains("bad-magic") && e.contains("not an IDX file") && e.contains("0x12000801"), "{e}");
    // A PNG is not an IDX file either.
    std::fs::write(d.path("picture.png"), b"\x89PNG\r\n\x1a\n0000000000")?;
    let e = err_of(idx::read_images(d.path("picture.png")));
    ensure!(e.contains("picture.png") && e.contains("not an IDX file"), "{e}");
    // An element type other than unsigned bytes (0x0D: f32).
    let mut f32_file = vec![0u8, 0, 0x0D, 1, 0, 0, 0, 1];
    f32_file.extend_from_slice(&1.0f32.to_be_bytes());
    std::fs::write(d.path("floats"), &f32_file)?;
    let e = err_of(idx::read(d.path("floats")));
    ensure!(e.contains("floats") && e.contains("0x0D") && e.contains("f32"), "{e}");
    Ok(())
}

#[test]
fn dims_mismatches_are_reported() -> Result<()> {
    let d = TempDir::new("idx-dims")?;
    // Labels where images are expected, and the other way round.
    idx::write(d.path("labels"), &labels(5), false)?;
    let e = err_of(idx::read_images(d.path("labels")));
    ensure!(e.contains("labels") && e.contains("expected images") && e.contains("0x00000801"), "{e}");
    idx::write(d.path("images"), &images(5), false)?;
    let e = err_of(idx::read_labels(d.path("images")));
    ensure!(e.contains("expected labels") && e.contains("[5, 28, 28]"), "{e}");
    // IdxArray::new checks the data length against the dims.
    ensure!(IdxArray::new(vec![2, 3], vec![0; 5]).is_err());

    // MNIST: images that are not 28×28, and image and label counts that disagree.
    let mnist_dir = TempDir::new("idx-mnist")?;
    let [img_name, lbl_name] = Split::Test.file_names();
    idx::write(mnist_dir.path(&img_name), &IdxArray::new(vec![2, 27, 27], vec![0; 2 * 27 * 27])?, false)?;
    idx::write(mnist_dir.path(&lbl_name), &labels(2), false)?;
    let e = err_of(mnist::load_dir(&mnist_dir.0, Split::Test));
    ensure!(e.contains(&img_name) && e.contains("[n, 28, 28]"), "{e}");
    idx::write(mnist_dir.path(&img_name), &images(3), false)?;
    let e = err_of(mnist::load_dir(&mnist_dir.0, Split::Test));
    ensure!(e.contains("3 images") && e.contains("[2]"), "{e}");
    // A consistent (gzipped) split loads, with pixels scaled to [0, 1].
    std::fs::remove_file(mnist_dir.path(&img_name))?;
    idx::write(mnist_dir.path(&format!("{img_name}.gz")), &images(2), true)?;
    let set = mnist::load_dir(&mnist_dir.0, Split::Test)?;
    ensure!(set.len() == 2 && set.labels() == [0, 1]);
    let (x, y) = set.batch(0, 10, &candle_core::Device::Cpu)?;
    ensure!(x.dims() == [2, 1, 28, 28] && y.dims() == [2]);
    let max = x.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    ensure!((max - 1.0).abs() < 1e-6 || max < 1.0, "max pixel {max}");
    // A missing split names the directory and the file.
    let e = err_of(mnist::load_dir(&mnist_dir.0, Split::Train));
    ensure!(e.contains("train-images-idx3-ubyte"), "{e}");
    Ok(())
}
