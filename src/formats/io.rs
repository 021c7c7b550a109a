//! Bounded reads from input files, shared by the table and bundle readers.
//!
//! [`InputFile`] is an open file with its length measured once; every read is checked
//! against that length before anything is allocated. [`RangeReader`] streams one byte
//! range `[offset, offset + len)` of an `InputFile` with large positioned reads
//! (`pread`), through an internal buffer or straight into the caller's buffer when that
//! is large. [`RangeReader::read_borrowed`] lends the buffer instead, so a tensor's
//! bytes are checksummed, converted and written from the one private copy `pread` made:
//! what is verified is what is written, even if the file changes meanwhile. (Reading
//! through memory-mapped windows instead was measured and lost, see `BENCHMARKS.md`.)
//! Also here: TensorFlow's masked CRC32C (tf-formats.md §9) and varint decoding.

use crate::error::{Ctx, Error, Result};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `kMaskDelta` of TensorFlow's `crc32c::Mask` (tf-formats.md §9).
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// TensorFlow's `crc32c::Mask`: rotate right by 15 bits and add a constant.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// TensorFlow's `crc32c::Unmask`, the inverse of [`mask_crc`].
pub fn unmask_crc(masked: u32) -> u32 {
    masked.wrapping_sub(CRC_MASK_DELTA).rotate_left(15)
}

