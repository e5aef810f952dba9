//! The IDX file format (MNIST, Fashion-MNIST, EMNIST), plain or gzip-compressed.
//!
//! An IDX file is a big-endian `u32` magic `0x0000TTNN` (`TT` the element type, `NN` the number
//! of dimensions), `NN` big-endian `u32` dimensions, then the elements in row-major order.
//! Images are `0x00000803` (`[count, rows, cols]` unsigned bytes), labels `0x00000801`
//! (`[count]` unsigned bytes). Only unsigned-byte elements (`TT = 0x08`) are supported, which
//! is what these data sets use. Gzip is recognised by its magic bytes, whatever the file name.
//!
//! ```
//! use predify::data::idx::{self, IdxArray};
//! let dir = std::env::temp_dir().join(format!("idx-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let labels = IdxArray::new(vec![4], vec![3, 1, 4, 1]).unwrap();
//! idx::write(dir.join("labels.gz"), &labels, true).unwrap();
//! assert_eq!(idx::read_labels(dir.join("labels.gz")).unwrap(), labels);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use super::{io_err, Error, Result};
use candle_core::{Device, Tensor};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of unsigned-byte images `[count, rows, cols]`.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels `[count]`.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Element type code of unsigned bytes.
pub const TYPE_U8: u8 = 0x08;

/// The contents of an IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: Vec<u8>,
}

impl IdxArray {
    /// An array of the given shape; `data.len()` must equal the product of `dims`.
    pub fn new(dims: Vec<usize>, data: Vec<u8>) -> Result<Self> {
        let n = numel(&dims);
        if n != Some(data.len()) || dims.is_empty() || dims.len() > 255 {
            return Err(Error::Format {
                path: PathBuf::from("<memory>"),
                message: format!("{} bytes do not fill dims {dims:?} (1 to 255 dims)", data.len()),
            });
        }
        Ok(Self { dims, data })
    }

    /// The dimensions, e.g. `[10000, 28, 28]`.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The elements, consuming the array.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The magic number this array is written with.
    pub fn magic(&self) -> u32 {
        ((TYPE_U8 as u32) << 8) | self.dims.len() as u32
    }

    /// A `u8` tensor of shape `dims` on `device`.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.data, self.dims.as_slice(), device)?)
    }
}

fn numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn format_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), message: message.into() }
}

/// The bytes of a file, gunzipped when it starts with the gzip magic.
pub fn read_maybe_gzip(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(io_err(path))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format_err(path, format!("gzip data is corrupt or truncated: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse IDX bytes; `path` only names the source in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(format_err(path, format!("truncated: {} bytes, an IDX header needs at least 4", bytes.len())));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format_err(
            path,
            format!("not an IDX file: magic 0x{magic:08X} (an IDX magic is 0x0000TTNN, e.g. 0x{IMAGES_MAGIC:08X} for images, 0x{LABELS_MAGIC:08X} for labels)"),
        ));
    }
    let (ty, ndims) = (bytes[2], bytes[3] as usize);
    if ty != TYPE_U8 {
        let name = match ty {
            0x09 => "i8",
            0x0B => "i16",
            0x0C => "i32",
            0x0D => "f32",
            0x0E => "f64",
            _ => "unknown",
        };
        return Err(format_err(path, format!("magic 0x{magic:08X}: element type 0x{ty:02X} ({name}) is not supported, only unsigned bytes (0x08)")));
    }
    if ndims == 0 {
        return Err(format_err(path, format!("magic 0x{magic:08X}: zero dimensions")));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format_err(path, format!("truncated: {} bytes, the header of {ndims} dimensions needs {header}", bytes.len())));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let Some(n) = numel(&dims) else {
        return Err(format_err(path, format!("dims {dims:?} overflow")));
    };
    let have = bytes.len() - header;
    if have < n {
        return Err(format_err(path, format!("truncated: dims {dims:?} need {n} data bytes, the file has {have}")));
    }
    if have > n {
        return Err(format_err(path, format!("{} unexpected bytes after the {n} data bytes of dims {dims:?}", have - n)));
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Read an IDX file (plain or gzip) of any rank.
pub fn read(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    parse(&read_maybe_gzip(path)?, path)
}

fn read_expecting(path: &Path, magic: u32, what: &str) -> Result<IdxArray> {
    let a = read(path)?;
    if a.magic() != magic {
        return Err(format_err(
            path,
            format!("expected {what} (magic 0x{magic:08X}, {} dims), found magic 0x{:08X} with dims {:?}", magic & 0xff, a.magic(), a.dims()),
        ));
    }
    Ok(a)
}

/// Read an IDX file of images: magic `0x00000803`, dims `[count, rows, cols]`.
pub fn read_images(path: impl AsRef<Path>) -> Result<IdxArray> {
    read_expecting(path.as_ref(), IMAGES_MAGIC, "images")
}

/// Read an IDX file of labels: magic `0x00000801`, dims `[count]`.
pub fn read_labels(path: impl AsRef<Path>) -> Result<IdxArray> {
    read_expecting(path.as_ref(), LABELS_MAGIC, "labels")
}

/// The bytes of an IDX file holding `array`.
pub fn to_bytes(array: &IdxArray) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * array.dims.len() + array.data.len());
    out.extend_from_slice(&array.magic().to_be_bytes());
    for &d in &array.dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&array.data);
    out
}

/// Write `array` as an IDX file, gzip-compressed if `gzip`.
pub fn write(path: impl AsRef<Path>, array: &IdxArray, gzip: bool) -> Result<()> {
    let path = path.as_ref();
    if array.dims.iter().any(|&d| d > u32::MAX as usize) {
        return Err(format_err(path, format!("dims {:?} do not fit the format's u32", array.dims)));
    }
    let bytes = to_bytes(array);
    let bytes = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).map_err(io_err(path))?;
        enc.finish().map_err(io_err(path))?
    } else {
        bytes
    };
    std::fs::write(path, bytes).map_err(io_err(path))
}
