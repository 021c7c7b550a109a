//! Streaming one tensor's (or slice's) bytes out of a data shard, checksummed.

use super::*;
use crate::formats::io::{unmask_crc, RangeReader};

/// The checksum error of a tensor's data. It gives the stored checksum only: the one
/// computed from the data would give away short data (a CRC32C of 4 bytes is
/// invertible), e.g. of a file a data shard is a symlink to.
pub(super) fn crc_mismatch(
    file: &InputFile,
    tensor: &str,
    label: &str,
    what: &str,
    range: (u64, u64),
    stored: u32,
) -> Error {
    Error::Corrupt {
        file: file.path().to_path_buf(),
        tensor: Some(tensor.to_string()),
        detail: format!(
            "{label}{what}checksum mismatch in bytes [{}, {}) (expected {stored:#010x}) \
             {NO_VERIFY_HINT}",
            range.0, range.1
        ),
    }
}

/// The bytes of one tensor (or slice) in a data shard, streamed, with its CRC32C
/// checked before the final `Ok(0)` when verifying.
pub struct SpanStream {
    reader: RangeReader,
    tensor: String,
    label: String,
    start: u64,
    end: u64,
    crc: u32,
    /// The unmasked stored CRC, when verifying.
    expect: Option<u32>,
    done: bool,
}

impl SpanStream {
    pub(super) fn new(
        file: Arc<InputFile>,
        span: &Span,
        tensor: &str,
        label: &str,
        verify: bool,
        cap: usize,
    ) -> Result<Self> {
        let reader = RangeReader::new(file, span.offset, span.size, cap)?;
        Ok(SpanStream {
            reader,
            tensor: tensor.to_string(),
            label: label.to_string(),
            start: span.offset,
            end: span.offset + span.size,
            crc: 0,
            expect: verify.then(|| unmask_crc(span.masked_crc)),
            done: false,
        })
    }
}

impl SpanStream {
    /// The checksum check at the end of the span.
    fn check_end(&mut self) -> Result<()> {
        if let Some(expect) = self.expect {
            if expect != self.crc {
                return Err(crc_mismatch(
                    self.reader.file(),
                    &self.tensor,
                    &self.label,
                    "",
                    (self.start, self.end),
                    expect,
                ));
            }
        }
        self.done = true;
        Ok(())
    }
}

impl ByteStream for SpanStream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.reader.read(buf)?;
        if n > 0 {
            if self.expect.is_some() {
                self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
            }
            return Ok(n);
        }
        self.check_end()?;
        Ok(0)
    }

    fn lends(&self) -> bool {
        true
    }

    /// Lends the reader's buffer: the CRC32C is computed over exactly the bytes the
    /// caller then writes.
    fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        if self.done || max == 0 {
            return Ok(&[]);
        }
        if self.reader.remaining() == 0 {
            self.check_end()?;
            return Ok(&[]);
        }
        let b = self.reader.read_borrowed(max)?;
        if self.expect.is_some() {
            self.crc = crc32c::crc32c_append(self.crc, b);
        }
        Ok(b)
    }
}

/// The read buffer of each slice of a partitioned tensor with `n` slices: 64 KiB while
/// that keeps every slice's buffer within [`SLICE_BUDGET`] together, a share of the
/// budget (at least 1 KiB) beyond. Reads of a whole run bypass the buffer, so a small
/// one costs only when many slices are interleaved on every line.
pub(super) fn slice_buffer(n: usize) -> usize {
    (SLICE_BUDGET / n.max(1)).clamp(1 << 10, SLICE_BUFFER)
}

/// One slice's bytes: its [`SpanStream`] is made on first read and dropped at its end,
/// so only slices being read hold a buffer and a label.
pub(super) struct LazySpan<'a> {
    pub(super) file: Arc<InputFile>,
    pub(super) span: &'a Span,
    pub(super) tensor: &'a str,
    pub(super) text: &'a str,
    pub(super) verify: bool,
    pub(super) cap: usize,
    pub(super) open: Option<SpanStream>,
    pub(super) done: bool,
}

impl ByteStream for LazySpan<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let s = match &mut self.open {
            Some(s) => s,
            None => {
                let label = format!("slice `{}`: ", self.text);
                let s = SpanStream::new(
                    self.file.clone(),
                    self.span,
                    self.tensor,
                    &label,
                    self.verify,
                    self.cap,
                )?;
                self.open.insert(s)
            }
        };
        let n = s.read(buf)?;
        if n == 0 {
            self.open = None;
            self.done = true;
        }
        Ok(n)
    }
}
