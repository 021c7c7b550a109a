//! Whole-stream compression of TFRecord files (docs/formats/tfrecord.md §2): detection
//! from content and the decompressing readers (GZIP with concatenated members, ZLIB,
//! TensorFlow's SNAPPY block framing).

use crate::error::Result;
use crate::formats::io::InputFile;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};

/// How a TFRecord stream is compressed (TensorFlow's `compression_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// `""`: framed records as they are.
    None,
    /// `"GZIP"`: RFC 1952; concatenated members are one stream.
    Gzip,
    /// `"ZLIB"`: RFC 1950.
    Zlib,
    /// `"SNAPPY"`: big-endian u32 block length + raw snappy block, repeated.
    Snappy,
}

impl Compression {
    /// The name used by `--compression` and in listings.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
            Compression::Snappy => "snappy",
        }
    }

    /// Parses a `--compression` value (case-insensitive).
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "zlib" => Some(Compression::Zlib),
            "snappy" => Some(Compression::Snappy),
            _ => None,
        }
    }
}

/// Largest decompressed snappy block accepted: 16 times TensorFlow's default
/// `output_buffer_size` (256 KiB), which its reader refuses to exceed.
pub const MAX_SNAPPY_BLOCK: usize = 4 << 20;

/// Buffer between the file and the decoders.
const FILE_BUFFER: usize = 256 << 10;

/// True if `head` starts with a 12-byte record header whose masked CRC32C matches.
pub fn valid_header(head: &[u8]) -> bool {
    let (Some(len), Some(crc)) = (head.get(..8), head.get(8..12)) else {
        return false;
    };
    let mut c = [0u8; 4];
    c.copy_from_slice(crc);
    crate::formats::io::unmask_crc(u32::from_le_bytes(c)) == crc32c::crc32c(len)
}

/// A valid RFC 1950 header: deflate, window <= 32 KiB, check bits, no dictionary.
fn zlib_header(head: &[u8]) -> bool {
    match head {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
                && flg & 0x20 == 0
        }
        _ => false,
    }
}

/// Decides the compression of a file from its first bytes (at most 64 KiB are looked at;
/// `head` is that prefix). An empty file is uncompressed.
pub fn detect(head: &[u8]) -> Option<Compression> {
    if head.is_empty() || valid_header(head) {
        return Some(Compression::None);
    }
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Some(Compression::Gzip);
    }
    if zlib_header(head) {
        return Some(Compression::Zlib);
    }
    if snappy_first_block_is_records(head) {
        return Some(Compression::Snappy);
    }
    None
}

fn snappy_first_block_is_records(head: &[u8]) -> bool {
    let Some(len) = head.get(..4) else {
        return false;
    };
    let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let Some(block) = head.get(4..4 + n) else {
        return false;
    };
    match snap::raw::decompress_len(block) {
        Ok(m) if m <= MAX_SNAPPY_BLOCK => {}
        _ => return false,
    }
    match snap::raw::Decoder::new().decompress_vec(block) {
        Ok(out) => out.len() < 12 || valid_header(&out),
        Err(_) => false,
    }
}

/// Opens `path` and returns a reader of its decompressed stream (for a look at its
/// first records).
pub fn open_stream(path: &Path, c: Compression) -> Result<Box<dyn Read + Send>> {
    let file = InputFile::open(path)?.handle()?;
    let buffered = BufReader::with_capacity(FILE_BUFFER, file);
    Ok(match c {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zlib => Box::new(flate2::bufread::ZlibDecoder::new(buffered)),
        Compression::Snappy => Box::new(SnappyBlocks::new(buffered)),
    })
}

/// [`open_stream`] for reading the whole stream: read (and decompressed) on a thread of
/// its own ([`Prefetch`]), overlapping the parsing.
pub fn open_stream_ahead(path: &Path, c: Compression) -> Result<Box<dyn Read + Send>> {
    Ok(Prefetch::boxed(open_stream(path, c)?))
}

/// Bytes a [`Prefetch`] thread reads at a time.
const PREFETCH: usize = 1 << 20;
/// Buffers a [`Prefetch`] thread may be ahead of its reader.
const PREFETCH_DEPTH: usize = 4;