/// Decodes a LevelDB/protobuf varint of at most 64 bits from the start of `buf`.
/// Returns the value and the bytes used, or `None` if `buf` ends inside the varint or
/// the varint is longer than 10 bytes or overflows 64 bits.
pub fn decode_varint64(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Decodes a varint of at most 32 bits (5 bytes) from the start of `buf`, like
/// LevelDB's `GetVarint32Ptr`.
pub fn decode_varint32(buf: &[u8]) -> Option<(u32, usize)> {
    let mut v = 0u32;
    for (i, &b) in buf.iter().enumerate().take(5) {
        if i == 4 && b > 0x0f {
            return None;
        }
        v |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// An input file opened for positioned reads, with its length measured at open time.
#[derive(Debug)]
pub struct InputFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl InputFile {
    /// Opens `path` and measures it.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::io(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "is a folder, not a file"),
            ));
        }
        Ok(InputFile {
            path: path.to_path_buf(),
            file,
            len: meta.len(),
        })
    }

    /// Reads from `file`, already open (e.g. an unnamed temporary file holding
    /// decompressed data); `path` names it in errors.
    pub fn from_file(path: &Path, file: File) -> Result<Self> {
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        Ok(InputFile {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes, as measured when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A second handle on the open file (for a reader that wants `Read + Seek`, such as
    /// the ZIP directory of a `.keras` archive); the file is not opened again.
    pub fn handle(&self) -> Result<File> {
        self.file.try_clone().map_err(|e| Error::io(&self.path, e))
    }

    /// Checks that `[offset, offset + len)` lies inside the file; returns the end.
    /// `what` names the range in the error.
    pub fn check_range(&self, offset: u64, len: u64, what: &str) -> Result<u64> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(end),
            _ => Err(Ctx::file(&self.path).corrupt(format!(
                "{what} at bytes [{offset}, {offset} + {len}) lies past the end of the file \
                 ({} bytes)",
                self.len
            ))),
        }
    }

    /// Fills `buf` from file offset `offset`. The range must have been checked against
    /// [`InputFile::len`]; a file that turns out shorter (it shrank while being read)
    /// gives a `Corrupt` error.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            let Some(rest) = buf.get_mut(done..) else {
                break;
            };
            match self.file.read_at(rest, at) {
                Ok(0) => {
                    return Err(Ctx::file(&self.path).corrupt(format!(
                        "file ends at byte {at}, but {} bytes were expected from byte {offset} \
                         (did it change while being read?)",
                        buf.len()
                    )))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        Ok(())
    }

    /// Reads `[offset, offset + len)` into a new vector, after checking that the range
    /// lies inside the file (so the allocation is bounded by the file's size).
    pub fn read_range(&self, offset: u64, len: u64, what: &str) -> Result<Vec<u8>> {
        self.check_range(offset, len, what)?;
        let n = usize::try_from(len).map_err(|_| {
            Ctx::file(&self.path).corrupt(format!("{what} of {len} bytes is too large"))
        })?;
        let mut buf = vec![0u8; n];
        self.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }
}

/// Reads of at least this many bytes bypass a [`RangeReader`]'s buffer.
const DIRECT_READ_MIN: usize = 64 << 10;

/// Sequential reads over one byte range of an [`InputFile`], buffered.
///
/// Reads of at least 64 KiB (or the buffer size, if smaller) go straight into the
/// caller's memory; smaller ones are served from an internal buffer of at most `cap`
/// bytes, allocated on first use and never larger than the range, which
/// [`RangeReader::read_borrowed`] also lends.
pub struct RangeReader {
    file: Arc<InputFile>,
    /// File offset of the first byte not yet fetched into the buffer.
    pos: u64,
    /// End of the range (exclusive).
    end: u64,
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    cap: usize,
}

impl RangeReader {
    /// A reader over `[offset, offset + len)` of `file`, buffering up to `cap` bytes.
    /// Fails if the range does not lie inside the file.
    pub fn new(file: Arc<InputFile>, offset: u64, len: u64, cap: usize) -> Result<Self> {
        let end = file.check_range(offset, len, "data range")?;
        Ok(RangeReader {
            file,
            pos: offset,
            end,
            buf: Vec::new(),
            head: 0,
            tail: 0,
            cap: cap.max(16),
        })
    }

    /// Lends the next up to `max` bytes (`max > 0`) from the internal buffer, filled by
    /// `pread` (up to `cap` bytes at a time). Empty only at the end of the range.
    pub fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        if max == 0 {
            return Ok(&[]);
        }
        if self.head == self.tail {
            if self.pos == self.end {
                return Ok(&[]);
            }
            self.fill()?;
        }
        let n = max.min(self.tail - self.head);
        self.head += n;
        Ok(&self.buf[self.head - n..self.head])
    }

    /// The `n` bytes the last [`RangeReader::read_borrowed`] returned (`n` at most
    /// their count), borrowed again.
    pub fn last_borrowed(&self, n: usize) -> &[u8] {
        let n = n.min(self.head);
        &self.buf[self.head - n..self.head]
    }

    /// The file being read.
    pub fn file(&self) -> &InputFile {
        &self.file
    }

    /// The file offset of the next byte [`RangeReader::read`] returns.
    pub fn offset(&self) -> u64 {
        self.pos - (self.tail - self.head) as u64
    }

    /// Moves forward to file offset `offset` (not before [`RangeReader::offset`], not past
    /// the range's end), keeping the buffered bytes that are still ahead.
    pub fn skip_to(&mut self, offset: u64) -> Result<()> {
        let at = self.offset();
        if offset < at || offset > self.end {
            return Err(Error::usage(format!(
                "internal error: {}: cannot move from byte {at} to {offset}",
                self.file.path().display()
            )));
        }
        let ahead = offset - at;
        match usize::try_from(ahead) {
            Ok(a) if a <= self.tail - self.head => self.head += a,
            _ => {
                self.head = 0;
                self.tail = 0;
                self.pos = offset;
            }
        }
        Ok(())
    }

    /// Bytes left in the range.
    pub fn remaining(&self) -> u64 {
        (self.end - self.pos) + (self.tail - self.head) as u64
    }

    fn fill(&mut self) -> Result<()> {
        let left = self.end - self.pos;
        if self.buf.is_empty() {
            let size = usize::try_from(left).map_or(self.cap, |l| l.min(self.cap));
            self.buf = vec![0u8; size];
        }
        let n = usize::try_from(left).map_or(self.buf.len(), |l| l.min(self.buf.len()));
        let Some(dst) = self.buf.get_mut(..n) else {
            return Ok(());
        };
        self.file.read_exact_at(self.pos, dst)?;
        self.pos += n as u64;
        self.head = 0;
        self.tail = n;
        Ok(())
    }

    /// Reads up to `out.len()` bytes; `Ok(0)` only at the end of the range (or for an
    /// empty `out`).
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.head == self.tail {
            if self.pos == self.end {
                return Ok(0);
            }
            if out.len() >= self.cap.min(DIRECT_READ_MIN) {
                let left = self.end - self.pos;
                let n = usize::try_from(left).map_or(out.len(), |l| l.min(out.len()));
                let dst = &mut out[..n];
                self.file.read_exact_at(self.pos, dst)?;
                self.pos += n as u64;
                return Ok(n);
            }
            self.fill()?;
        }
        let n = out.len().min(self.tail - self.head);
        out[..n].copy_from_slice(&self.buf[self.head..self.head + n]);
        self.head += n;
        Ok(n)
    }

    /// Fills `out` completely; `Ok(false)` (with `out` partly written) if the range
    /// ends first.
    pub fn read_exact(&mut self, out: &mut [u8]) -> Result<bool> {
        let mut done = 0;
        while done < out.len() {
            let n = self.read(&mut out[done..])?;
            if n == 0 {
                return Ok(false);
            }
            done += n;
        }
        Ok(true)
    }

    /// The next byte, or `None` at the end of the range.
    pub fn read_u8(&mut self) -> Result<Option<u8>> {
        if self.head == self.tail {
            if self.pos == self.end {
                return Ok(None);
            }
            self.fill()?;
        }
        let b = self.buf.get(self.head).copied();
        self.head += 1;
        Ok(b)
    }

    /// The next varint64, or `None` if it is malformed or the range ends inside it.
    pub fn read_varint64(&mut self) -> Result<Option<u64>> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(b) = self.read_u8()? else {
                return Ok(None);
            };
            if i == 9 && b > 1 {
                return Ok(None);
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn crc_mask_roundtrips_and_matches_tf() {
        assert_eq!(mask_crc(0), 0xa282_ead8);
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        for c in [0u32, 1, 0xdead_beef, u32::MAX] {
            assert_eq!(unmask_crc(mask_crc(c)), c);
        }
    }

    #[test]
    fn decodes_varints() {
        assert_eq!(decode_varint64(&[0x00]), Some((0, 1)));
        assert_eq!(decode_varint64(&[0xac, 0x02]), Some((300, 2)));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(decode_varint64(&max), Some((u64::MAX, 10)));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(decode_varint64(&over), None);
        assert_eq!(decode_varint64(&[0x80, 0x80]), None);
        assert_eq!(
            decode_varint32(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Some((u32::MAX, 5))
        );
        assert_eq!(decode_varint32(&[0xff, 0xff, 0xff, 0xff, 0x10]), None);
    }

    fn temp_file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        (dir, path)
    }

    #[test]
    fn range_reader_reads_buffered_direct_and_varints() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let (_d, path) = temp_file(&data);
        let f = Arc::new(InputFile::open(&path).unwrap());
        assert_eq!(f.len(), 10_000);
        let mut r = RangeReader::new(f.clone(), 100, 9_000, 64).unwrap();
        let mut out = Vec::new();
        let mut small = [0u8; 7];
        let mut big = [0u8; 1000];
        // Buffer of 64 bytes: reads of 1000 bytes go direct.
        let mut flip = false;
        loop {
            let n = if flip {
                r.read(&mut big).unwrap()
            } else {
                r.read(&mut small).unwrap()
            };
            flip = !flip;
            if n == 0 {
                break;
            }
            out.extend_from_slice(if flip { &small[..n] } else { &big[..n] });
        }
        assert_eq!(out, &data[100..9_100]);
        assert_eq!(r.remaining(), 0);

        let (_d2, p2) = temp_file(&[0xac, 0x02, 0x80]);
        let f2 = Arc::new(InputFile::open(&p2).unwrap());
        let mut r = RangeReader::new(f2, 0, 3, 16).unwrap();
        assert_eq!(r.read_varint64().unwrap(), Some(300));
        assert_eq!(r.offset(), 2);
        assert_eq!(r.read_varint64().unwrap(), None);
    }

    #[test]
    fn rejects_ranges_past_the_end() {
        let (_d, path) = temp_file(&[1, 2, 3]);
        let f = Arc::new(InputFile::open(&path).unwrap());
        assert!(RangeReader::new(f.clone(), 2, 2, 16).is_err());
        assert!(RangeReader::new(f.clone(), u64::MAX, 2, 16).is_err());
        let err = f.read_range(1, 5, "block").unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
        assert_eq!(f.read_range(1, 2, "block").unwrap(), vec![2, 3]);
    }

    #[test]
    fn lends_its_buffer_and_fails_on_a_file_that_shrank() {
        let data: Vec<u8> = (0..3_000_000usize).map(|i| (i * 7 % 251) as u8).collect();
        let (_d, path) = temp_file(&data);
        let f = Arc::new(InputFile::open(&path).unwrap());
        let mut r = RangeReader::new(f.clone(), 3, data.len() as u64 - 3, 1 << 20).unwrap();
        let mut got = Vec::new();
        let mut step = 1;
        loop {
            let b = r.read_borrowed(step).unwrap();
            if b.is_empty() {
                break;
            }
            assert!(b.len() <= step.min(1 << 20));
            got.extend_from_slice(b);
            step = step * 3 % 1_400_037 + 1;
        }
        assert!(got == data[3..]);
        // The file loses its tail after the first piece: an error naming the file.
        let mut r = RangeReader::new(f, 0, data.len() as u64, 1 << 20).unwrap();
        assert!(!r.read_borrowed(10).unwrap().is_empty());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let err = loop {
            match r.read_borrowed(1 << 20) {
                Ok([]) => panic!("a shrunken file must fail"),
                Ok(_) => {}
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("did it change while being read"), "{err}");
    }
}
