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

    /// Whether [`ByteStream::read_borrowed`] works: the stream holds its next bytes in
    /// memory and can lend them, saving the caller a copy.
    fn lends(&self) -> bool {
        false
    }

    /// For a stream that [`lends`](ByteStream::lends): the next up to `max` bytes
    /// (`max > 0`), borrowed; empty only at the end. Same contract as `read` otherwise.
    fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        let _ = max;
        Err(crate::error::Error::usage(
            "internal error: read_borrowed on a stream that does not lend",
        ))
    }
}

impl<T: ByteStream + ?Sized> ByteStream for Box<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        (**self).read(buf)
    }

    fn lends(&self) -> bool {
        (**self).lends()
    }

    fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        (**self).read_borrowed(max)
    }
}

/// Passes every byte of `data` to `sink`: borrowed from the stream when it lends (no
/// copy; chunks of at most `chunk` bytes), or read through one buffer of `chunk` bytes
/// otherwise (pass the payload size when it is smaller, so small tensors get small
/// buffers). Returns the number of bytes passed.
pub fn pump(
    data: &mut dyn ByteStream,
    chunk: usize,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let mut total = 0u64;
    if data.lends() {
        loop {
            let b = data.read_borrowed(chunk)?;
            if b.is_empty() {
                return Ok(total);
            }
            total += b.len() as u64;
            sink(b)?;
        }
    }
    let mut buf = vec![0u8; chunk.max(1)];
    loop {
        let n = data.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        sink(&buf[..n])?;
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

/// Bytes per buffer handed from the reading thread to the writing thread.
pub const PREFETCH_CHUNK: usize = 4 << 20;
/// Payloads smaller than this are read on the writing thread: a thread and 4 MiB
/// buffers per tensor cost more than the overlap gains (20,000 small tensors).
pub const PREFETCH_MIN: u64 = PREFETCH_CHUNK as u64;
/// Buffers in flight between the two threads (memory: `PREFETCH_DEPTH + 2` chunks).
pub const PREFETCH_DEPTH: usize = 2;

/// Runs `consume` on a stream that yields `stream`'s bytes, while a second thread pulls
/// `stream` ahead (reading, checksumming and converting overlap with writing). Memory is
/// bounded by a few [`PREFETCH_CHUNK`] buffers, whatever the tensor size. Errors from
/// either side are returned; the producer stops as soon as the consumer does.
pub fn with_prefetch<'a, R>(
    stream: Box<dyn ByteStream + 'a>,
    consume: impl FnOnce(&mut dyn ByteStream) -> Result<R>,
) -> Result<R> {
    use std::sync::mpsc;
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<Vec<u8>>>(PREFETCH_DEPTH);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut stream = stream;
            loop {
                // A fresh buffer comes zeroed from the allocator (no 4 MiB memset per
                // tensor); a recycled one is full-length already.
                let mut buf = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| vec![0u8; PREFETCH_CHUNK]);
                buf.resize(PREFETCH_CHUNK, 0);
                let mut filled = 0;
                let step = loop {
                    match stream.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(true),
                        Ok(n) => {
                            filled += n;
                            if filled == buf.len() {
                                break Ok(false);
                            }
                        }
                        Err(e) => break Err(e),
                    }
                };
                let done = match step {
                    Ok(done) => done,
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        return;
                    }
                };
                buf.truncate(filled);
                if filled > 0 && full_tx.send(Ok(buf)).is_err() {
                    return;
                }
                if done {
                    return;
                }
            }
        });
        let mut rx = ChannelStream {
            rx: full_rx,
            recycle: empty_tx,
            current: Vec::new(),
            pos: 0,
        };
        consume(&mut rx)
        // Dropping `rx` here (end of scope body) closes the channel so the producer
        // stops if the consumer returned early.
    })
}