/// Reads a stream on a thread of its own, at most [`PREFETCH_DEPTH`] buffers of
/// [`PREFETCH`] bytes ahead (bounded memory), so that decompressing one part overlaps
/// parsing the one before. Errors arrive in order, after the bytes read before them.
/// Dropping the reader stops the thread after at most one more buffer.
pub struct Prefetch {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Prefetch {
    /// Starts reading `inner` on a new thread.
    pub fn boxed(inner: impl Read + Send + 'static) -> Box<dyn Read + Send> {
        let (tx, rx) = sync_channel(PREFETCH_DEPTH);
        let mut inner = inner;
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; PREFETCH];
            let mut n = 0;
            let mut failed = None;
            while n < buf.len() {
                match inner.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            buf.truncate(n);
            let end = n == 0 || failed.is_some();
            if n > 0 && tx.send(Ok(buf)).is_err() {
                return;
            }
            if end {
                let _ = tx.send(failed.map_or(Ok(Vec::new()), Err));
                return;
            }
        });
        Box::new(Prefetch {
            rx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

impl Read for Prefetch {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(b)) if b.is_empty() => self.done = true,
                Ok(Ok(b)) => {
                    self.cur = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the decompressing thread stopped"));
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// TensorFlow's `SnappyInputStream`: `u32` big-endian compressed length + raw snappy
/// block, repeated to the end of the file.
pub struct SnappyBlocks<R> {
    inner: R,
    compressed: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    decoder: snap::raw::Decoder,
}

impl<R: Read> SnappyBlocks<R> {
    /// Decodes the blocks of `inner`.
    pub fn new(inner: R) -> Self {
        SnappyBlocks {
            inner,
            compressed: Vec::new(),
            out: Vec::new(),
            pos: 0,
            decoder: snap::raw::Decoder::new(),
        }
    }

    /// Decodes the next block into `out`; `false` at a clean end of the file.
    fn next_block(&mut self) -> io::Result<bool> {
        let mut len = [0u8; 4];
        let got = read_full(&mut self.inner, &mut len)?;
        if got == 0 {
            return Ok(false);
        }
        if got < 4 {
            return Err(bad("snappy block length cut short"));
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > snap::raw::max_compress_len(MAX_SNAPPY_BLOCK) {
            return Err(bad(format!(
                "snappy block claims {n} compressed bytes, more than any block of at most \
                 {MAX_SNAPPY_BLOCK} bytes"
            )));
        }
        self.compressed.clear();
        let got = (&mut self.inner)
            .take(n as u64)
            .read_to_end(&mut self.compressed)?;
        if got < n {
            return Err(bad(format!(
                "snappy block of {n} bytes cut short after {got}"
            )));
        }
        let m = snap::raw::decompress_len(&self.compressed)
            .map_err(|e| bad(format!("snappy block: {e}")))?;
        if m > MAX_SNAPPY_BLOCK {
            return Err(bad(format!(
                "snappy block claims {m} decompressed bytes (limit {MAX_SNAPPY_BLOCK})"
            )));
        }
        self.out.resize(m, 0);
        self.decoder
            .decompress(&self.compressed, &mut self.out)
            .map_err(|e| bad(format!("snappy block: {e}")))?;
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for SnappyBlocks<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.out.len() {
            if buf.is_empty() || !self.next_block()? {
                return Ok(0);
            }
        }
        let rest = self.out.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
pub fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_content() {
        assert_eq!(detect(b""), Some(Compression::None));
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Some(Compression::Gzip));
        assert_eq!(detect(&[0x78, 0x9c, 1, 2]), Some(Compression::Zlib));
        assert_eq!(detect(&[0x78, 0x9d, 1, 2]), None);
        assert_eq!(detect(b"hello world, not records"), None);
    }

    #[test]
    fn snappy_blocks_round_trip() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let mut framed = Vec::new();
        for chunk in data.chunks(256 << 10) {
            let c = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            framed.extend_from_slice(&(c.len() as u32).to_be_bytes());
            framed.extend_from_slice(&c);
        }
        let mut out = Vec::new();
        SnappyBlocks::new(&framed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        // Cut inside the second block.
        let cut = &framed[..framed.len() - 10];
        assert!(SnappyBlocks::new(cut).read_to_end(&mut Vec::new()).is_err());
    }

    /// A reader that yields `good` bytes in odd-sized reads, then fails.
    struct Failing {
        good: Vec<u8>,
        pos: usize,
    }

    impl Read for Failing {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.good.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "damaged here"));
            }
            let n = out.len().min(self.good.len() - self.pos).min(777);
            out[..n].copy_from_slice(&self.good[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn prefetch_keeps_order_and_reports_an_error_after_the_bytes_before_it() {
        let data: Vec<u8> = (0..3 * PREFETCH + 12_345)
            .map(|i| (i % 241) as u8)
            .collect();
        let mut all = Vec::new();
        Prefetch::boxed(io::Cursor::new(data.clone()))
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, data);

        let mut r = Prefetch::boxed(Failing {
            good: data.clone(),
            pos: 0,
        });
        let mut got = Vec::new();
        let mut buf = vec![0u8; 5000];
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("the error was lost"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got, data, "every byte before the error arrives first");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("damaged here"));
        // After the error the stream stays ended.
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        // Dropping a reader early stops its thread (nothing to assert but no hang).
        let mut early = Prefetch::boxed(io::repeat(7));
        early.read_exact(&mut buf).unwrap();
        drop(early);
    }
}
