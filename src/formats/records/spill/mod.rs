//! Column spill (docs/formats/tfrecord.md §8): while the records are read, every output
//! column is appended to one unnamed temporary file in chunks, under a fixed memory
//! budget; once every record has been seen each column streams back in order.
//!
//! A large value that lies verbatim in an uncompressed input (an encoded image in a
//! `bytes_list`) is not copied into the spill: the column records a *reference* (shard,
//! file offset, length, CRC32C of the bytes) and the value is read again from the input
//! when the column streams out, its CRC32C checked against the first read. The data is
//! then written once, to the output, instead of twice.

use crate::error::{Error, Result};
use crate::stream::ByteStream;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A column's buffer is written out when it reaches this size.
const CHUNK: usize = 256 << 10;
/// All buffers together are written out when they reach this size.
const BUDGET: usize = 16 << 20;
/// Bytes of one piece record: `u32` shard (`INLINE`: spilled bytes), `u32` CRC32C of
/// the record holding the value, `u64` file offset of that record's data, `u32` its
/// length (0: not checked, `--no-verify`), `u32` the value's offset in it, `u64` the
/// value's length (for an inline piece: the spilled bytes it stands for).
const PIECE: usize = 32;
/// The shard field of a piece whose bytes are in the spill.
const INLINE: u32 = u32::MAX;
/// Bytes of input read at a time when a column's references stream out.
const WINDOW: usize = 1 << 20;
/// Bytes of the spill read at a time for a column's pieces and their inline bytes
/// (one `pread` per 24-byte piece would cost more than the copy it saves).
const SPILL_READ: usize = 64 << 10;

#[derive(Default)]
struct Col {
    buf: Vec<u8>,
    /// (offset in the spill file, length) of each chunk written, in order.
    chunks: Vec<(u64, u32)>,
    /// Bytes in the spill.
    len: u64,
    /// Bytes in the column (spilled and referenced).
    logical: u64,
    /// Once the column holds a reference: the column of its pieces.
    pieces: Option<usize>,
    /// Spilled bytes not yet described by a piece.
    pending: u64,
}

/// Collects columns while the records are read.
pub struct SpillWriter {
    file: File,
    dir: PathBuf,
    pos: u64,
    cols: Vec<Col>,
    buffered: usize,
    inputs: Vec<PathBuf>,
}

impl SpillWriter {
    /// A spill in a new unnamed temporary file in `dir` (removed by the OS when closed);
    /// references name their shard by its index in `inputs`.
    pub fn new(dir: &Path, inputs: Vec<PathBuf>) -> Result<Self> {
        let file = tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
        Ok(SpillWriter {
            file,
            dir: dir.to_path_buf(),
            pos: 0,
            cols: Vec::new(),
            buffered: 0,
            inputs,
        })
    }

    /// Adds an empty column; returns its id.
    pub fn add_column(&mut self) -> usize {
        self.cols.push(Col::default());
        self.cols.len() - 1
    }

    /// Appends `bytes` to column `col`.
    pub fn push(&mut self, col: usize, bytes: &[u8]) -> Result<()> {
        let c = &mut self.cols[col];
        if c.pieces.is_some() {
            c.pending += bytes.len() as u64;
        }
        c.logical += bytes.len() as u64;
        self.append(col, bytes)
    }

