//! Writers: `.npy` files, `.npz` archives, folders of `.npy`, and stdout, all behind the
//! one [`ArrayWriter`] trait. Writers know nothing of TensorFlow: they receive a name, an
//! [`ArrayHeader`] (NumPy descr and shape) and a [`ByteStream`] of the payload.
//!
//! Every file is written to a temporary sibling and renamed into place only by
//! [`ArrayWriter::finish`], so a failed run leaves no partial output and keeps any
//! previous file intact.

pub mod atomic;
pub mod check;
pub mod folder;
pub mod npy;
pub mod npz;

use crate::error::{Error, Result};
use crate::stream::ByteStream;
use std::io::Write;
use std::path::Path;

pub use npy::ArrayHeader;

/// Size of the chunks writers pull from a payload stream.
pub const CHUNK_BYTES: usize = 1 << 20;

/// A destination for named arrays.
pub trait ArrayWriter {
    /// Writes one array: its `.npy` header from `header`, then exactly
    /// `header.byte_len()` payload bytes pulled from `data`. A payload that ends early
    /// or runs long is an error.
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()>;
    /// Publishes everything written (renames temporary files into place).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Copies exactly `len` bytes from `data` to `out`, then checks `data` is at its end.
/// `what` names the array for error messages; `out_path` names the output for I/O errors.
pub fn copy_exact(
    data: &mut dyn ByteStream,
    out: &mut dyn Write,
    len: u64,
    what: &str,
    out_path: &Path,
) -> Result<()> {
    let mut left = len;
    crate::stream::pump(data, CHUNK_BYTES, |b| {
        let n64 = b.len() as u64;
        if n64 > left {
            return Err(Error::usage(format!(
                "internal error: payload of `{what}` is longer than its header says ({len} bytes)"
            )));
        }
        left -= n64;
        out.write_all(b).map_err(|e| Error::io(out_path, e))
    })?;
    if left != 0 {
        return Err(Error::usage(format!(
            "internal error: payload of `{what}` ended {left} bytes short of {len}"
        )));
    }
    Ok(())
}
