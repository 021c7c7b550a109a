//! [`ByteStream`]: the one pull interface through which tensor bytes flow from readers,
//! through conversions, into writers, in bounded chunks.

use crate::error::Result;

/// A finite stream of bytes, pulled in chunks.
///
/// Contract: yields exactly the announced number of bytes in total, then `Ok(0)`.
/// Integrity checks (checksums, coverage) complete before the final `Ok(0)`, so a
/// consumer that commits output only after `Ok(0)` never publishes damaged data.
pub trait ByteStream: Send {
    /// Reads up to `buf.len()` bytes into `buf`; `Ok(0)` only at the end (or for an
    /// empty `buf`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize>;
}

impl<T: ByteStream + ?Sized> ByteStream for Box<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        (**self).read(buf)
    }
}

/// A [`ByteStream`] over bytes already in memory.
pub struct SliceStream<'a> {
    data: &'a [u8],
}

impl<'a> SliceStream<'a> {
    /// Streams `data`.
    pub fn new(data: &'a [u8]) -> Self {
        SliceStream { data }
    }
}

impl ByteStream for SliceStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads `stream` to its end into `out` (for tests and small metadata only).
pub fn read_to_end(stream: &mut dyn ByteStream, out: &mut Vec<u8>) -> Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        out.extend_from_slice(&buf[..n]);
    }
}