    /// Appends to column `col` a reference to `bytes`, which are the bytes at `offset`
    /// of input `shard`; they are read from there again when the column streams. With
    /// `record` (file offset of the record's data, its length and CRC32C) the record is
    /// read again whole and its CRC32C checked.
    pub fn push_ref(
        &mut self,
        col: usize,
        shard: u32,
        record: Option<(u64, u64, u32)>,
        offset: u64,
        bytes: &[u8],
    ) -> Result<()> {
        let (rec, rec_len, crc) = record.unwrap_or((offset, 0, 0));
        let fits = |x: u64| u32::try_from(x).ok();
        let (Some(rec_len), Some(rel)) = (fits(rec_len), offset.checked_sub(rec).and_then(fits))
        else {
            return self.push(col, bytes);
        };
        if shard == INLINE || shard as usize >= self.inputs.len() {
            return self.push(col, bytes);
        }
        let pieces = match self.cols[col].pieces {
            Some(p) => p,
            None => {
                let p = self.add_column();
                let c = &mut self.cols[col];
                c.pieces = Some(p);
                c.pending = c.len;
                p
            }
        };
        self.flush_pending(col, pieces)?;
        let mut piece = [0u8; PIECE];
        piece[..4].copy_from_slice(&shard.to_le_bytes());
        piece[4..8].copy_from_slice(&crc.to_le_bytes());
        piece[8..16].copy_from_slice(&rec.to_le_bytes());
        piece[16..20].copy_from_slice(&rec_len.to_le_bytes());
        piece[20..24].copy_from_slice(&rel.to_le_bytes());
        piece[24..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.cols[col].logical += bytes.len() as u64;
        self.append(pieces, &piece)
    }

    /// Describes the spilled bytes since the last piece by an inline piece.
    fn flush_pending(&mut self, col: usize, pieces: usize) -> Result<()> {
        let pending = std::mem::take(&mut self.cols[col].pending);
        if pending == 0 {
            return Ok(());
        }
        let mut piece = [0u8; PIECE];
        piece[..4].copy_from_slice(&INLINE.to_le_bytes());
        piece[24..].copy_from_slice(&pending.to_le_bytes());
        self.append(pieces, &piece)
    }

    fn append(&mut self, col: usize, bytes: &[u8]) -> Result<()> {
        let c = &mut self.cols[col];
        c.buf.extend_from_slice(bytes);
        c.len += bytes.len() as u64;
        self.buffered += bytes.len();
        if c.buf.len() >= CHUNK {
            self.flush(col)?;
        }
        if self.buffered >= BUDGET {
            for i in 0..self.cols.len() {
                self.flush(i)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self, col: usize) -> Result<()> {
        let c = &mut self.cols[col];
        if c.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&c.buf)
            .map_err(|e| Error::io(&self.dir, e))?;
        // Chunks never exceed CHUNK + one value's bytes, and values are < 2 GiB.
        let n = c.buf.len();
        c.chunks.push((self.pos, n as u32));
        self.pos += n as u64;
        self.buffered -= n;
        c.buf.clear();
        if c.buf.capacity() > CHUNK * 2 {
            c.buf.shrink_to(CHUNK);
        }
        Ok(())
    }

    /// Writes out every buffer: the columns can now be read.
    pub fn finish(mut self) -> Result<Spill> {
        for i in 0..self.cols.len() {
            if let Some(p) = self.cols[i].pieces {
                self.flush_pending(i, p)?;
            }
        }
        for i in 0..self.cols.len() {
            self.flush(i)?;
        }
        Ok(Spill {
            file: self.file,
            dir: self.dir,
            cols: self
                .cols
                .into_iter()
                .map(|c| SpilledCol {
                    chunks: c.chunks,
                    logical: c.logical,
                    pieces: c.pieces,
                })
                .collect(),
            inputs: self.inputs,
        })
    }
}

struct SpilledCol {
    chunks: Vec<(u64, u32)>,
    logical: u64,
    pieces: Option<usize>,
}

/// Columns written out, ready to stream.
pub struct Spill {
    file: File,
    dir: PathBuf,
    cols: Vec<SpilledCol>,
    inputs: Vec<PathBuf>,
}

impl Spill {
    /// Bytes in column `col`.
    pub fn len(&self, col: usize) -> u64 {
        self.cols[col].logical
    }

    /// Streams `prefix` then column `col`.
    pub fn stream(&self, col: usize, prefix: &[u8]) -> SpillStream<'_> {
        self.stream_range(col, 0, u64::MAX, prefix)
    }

    /// Streams `prefix` then at most `len` bytes of column `col` from byte `start`.
    pub fn stream_range(&self, col: usize, start: u64, len: u64, prefix: &[u8]) -> SpillStream<'_> {
        let c = &self.cols[col];
        let inner = match c.pieces {
            None => Inner::Plain(self.chunks(col, start, len)),
            Some(p) => Inner::Pieces(Box::new(Pieces::new(
                self,
                Buffered::new(self.chunks(col, 0, u64::MAX)),
                Buffered::new(self.chunks(p, 0, u64::MAX)),
                start,
                len,
            ))),
        };
        SpillStream {
            inner,
            prefix: prefix.to_vec(),
            prefix_at: 0,
        }
    }

    fn chunks(&self, col: usize, start: u64, len: u64) -> Chunks<'_> {
        let chunks = &self.cols[col].chunks;
        let mut next = 0;
        let mut skip = start;
        while let Some(&(_, n)) = chunks.get(next) {
            if skip < u64::from(n) {
                break;
            }
            skip -= u64::from(n);
            next += 1;
        }
        Chunks {
            spill: self,
            chunks,
            next,
            at: skip as u32,
            left: len,
        }
    }
}

