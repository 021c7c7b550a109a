//! Column spill (docs/formats/tfrecord.md §8): while the records are read, every output
//! column is appended to one unnamed temporary file in chunks, under a fixed memory
//! budget; once every record has been seen each column streams back in order.

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

#[derive(Default)]
struct Col {
    buf: Vec<u8>,
    /// (offset in the spill file, length) of each chunk written, in order.
    chunks: Vec<(u64, u32)>,
    len: u64,
}

/// Collects columns while the records are read.
pub struct SpillWriter {
    file: File,
    dir: PathBuf,
    pos: u64,
    cols: Vec<Col>,
    buffered: usize,
}

impl SpillWriter {
    /// A spill in a new unnamed temporary file in `dir` (removed by the OS when closed).
    pub fn new(dir: &Path) -> Result<Self> {
        let file = tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
        Ok(SpillWriter {
            file,
            dir: dir.to_path_buf(),
            pos: 0,
            cols: Vec::new(),
            buffered: 0,
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
            self.flush(i)?;
        }
        Ok(Spill {
            file: self.file,
            dir: self.dir,
            cols: self.cols.into_iter().map(|c| (c.chunks, c.len)).collect(),
        })
    }
}

/// Columns written out, ready to stream.
pub struct Spill {
    file: File,
    dir: PathBuf,
    cols: Vec<(Vec<(u64, u32)>, u64)>,
}

impl Spill {
    /// Bytes in column `col`.
    pub fn len(&self, col: usize) -> u64 {
        self.cols[col].1
    }

    /// Streams `prefix` then column `col`.
    pub fn stream(&self, col: usize, prefix: &[u8]) -> SpillStream<'_> {
        self.stream_range(col, 0, u64::MAX, prefix)
    }

    /// Streams `prefix` then at most `len` bytes of column `col` from byte `start`.
    pub fn stream_range(&self, col: usize, start: u64, len: u64, prefix: &[u8]) -> SpillStream<'_> {
        let chunks = &self.cols[col].0;
        let mut next = 0;
        let mut skip = start;
        while let Some(&(_, n)) = chunks.get(next) {
            if skip < u64::from(n) {
                break;
            }
            skip -= u64::from(n);
            next += 1;
        }
        SpillStream {
            spill: self,
            chunks,
            next,
            at: skip as u32,
            left: len,
            prefix: prefix.to_vec(),
        }
    }
}

/// One column of a [`Spill`], as a [`ByteStream`].
pub struct SpillStream<'a> {
    spill: &'a Spill,
    chunks: &'a [(u64, u32)],
    next: usize,
    at: u32,
    left: u64,
    prefix: Vec<u8>,
}

impl ByteStream for SpillStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.len());
            buf[..n].copy_from_slice(&self.prefix[..n]);
            self.prefix.drain(..n);
            return Ok(n);
        }
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
                return Err(Error::io(
                    &self.spill.dir,
                    std::io::Error::other("the temporary spill file shrank"),
                ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::read_to_end;

    #[test]
    fn columns_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpillWriter::new(dir.path()).unwrap();
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
}
