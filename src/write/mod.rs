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
use crate::stream::{pump, ByteStream, FileRange};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

pub use npy::ArrayHeader;

/// Size of the chunks writers pull from a payload stream.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Payloads at least this long that are a verbatim range of an input file are copied
/// inside the kernel by writers that can ([`ArrayWriter::copies_ranges`]).
pub const KERNEL_COPY_MIN: u64 = 1 << 20;

/// A destination for named arrays.
pub trait ArrayWriter {
    /// Writes one array: its `.npy` header from `header`, then exactly
    /// `header.byte_len()` payload bytes pulled from `data`. A payload that ends early
    /// or runs long is an error.
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()>;
    /// Publishes everything written (renames temporary files into place).
    fn finish(self: Box<Self>) -> Result<()>;
    /// Whether [`add`](ArrayWriter::add) copies a payload that is a verbatim input file
    /// range ([`ByteStream::file_range`]) inside the kernel, reading the stream for its
    /// checks on a thread of its own; the caller then hands it the stream directly
    /// instead of through a prefetch thread.
    fn copies_ranges(&self) -> bool {
        false
    }
}

/// The input file range to copy in the kernel for a payload of `len` bytes, if `data`
/// is one ([`ByteStream::file_range`]) of exactly that length and at least
/// [`KERNEL_COPY_MIN`] bytes.
pub fn kernel_copy_range(data: &dyn ByteStream, len: u64) -> Result<Option<FileRange>> {
    Ok(data
        .file_range()?
        .filter(|r| r.len == len && len >= KERNEL_COPY_MIN))
}

/// Copies exactly `len` bytes from `data` to `out`, then checks `data` is at its end.
/// `what` names the array for error messages; `out_path` names the output for I/O errors.
/// A stream that is a verbatim input file range ([`kernel_copy_range`]) goes through
/// [`copy_range_checked`].
pub fn copy_exact<W: Write + ?Sized>(
    data: &mut dyn ByteStream,
    out: &mut W,
    len: u64,
    what: &str,
    out_path: &Path,
) -> Result<()> {
    if let Some(range) = kernel_copy_range(data, len)? {
        return copy_range_checked(data, range, out, what, out_path, |_| {});
    }
    let mut left = len;
    pump(data, CHUNK_BYTES, |b| {
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

/// Writes `range` (the bytes of `data`, verbatim) to `out` with `std::io::copy`, which
/// on Linux copies file to file inside the kernel (`copy_file_range`, as `cp` does; a
/// `BufWriter<File>` is flushed first) with no copy through user space. Meanwhile a
/// second thread reads `data` to its end for its own checks (checksums, progress, a
/// manifest hash), passing every byte to `inspect` (e.g. for a ZIP CRC-32). A failed
/// check wins over a copy error; both sides must see exactly `range.len` bytes.
pub fn copy_range_checked<W: Write + ?Sized>(
    data: &mut dyn ByteStream,
    range: FileRange,
    out: &mut W,
    what: &str,
    out_path: &Path,
    mut inspect: impl FnMut(&[u8]) + Send,
) -> Result<()> {
    let len = range.len;
    std::thread::scope(|scope| {
        let checker = scope.spawn(move || -> Result<()> {
            let mut left = len;
            pump(data, CHUNK_BYTES, |b| {
                take(&mut left, b.len(), what, len)?;
                inspect(b);
                Ok(())
            })?;
            if left != 0 {
                return Err(short(what, left, len));
            }
            Ok(())
        });
        let FileRange {
            mut file,
            offset,
            path,
            ..
        } = range;
        let copied = file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| std::io::copy(&mut file.take(len), out));
        let checked = checker.join().unwrap_or_else(|_| {
            Err(Error::usage(format!(
                "internal error: reading `{what}` for its checks panicked"
            )))
        });
        checked?;
        let copied = copied.map_err(|e| {
            Error::io(
                out_path,
                std::io::Error::new(e.kind(), format!("copying from {}: {e}", path.display())),
            )
        })?;
        if copied != len {
            return Err(Error::corrupt(
                &path,
                format!(
                    "`{what}`: only {copied} of {len} bytes could be copied from byte \
                     {offset} (did the file change while being read?)"
                ),
            ));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::SliceStream;

    /// A stream of `data` that fails at its end (like a checksum mismatch) if `fail`.
    struct Checked<'a> {
        inner: SliceStream<'a>,
        fail: bool,
    }

    impl ByteStream for Checked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
            match self.inner.read(buf)? {
                0 if self.fail => Err(Error::corrupt("in", "checksum mismatch")),
                n => Ok(n),
            }
        }
    }

    fn range(path: &Path, offset: u64, len: u64) -> FileRange {
        FileRange {
            file: std::fs::File::open(path).unwrap(),
            path: path.to_path_buf(),
            offset,
            len,
        }
    }

    #[test]
    fn kernel_copy_copies_the_range_and_reads_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        let bytes: Vec<u8> = (0..3_000_017u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&input, &bytes).unwrap();
        let (off, len) = (1_000_003u64, 1_500_001u64);
        let want = &bytes[off as usize..(off + len) as usize];
        let out_path = dir.path().join("out");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&out_path).unwrap());
        out.write_all(b"head").unwrap();
        let mut seen = crc32fast::Hasher::new();
        let mut data = Checked {
            inner: SliceStream::new(want),
            fail: false,
        };
        copy_range_checked(
            &mut data,
            range(&input, off, len),
            &mut out,
            "t",
            &out_path,
            |b| seen.update(b),
        )
        .unwrap();
        out.write_all(b"tail").unwrap();
        drop(out);
        let got = std::fs::read(&out_path).unwrap();
        assert_eq!(&got[..4], b"head");
        assert!(&got[4..got.len() - 4] == want);
        assert_eq!(&got[got.len() - 4..], b"tail");
        assert_eq!(seen.finalize(), crc32fast::hash(want));

        // A failed check wins; a stream of the wrong length is an error; a range past
        // the end of the file is an error naming the file.
        let mut sink = Vec::new();
        let mut bad = Checked {
            inner: SliceStream::new(want),
            fail: true,
        };
        let err = copy_range_checked(
            &mut bad,
            range(&input, off, len),
            &mut sink,
            "t",
            &out_path,
            |_| {},
        );
        assert!(err.unwrap_err().to_string().contains("checksum mismatch"));
        let mut long = Checked {
            inner: SliceStream::new(&bytes),
            fail: false,
        };
        assert!(copy_range_checked(
            &mut long,
            range(&input, off, len),
            &mut sink,
            "t",
            &out_path,
            |_| {}
        )
        .is_err());
        let past = bytes.len() as u64 - 10;
        let mut ten = Checked {
            inner: SliceStream::new(&bytes[..20]),
            fail: false,
        };
        let err = copy_range_checked(
            &mut ten,
            range(&input, past, 20),
            &mut sink,
            "t",
            &out_path,
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("only 10 of 20 bytes") && err.contains("in"),
            "{err}"
        );
    }
}