/// One column of a [`Spill`], as a [`ByteStream`].
pub struct SpillStream<'a> {
    inner: Inner<'a>,
    prefix: Vec<u8>,
    /// Bytes of `prefix` already read.
    prefix_at: usize,
}

enum Inner<'a> {
    Plain(Chunks<'a>),
    Pieces(Box<Pieces<'a>>),
}

impl ByteStream for SpillStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.prefix_at < self.prefix.len() {
            let rest = &self.prefix[self.prefix_at..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.prefix_at += n;
            return Ok(n);
        }
        match &mut self.inner {
            Inner::Plain(c) => c.read(buf),
            Inner::Pieces(p) => p.read(buf),
        }
    }
}

/// The spilled chunks of one column.
struct Chunks<'a> {
    spill: &'a Spill,
    chunks: &'a [(u64, u32)],
    next: usize,
    at: u32,
    left: u64,
}

impl Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        let room = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let buf = &mut buf[..room];
        while done < buf.len() {
            let Some(&(off, len)) = self.chunks.get(self.next) else {
                break;
            };
            let want = ((len - self.at) as usize).min(buf.len() - done);
            let got = self
                .spill
                .file
                .read_at(&mut buf[done..done + want], off + u64::from(self.at))
                .map_err(|e| Error::io(&self.spill.dir, e))?;
            if got == 0 {
                return Err(self.spill.damaged("the temporary spill file shrank"));
            }
            done += got;
            self.at += got as u32;
            if self.at == len {
                self.next += 1;
                self.at = 0;
            }
        }
        self.left -= done as u64;
        Ok(done)
    }
}

/// A column's chunks read [`SPILL_READ`] bytes at a time.
struct Buffered<'a> {
    chunks: Chunks<'a>,
    buf: Vec<u8>,
    head: usize,
}

impl<'a> Buffered<'a> {
    fn new(chunks: Chunks<'a>) -> Self {
        Buffered {
            chunks,
            buf: Vec::new(),
            head: 0,
        }
    }

    fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        if self.head == self.buf.len() {
            if out.len() >= SPILL_READ {
                return self.chunks.read(out);
            }
            self.buf.resize(SPILL_READ, 0);
            let n = self.chunks.read(&mut self.buf)?;
            self.buf.truncate(n);
            self.head = 0;
        }
        let n = out.len().min(self.buf.len() - self.head);
        out[..n].copy_from_slice(&self.buf[self.head..self.head + n]);
        self.head += n;
        Ok(n)
    }

    /// The next up to `max` bytes, borrowed from the buffer; empty at the end.
    fn borrow(&mut self, max: usize) -> Result<&[u8]> {
        if self.head == self.buf.len() {
            self.buf.resize(SPILL_READ, 0);
            let n = self.chunks.read(&mut self.buf)?;
            self.buf.truncate(n);
            self.head = 0;
        }
        let n = max.min(self.buf.len() - self.head);
        self.head += n;
        Ok(&self.buf[self.head - n..self.head])
    }

    /// The `n` bytes the last [`Buffered::borrow`] returned.
    fn last(&self, n: usize) -> &[u8] {
        &self.buf[self.head - n..self.head]
    }

    /// Fills `buf` whole; `false` at the end of the column.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.read(&mut buf[got..])?;
            if n == 0 {
                if got == 0 {
                    return Ok(false);
                }
                return Err(self
                    .chunks
                    .spill
                    .damaged("the temporary spill file is short"));
            }
            got += n;
        }
        Ok(true)
    }
}

impl Spill {
    /// Input `shard`'s path, for messages.
    pub(super) fn input(&self, shard: u32) -> &Path {
        self.inputs
            .get(shard as usize)
            .map_or(Path::new("?"), PathBuf::as_path)
    }

    pub(super) fn damaged(&self, what: &str) -> Error {
        Error::io(&self.dir, std::io::Error::other(what.to_string()))
    }
}

