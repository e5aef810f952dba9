//! The IDX file format (MNIST, Fashion-MNIST, EMNIST), plain or gzip-compressed.
//!
//! An IDX file is a big-endian `u32` magic `0x0000TTNN` (`TT` the element type, `NN` the number
//! of dimensions), `NN` big-endian `u32` dimensions, then the elements in row-major order.
//! Images are `0x00000803` (`[count, rows, cols]` unsigned bytes), labels `0x00000801`
//! (`[count]` unsigned bytes). Only unsigned-byte elements (`TT = 0x08`) are supported, which
//! is what these data sets use. Gzip is recognised by its magic bytes, whatever the file name.
//!
//! Files are untrusted: the header is read first and the size it claims (checked arithmetic) is
//! compared with [`MAX_DATA_BYTES`] and with what the file holds before the data is read, and a
//! gzip stream is decompressed only up to that size plus one byte (a small `.gz` that unpacks
//! to gigabytes is an error after reading what the header allows, not an allocation failure).
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

/// The most data bytes (the product of the dimensions) an IDX file may claim: 2 GiB. MNIST's
/// training images are 47 MB, EMNIST's largest split 0.6 GB.
pub const MAX_DATA_BYTES: usize = 2 << 30;

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

/// The bytes of a file, gunzipped when it starts with the gzip magic; at most
/// [`MAX_DATA_BYTES`] + 1 KiB (room for the largest header), more is an error.
pub fn read_maybe_gzip(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let limit = MAX_DATA_BYTES + 1024;
    let (reader, gzip) = open(path)?;
    let mut out = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut out).map_err(read_err(path, gzip))?;
    if out.len() > limit {
        return Err(format_err(path, format!("more than {limit} bytes{}", if gzip { " after decompression" } else { "" })));
    }
    Ok(out)
}

/// The file as a byte stream (gunzipped when it starts with the gzip magic), and whether it is
/// gzipped.
fn open(path: &Path) -> Result<(Box<dyn Read>, bool)> {
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io_err(path))?);
    let head = std::io::BufRead::fill_buf(&mut file).map_err(io_err(path))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok((Box::new(flate2::read::MultiGzDecoder::new(file)), true))
    } else {
        Ok((Box::new(file), false))
    }
}

fn read_err(path: &Path, gzip: bool) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| {
        if gzip {
            format_err(path, format!("gzip data is corrupt or truncated: {e}"))
        } else {
            Error::Io { path: path.to_path_buf(), source: e }
        }
    }
}

/// Up to `n` bytes of `r` (fewer at its end), appended to `out`.
fn read_up_to(r: &mut dyn Read, n: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    r.take(n as u64).read_to_end(out).map(|_| ())
}

/// The dimensions, element count and header length of the IDX bytes `bytes` (which may hold
/// only the header): magic, element type and dimensions checked, the product with checked
/// arithmetic.
fn parse_header(bytes: &[u8], path: &Path) -> Result<(Vec<usize>, usize, usize)> {
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
    if n > MAX_DATA_BYTES {
        return Err(format_err(path, format!("dims {dims:?} claim {n} data bytes, more than the {MAX_DATA_BYTES} this reader accepts")));
    }
    Ok((dims, n, header))
}

/// Parse IDX bytes; `path` only names the source in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let (dims, n, header) = parse_header(bytes, path)?;
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
///
/// The header comes first; the data is read only once the size it claims is known to be at
/// most [`MAX_DATA_BYTES`] and, for a plain file, to match the file's length. A gzip stream is
/// decompressed up to that size plus one byte, so a stream that unpacks to more is reported
/// without being unpacked.
pub fn read(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let (mut r, gzip) = open(path)?;
    let rerr = read_err(path, gzip);
    // Magic, then the dimensions it announces.
    let mut head = Vec::with_capacity(4 + 4 * 255);
    read_up_to(&mut r, 4, &mut head).map_err(&rerr)?;
    if head.len() == 4 {
        read_up_to(&mut r, 4 * head[3] as usize, &mut head).map_err(&rerr)?;
    }
    let (dims, n, header) = parse_header(&head, path)?;
    if !gzip {
        // The file's length says whether the data is all there before any of it is read.
        let len = std::fs::metadata(path).map_err(io_err(path))?.len();
        let have = len.saturating_sub(header as u64);
        if have < n as u64 {
            return Err(format_err(path, format!("truncated: dims {dims:?} need {n} data bytes, the file has {have}")));
        }
        if have > n as u64 {
            return Err(format_err(path, format!("{} unexpected bytes after the {n} data bytes of dims {dims:?}", have - n as u64)));
        }
    }
    // A plain file was just seen to hold exactly `n` more bytes; a gzip stream may hold fewer.
    let mut data = if gzip { Vec::new() } else { Vec::with_capacity(n) };
    read_up_to(&mut r, n + 1, &mut data).map_err(&rerr)?;
    let what = if gzip { "the decompressed data has" } else { "the file has" };
    if data.len() < n {
        return Err(format_err(path, format!("truncated: dims {dims:?} need {n} data bytes, {what} {}", data.len())));
    }
    if data.len() > n {
        return Err(format_err(path, format!("unexpected bytes after the {n} data bytes of dims {dims:?} ({what} more)")));
    }
    Ok(IdxArray { dims, data })
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