/// The consuming end of [`with_prefetch`].
struct ChannelStream {
    rx: std::sync::mpsc::Receiver<Result<Vec<u8>>>,
    recycle: std::sync::mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl ChannelStream {
    /// Makes `current` hold unread bytes; `false` at the end.
    fn ready(&mut self) -> Result<bool> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(next) => {
                    let old = std::mem::replace(&mut self.current, next?);
                    let _ = self.recycle.send(old);
                    self.pos = 0;
                }
                Err(_) => return Ok(false),
            }
        }
        Ok(true)
    }
}

impl ByteStream for ChannelStream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.read_borrowed(buf.len())?.len();
        buf[..n].copy_from_slice(&self.current[self.pos - n..self.pos]);
        Ok(n)
    }

    fn lends(&self) -> bool {
        true
    }

    fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        if max == 0 || !self.ready()? {
            return Ok(&[]);
        }
        let n = max.min(self.current.len() - self.pos);
        self.pos += n;
        Ok(&self.current[self.pos - n..self.pos])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    struct Counting {
        left: u64,
        pos: u64,
        fail_at_end: bool,
    }

    fn counting(left: u64, fail_at_end: bool) -> Box<Counting> {
        Box::new(Counting {
            left,
            pos: 0,
            fail_at_end,
        })
    }

    impl ByteStream for Counting {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
            if self.left == 0 {
                return if self.fail_at_end {
                    Err(Error::corrupt("x", "checksum mismatch"))
                } else {
                    Ok(0)
                };
            }
            let n = (buf.len() as u64).min(self.left).min(100_003) as usize;
            for b in buf[..n].iter_mut() {
                *b = (self.pos % 251) as u8;
                self.pos += 1;
            }
            self.left -= n as u64;
            Ok(n)
        }
    }

    #[test]
    fn prefetch_passes_every_byte_in_order() {
        let total = 3 * PREFETCH_CHUNK as u64 + 12345;
        let mut direct = Vec::new();
        read_to_end(&mut *counting(total, false), &mut direct).unwrap();
        let mut via = Vec::new();
        with_prefetch(counting(total, false), |s| read_to_end(s, &mut via)).unwrap();
        assert_eq!(direct.len() as u64, total);
        assert!(direct == via);
    }

    #[test]
    fn pump_lends_or_copies_every_byte_in_order() {
        let total = 2 * PREFETCH_CHUNK as u64 + 777;
        let mut direct = Vec::new();
        read_to_end(&mut *counting(total, false), &mut direct).unwrap();
        // Through the prefetch thread the stream lends its chunks; mixed with `read`.
        let mut via = Vec::new();
        with_prefetch(counting(total, false), |s| {
            assert!(s.lends());
            let mut first = [0u8; 5];
            assert_eq!(s.read(&mut first)?, 5);
            via.extend_from_slice(&first);
            assert_eq!(s.read_borrowed(3)?.len(), 3.min(PREFETCH_CHUNK - 5));
            via.extend_from_slice(&direct[5..8]);
            pump(s, 1000, |b| {
                assert!(!b.is_empty() && b.len() <= PREFETCH_CHUNK);
                via.extend_from_slice(b);
                Ok(())
            })
        })
        .unwrap();
        assert!(direct == via);
        // A stream that does not lend goes through a buffer of the given size.
        let mut copied = Vec::new();
        let mut s = counting(total, false);
        assert!(!s.lends());
        let n = pump(&mut s, 1000, |b| {
            assert!(b.len() <= 1000);
            copied.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, total);
        assert!(direct == copied);
        // Errors at the end (a checksum) come through pump on both paths.
        assert!(pump(&mut counting(10, true), 4, |_| Ok(())).is_err());
        assert!(with_prefetch(counting(10, true), |s| pump(s, 4, |_| Ok(()))).is_err());
    }

    #[test]
    fn prefetch_forwards_errors_and_stops_early() {
        let err = with_prefetch(counting(10, true), |s| {
            let mut v = Vec::new();
            read_to_end(s, &mut v)
        });
        assert!(err.is_err());
        let early: Result<()> =
            with_prefetch(counting(u64::MAX, false), |_| Err(Error::usage("stop")));
        assert!(early.is_err());
    }
}