mod pieces;
use pieces::Pieces;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::read_to_end;

    #[test]
    fn columns_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpillWriter::new(dir.path(), Vec::new()).unwrap();
        let cols: Vec<usize> = (0..70).map(|_| w.add_column()).collect();
        let mut want = vec![Vec::new(); cols.len()];
        for i in 0..20_000u32 {
            for (c, w8) in want.iter_mut().enumerate().take(cols.len()) {
                let v = (i ^ c as u32).to_le_bytes();
                w8.extend_from_slice(&v[..(c % 4) + 1]);
            }
            for &c in &cols {
                let v = (i ^ c as u32).to_le_bytes();
                w.push(c, &v[..(c % 4) + 1]).unwrap();
            }
        }
        let s = w.finish().unwrap();
        for &c in &cols {
            let mut out = Vec::new();
            read_to_end(&mut s.stream(c, &[9]), &mut out).unwrap();
            assert_eq!(out[0], 9);
            assert_eq!(&out[1..], &want[c][..]);
            assert_eq!(s.len(c), want[c].len() as u64);
            let mut part = Vec::new();
            read_to_end(&mut s.stream_range(c, 1000, 3000, &[]), &mut part).unwrap();
            assert_eq!(&part[..], &want[c][1000..4000]);
        }
    }

    /// A column of references and copies, as the Example sink makes for an uncompressed
    /// input: the bytes come back from the input in order, ranges included.
    fn referenced(dir: &Path) -> (Spill, Vec<u8>, PathBuf) {
        let input = dir.join("input");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&input, &data).unwrap();
        let mut w = SpillWriter::new(dir, vec![input.clone()]).unwrap();
        let col = w.add_column();
        let other = w.add_column();
        let mut want = Vec::new();
        let mut at = 0usize;
        for i in 0..300usize {
            let n = 10 + (i * 37) % 900;
            let v = &data[at..at + n];
            if i % 3 == 0 {
                w.push(col, &[i as u8; 5]).unwrap();
                want.extend_from_slice(&[i as u8; 5]);
            }
            // The whole file stands for the record holding every value.
            let record = Some((0, data.len() as u64, crc32c::crc32c(&data)));
            w.push_ref(col, 0, record, at as u64, v).unwrap();
            w.push(other, &[1, 2]).unwrap();
            want.extend_from_slice(v);
            at += n + 13;
        }
        (w.finish().unwrap(), want, input)
    }

    #[test]
    fn references_stream_back_from_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let (s, want, _) = referenced(dir.path());
        assert_eq!(s.len(0), want.len() as u64);
        let mut out = Vec::new();
        read_to_end(&mut s.stream(0, &[7]), &mut out).unwrap();
        assert_eq!(out[0], 7);
        assert_eq!(&out[1..], &want[..]);
        let mut part = Vec::new();
        read_to_end(&mut s.stream_range(0, 12_345, 40_000, &[]), &mut part).unwrap();
        assert_eq!(&part[..], &want[12_345..52_345]);
        // As the writers pull it, in odd-sized pieces. It does not lend, so that the
        // writer reads it ahead on a second thread (run.rs, reads_ahead).
        let mut lent = Vec::new();
        let mut stream = s.stream_range(0, 999, u64::MAX, &[1, 2, 3]);
        assert!(!stream.lends());
        crate::stream::pump(&mut stream, 777, |b| {
            assert!(!b.is_empty() && b.len() <= 777);
            lent.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(&lent[..3], &[1, 2, 3]);
        assert_eq!(&lent[3..], &want[999..]);
        let mut other = Vec::new();
        read_to_end(&mut s.stream(1, &[]), &mut other).unwrap();
        assert_eq!(other, [1, 2].repeat(300));
    }

    #[test]
    fn a_referenced_byte_changed_after_the_scan_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _, input) = referenced(dir.path());
        let mut data = std::fs::read(&input).unwrap();
        data[50_000] ^= 1;
        std::fs::write(&input, &data).unwrap();
        let err = read_to_end(&mut s.stream(0, &[]), &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("changed while the file was being read"),
            "{err}"
        );
        assert!(err.contains("input"), "{err}");
        // A range that ends inside a referenced value still checks all of it.
        let input = dir.path().join("one");
        let bytes = vec![5u8; 10_000];
        std::fs::write(&input, &bytes).unwrap();
        let mut w = SpillWriter::new(dir.path(), vec![input.clone()]).unwrap();
        let col = w.add_column();
        w.push_ref(col, 0, Some((0, 10_000, crc32c::crc32c(&bytes))), 0, &bytes)
            .unwrap();
        let s = w.finish().unwrap();
        let mut head = Vec::new();
        read_to_end(&mut s.stream_range(col, 0, 100, &[]), &mut head).unwrap();
        assert_eq!(head, [5u8; 100]);
        std::fs::write(&input, [&bytes[..9_000], &[6], &bytes[9_001..]].concat()).unwrap();
        let err = read_to_end(&mut s.stream_range(col, 0, 100, &[]), &mut Vec::new());
        assert!(err.is_err(), "the first 100 bytes passed unchecked");
    }
}
