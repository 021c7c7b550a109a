//! Writers: `.npy` files, `.npz` archives, folders of `.npy`, `.safetensors` files and
//! stdout, all behind the one [`ArrayWriter`] trait. Writers know nothing of TensorFlow:
//! they receive a name, an [`ArrayHeader`] (NumPy descr and shape) and a [`ByteStream`] of
//! the payload.
//!
//! Every file is written to a temporary sibling and renamed into place only by
//! [`ArrayWriter::finish`], so a failed run leaves no partial output and keeps any
//! previous file intact.

pub mod atomic;
pub mod check;
pub mod folder;
pub mod npy;
pub mod npz;
pub mod safetensors;

use crate::error::{Error, Result};
use crate::stream::{pump, ByteStream};
use std::io::Write;
use std::path::Path;

pub use npy::ArrayHeader;

/// Size of the chunks writers pull from a payload stream.
pub const CHUNK_BYTES: usize = 1 << 20;

/// The write buffer for a file holding a payload of `len` bytes after its header:
/// [`CHUNK_BYTES`], or less for a small array (which is then written by one `write`).
pub fn buffer_size(len: u64) -> usize {
    usize::try_from(len.saturating_add(256)).map_or(CHUNK_BYTES, |l| l.min(CHUNK_BYTES))
}

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
/// The bytes written are the bytes the stream checked: a stream over an input file
/// lends its mapped window or buffer, which is checksummed and then written as is.
/// (Until this session a verbatim tensor of 1 MiB or more was copied inside the kernel
/// with `copy_file_range` while a second thread read the file again for the
/// checksums, so a byte changed in between was written unverified; see
/// `BENCHMARKS.md` for the A/B that replaced it.)
pub fn copy_exact<W: Write + ?Sized>(
    data: &mut dyn ByteStream,
    out: &mut W,
    len: u64,
    what: &str,
    out_path: &Path,
) -> Result<()> {
    let mut left = len;
    let chunk = usize::try_from(len).map_or(CHUNK_BYTES, |l| l.min(CHUNK_BYTES));
    pump(data, chunk, |b| {
        take(&mut left, b.len(), what, len)?;
        out.write_all(b).map_err(|e| Error::io(out_path, e))
    })?;
    if left != 0 {
        return Err(short(what, left, len));
    }
    Ok(())
}

/// Counts `n` more payload bytes against the `left` of `len` expected.
fn take(left: &mut u64, n: usize, what: &str, len: u64) -> Result<()> {
    let n = n as u64;
    if n > *left {
        return Err(Error::usage(format!(
            "internal error: payload of `{what}` is longer than its header says ({len} bytes)"
        )));
    }
    *left -= n;
    Ok(())
}

fn short(what: &str, left: u64, len: u64) -> Error {
    Error::usage(format!(
        "internal error: payload of `{what}` ended {left} bytes short of {len}"
    ))
}
