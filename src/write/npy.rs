//! The `.npy` header exactly as numpy 2.x writes it (`numpy/lib/_format_impl.py`):
//! sorted keys, Python reprs, growth-axis padding, 64-byte alignment, version 1.0 unless
//! the header needs more. Also the single-array writer for a file or stdout.

use super::atomic::AtomicFile;
use super::{copy_exact, ArrayWriter};
use crate::error::{Error, Result};
use crate::stream::ByteStream;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// `ARRAY_ALIGN` in numpy: the data starts at a multiple of this.
const ARRAY_ALIGN: usize = 64;
/// `GROWTH_AXIS_MAX_DIGITS` in numpy: room left to grow the first dimension in place.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// What a `.npy` header says about an array: its dtype descr and C-order shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayHeader {
    /// The NumPy dtype descr, e.g. `<f4`, `|b1`, `|S12`.
    pub descr: String,
    /// The shape, outermost first; empty for a 0-d array.
    pub shape: Vec<u64>,
    /// Bytes per element.
    pub item_bytes: u64,
}

impl ArrayHeader {
    /// Payload size in bytes, or `None` if it overflows `u64`.
    pub fn byte_len(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(self.item_bytes, |acc, &d| acc.checked_mul(d))
    }

    /// The complete header bytes (magic, version, length, dict, padding, newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let shape = match self.shape.as_slice() {
            [] => "()".to_string(),
            [d] => format!("({d},)"),
            dims => {
                let parts: Vec<String> = dims.iter().map(u64::to_string).collect();
                format!("({})", parts.join(", "))
            }
        };
        let mut dict = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
            self.descr, shape
        );
        if let Some(first) = self.shape.first() {
            let digits = first.to_string().len();
            dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
        }
        let hlen = dict.len() + 1;
        let (major, len_field) = if wrap_len(hlen, 2) <= usize::from(u16::MAX) {
            (1u8, 2usize)
        } else {
            (2u8, 4usize)
        };
        let total = wrap_len(hlen, len_field);
        let padlen = total - hlen;
        let mut out = Vec::with_capacity(8 + len_field + total);
        out.extend_from_slice(b"\x93NUMPY");
        out.push(major);
        out.push(0);
        if len_field == 2 {
            out.extend_from_slice(&(total as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(total as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend(std::iter::repeat_n(b' ', padlen));
        out.push(b'\n');
        out
    }
}

/// Reads a `.npy` header from `r`, leaving `r` at the first payload byte. Returns the
/// descr and shape, or a reason why this is not an `.npy` tf2npy can compare.
pub fn read_header(r: &mut dyn Read) -> std::result::Result<(String, Vec<u64>), String> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre).map_err(|e| e.to_string())?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err("not an .npy file".into());
    }
    let hlen = if pre[6] == 1 {
        let mut l = [0u8; 2];
        r.read_exact(&mut l).map_err(|e| e.to_string())?;
        usize::from(u16::from_le_bytes(l))
    } else {
        let mut l = [0u8; 4];
        r.read_exact(&mut l).map_err(|e| e.to_string())?;
        let n = u32::from_le_bytes(l);
        if n > 1 << 20 {
            return Err("header too large".into());
        }
        n as usize
    };
    let mut text = vec![0u8; hlen];
    r.read_exact(&mut text).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&text);
    let descr = text
        .split("'descr': '")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .ok_or("no descr in header")?
        .to_string();
    if !text.contains("'fortran_order': False") {
        return Err("Fortran-ordered array".into());
    }
    let dims = text
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape in header")?;
    let mut shape = Vec::new();
    for d in dims.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        shape.push(d.parse().map_err(|_| format!("bad dimension `{d}`"))?);
    }
    Ok((descr, shape))
}

/// HEADER_LEN for a dict of `hlen` bytes (newline included) after an 8-byte magic and a
/// `len_field`-byte length: numpy always pads by 1..=64 bytes.
fn wrap_len(hlen: usize, len_field: usize) -> usize {
    let padlen = ARRAY_ALIGN - ((8 + len_field + hlen) % ARRAY_ALIGN);
    hlen + padlen
}

/// Writes one `.npy` array to a file (atomically) or to stdout.
pub struct NpyWriter {
    target: Option<PathBuf>,
    file: Option<AtomicFile>,
    written: bool,
    force: bool,
}

impl NpyWriter {
    /// A writer for the file at `path`; nothing is created until [`ArrayWriter::add`].
    /// An identical existing file is left untouched unless `force`.
    pub fn to_file(path: &Path, force: bool) -> Self {
        NpyWriter {
            target: Some(path.to_path_buf()),
            file: None,
            written: false,
            force,
        }
    }

    /// A writer to standard output.
    pub fn to_stdout() -> Self {
        NpyWriter {
            target: None,
            file: None,
            written: false,
            force: true,
        }
    }
}

impl ArrayWriter for NpyWriter {
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()> {
        if self.written {
            return Err(Error::usage(format!(
                "a .npy file holds one array; `{name}` would be the second"
            )));
        }
        self.written = true;
        let len = header
            .byte_len()
            .ok_or_else(|| Error::usage(format!("array `{name}` is too large")))?;
        match &self.target {
            Some(path) => {
                let file = AtomicFile::create(path, self.force)?;
                let mut w = BufWriter::with_capacity(super::buffer_size(len), file.file()?);
                w.write_all(&header.to_bytes())
                    .map_err(|e| Error::io(path, e))?;
                copy_exact(data, &mut w, len, name, path)?;
                w.flush().map_err(|e| Error::io(path, e))?;
                drop(w);
                self.file = Some(file);
            }
            None => {
                let path = Path::new("<stdout>");
                let stdout = std::io::stdout();
                let mut w = BufWriter::with_capacity(super::CHUNK_BYTES, stdout.lock());
                w.write_all(&header.to_bytes())
                    .map_err(|e| Error::io(path, e))?;
                copy_exact(data, &mut w, len, name, path)?;
                w.flush().map_err(|e| Error::io(path, e))?;
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        if let Some(file) = self.file {
            file.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(descr: &str, shape: &[u64], item: u64) -> ArrayHeader {
        ArrayHeader {
            descr: descr.into(),
            shape: shape.to_vec(),
            item_bytes: item,
        }
    }

    #[test]
    fn writes_numpy_header_text() {
        let h = header("<f4", &[3], 4).to_bytes();
        assert_eq!(h.len(), 128);
        assert_eq!(&h[..10], b"\x93NUMPY\x01\x00v\x00");
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"));
        assert!(text.ends_with(" \n"));
        let scalar = header("<f8", &[], 8).to_bytes();
        assert!(std::str::from_utf8(&scalar[10..])
            .unwrap()
            .contains("'shape': (), }"));
        let two = header("|b1", &[2, 3], 1).to_bytes();
        assert!(std::str::from_utf8(&two[10..])
            .unwrap()
            .contains("'shape': (2, 3), }"));
    }

    #[test]
    fn header_is_64_aligned_and_grows_to_v2() {
        for rank in 0..40 {
            let shape = vec![7u64; rank];
            let h = header("<i8", &shape, 8).to_bytes();
            assert_eq!(h.len() % 64, 0);
        }
        let huge = vec![1u64; 30_000];
        let h = header("<i8", &huge, 8).to_bytes();
        assert_eq!(h[6], 2);
        assert_eq!(h.len() % 64, 0);
    }
}
