//! Bounded reads from input files, shared by the table and bundle readers.
//!
//! [`InputFile`] is an open file with its length measured once; every read is checked
//! against that length before anything is allocated. [`RangeReader`] streams one byte
//! range `[offset, offset + len)` of an `InputFile` with large positioned reads
//! (`pread`), through an internal buffer or straight into the caller's buffer when that
//! is large. Ranges of at least [`MAP_MIN`] bytes of a regular file are read through
//! memory-mapped windows of at most [`MAP_WINDOW`] bytes instead (module `mmap`), which
//! lends the file's bytes without copying them: checksums, conversions and `write()`
//! read straight from the page cache. Before each window is mapped and after it is used,
//! the file's size and change time are compared with those measured at open
//! ([`InputFile::check_unchanged`]); a file that changed fails the read with an error
//! naming it, and a truncation while a window is mapped reads zeros (never `SIGBUS`) and
//! fails the same way, before the stream ends. Also here: TensorFlow's masked CRC32C
//! (tf-formats.md §9) and varint decoding.

mod mmap;

use crate::error::{Ctx, Error, Result};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
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

/// Ranges at least this long of a regular file are read through memory maps.
pub const MAP_MIN: u64 = 1 << 20;
/// Bytes mapped at a time (so resident memory stays bounded whatever the tensor size).
pub const MAP_WINDOW: usize = 8 << 20;

/// What identifies a file's contents at open time: a change to any of these means the
/// file was written, truncated or replaced in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// An input file opened for positioned reads, with its length measured at open time.
#[derive(Debug)]
pub struct InputFile {
    path: PathBuf,
    file: File,
    len: u64,
    /// Set for regular files, which may be memory-mapped.
    stamp: Option<Stamp>,
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
            stamp: meta.is_file().then(|| Stamp::of(&meta)),
        })
    }

    /// Fails if the file is no longer what was opened: its size, inode or modification
    /// or change time differ from those measured at open. (Linux updates the change
    /// time on every write and truncation, with fine-grained timestamps once it has
    /// been queried, so a write between two checks is seen.)
    pub fn check_unchanged(&self) -> Result<()> {
        let Some(stamp) = self.stamp else {
            return Ok(());
        };
        let now = self.file.metadata().map_err(|e| Error::io(&self.path, e))?;
        if Stamp::of(&now) != stamp {
            return Err(self.changed());
        }
        Ok(())
    }

    fn changed(&self) -> Error {
        Ctx::file(&self.path).corrupt(
            "the file changed while being read (its size or modification time differs \
             from when it was opened); run again once nothing writes to it",
        )
    }

    /// Maps `[offset, offset + len)` after checking the file is unchanged; `None` for a
    /// file that is not regular or when no window can be mapped (read with `pread`).
    fn map(&self, offset: u64, len: usize) -> Result<Option<mmap::Window>> {
        if self.stamp.is_none() {
            return Ok(None);
        }
        self.check_unchanged()?;
        mmap::Window::map(&self.file, offset, len).map_err(|e| Error::io(&self.path, e))
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

/// Sequential reads over one byte range of an [`InputFile`], buffered or mapped.
///
/// A range of at least [`MAP_MIN`] bytes of a regular file is read through mapped
/// windows of at most [`MAP_WINDOW`] bytes, which [`RangeReader::read_borrowed`] lends
/// without a copy. Otherwise reads of at least 64 KiB (or the buffer size, if smaller)
/// go straight into the caller's memory, and smaller ones are served from an internal
/// buffer of at most `cap` bytes, allocated on first use and never larger than the
/// range.
pub struct RangeReader {
    file: Arc<InputFile>,
    /// File offset of the first byte not yet fetched into the buffer (or lent from
    /// the window).
    pos: u64,
    /// End of the range (exclusive).
    end: u64,
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    cap: usize,
    /// Read through memory maps.
    mapped: bool,
    /// The current window and the file offset of its first byte.
    window: Option<(mmap::Window, u64)>,
}

impl RangeReader {
    /// A reader over `[offset, offset + len)` of `file`, buffering up to `cap` bytes.
    /// Fails if the range does not lie inside the file.
    pub fn new(file: Arc<InputFile>, offset: u64, len: u64, cap: usize) -> Result<Self> {
        let end = file.check_range(offset, len, "data range")?;
        Ok(RangeReader {
            mapped: len >= MAP_MIN && file.stamp.is_some(),
            file,
            pos: offset,
            end,
            buf: Vec::new(),
            head: 0,
            tail: 0,
            cap: cap.max(16),
            window: None,
        })
    }

    /// Lends the next up to `max` bytes (`max > 0`): from the mapped window, or from
    /// the internal buffer (filled by `pread`). Empty only at the end of the range,
    /// which for a mapped range is also where the file is checked to be unchanged
    /// since open (so every byte lent was the file's byte when it was opened).
    pub fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        if max == 0 {
            return Ok(&[]);
        }
        if self.head == self.tail && self.mapped {
            return self.lend_mapped(max);
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

    fn lend_mapped(&mut self, max: usize) -> Result<&[u8]> {
        let in_window =
            matches!(&self.window, Some((w, at)) if self.pos < at + w.bytes().len() as u64);
        if !in_window {
            // Done with the old window: check it before mapping the next one.
            self.release_window()?;
            if self.pos == self.end {
                return Ok(&[]);
            }
            let len =
                usize::try_from(self.end - self.pos).map_or(MAP_WINDOW, |l| l.min(MAP_WINDOW));
            match self.file.map(self.pos, len)? {
                Some(w) => self.window = Some((w, self.pos)),
                None => {
                    // No map to be had: read this range with `pread` from here on.
                    self.mapped = false;
                    return self.read_borrowed(max);
                }
            }
        }
        let Some((w, at)) = &self.window else {
            return Ok(&[]);
        };
        let from = (self.pos - at) as usize;
        let bytes = &w.bytes()[from..];
        let n = max.min(bytes.len());
        self.pos += n as u64;
        Ok(&bytes[..n])
    }

    /// Call at the end of the range (or to stop early): unmaps the current window,
    /// failing if the file changed while it was in use. [`RangeReader::read_borrowed`]
    /// and [`RangeReader::read`] do this themselves when they reach the end.
    pub fn finish(&mut self) -> Result<()> {
        self.release_window()
    }

    /// Unmaps the current window, failing if the file changed (or shrank under it)
    /// while it was in use.
    fn release_window(&mut self) -> Result<()> {
        if let Some((w, _)) = self.window.take() {
            let damaged = w.damaged();
            drop(w);
            if damaged {
                return Err(self.file.changed());
            }
            self.file.check_unchanged()?;
        }
        Ok(())
    }

    /// The file being read.
    pub fn file(&self) -> &InputFile {
        &self.file
    }

    /// The file offset of the next byte [`RangeReader::read`] returns.
    pub fn offset(&self) -> u64 {
        self.pos - (self.tail - self.head) as u64
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
        if self.mapped {
            let b = self.read_borrowed(out.len())?;
            let n = b.len();
            out[..n].copy_from_slice(b);
            return Ok(n);
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
        if self.mapped {
            return Ok(self.read_borrowed(1)?.first().copied());
        }
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
    use std::os::unix::fs::FileExt;

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

    fn mapped_reader(len: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>, RangeReader) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let (d, path) = temp_file(&data);
        let f = Arc::new(InputFile::open(&path).unwrap());
        let r = RangeReader::new(f, 3, len as u64 - 3, 1 << 20).unwrap();
        (d, path, data, r)
    }

    #[test]
    fn large_ranges_are_lent_from_mapped_windows() {
        // Three windows and a bit, read in pieces of every size.
        let len = 2 * MAP_WINDOW + 1_000_003;
        let (_d, _p, data, mut r) = mapped_reader(len);
        assert!(r.mapped);
        let mut got = Vec::new();
        let mut step = 1;
        loop {
            let b = r.read_borrowed(step).unwrap();
            if b.is_empty() {
                break;
            }
            got.extend_from_slice(b);
            step = step * 3 % 4_000_037 + 1;
        }
        assert!(got == data[3..]);
        assert!(r.window.is_none(), "the last window is unmapped at the end");
        // `read` and `read_u8` copy from the map.
        let (_d, _p, data, mut r) = mapped_reader(MAP_MIN as usize + 5);
        assert_eq!(r.read_u8().unwrap(), Some(data[3]));
        let mut out = vec![0u8; data.len()];
        let mut n = 0;
        loop {
            let k = r.read(&mut out[n..]).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        assert!(out[..n] == data[4..]);
    }

    #[test]
    fn a_file_truncated_while_mapped_is_an_error_not_sigbus() {
        let len = 3 << 20;
        let (_d, path, data, mut r) = mapped_reader(len);
        let first = r.read_borrowed(4096).unwrap().to_vec();
        assert!(first == data[3..4099]);
        // The window (all 3 MiB) is mapped; now the file loses its last 2 MiB.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let mut err = None;
        let mut zeros = 0;
        loop {
            let at = r.offset();
            match r.read_borrowed(1 << 20) {
                Ok([]) => break,
                // Pages past the new end read as zeros (the SIGBUS is caught)...
                Ok(b) => {
                    if at >= 1 << 20 {
                        assert!(b.iter().all(|&x| x == 0));
                        zeros += b.len();
                    }
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(zeros > 0);
        // ... and the range ends in an error naming the file, never in success.
        let err = err.expect("a truncated file must fail").to_string();
        assert!(r.window.is_none());
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("changed while being read"), "{err}");
    }

    #[test]
    fn a_file_written_while_mapped_is_an_error() {
        let len = 3 << 20;
        let (_d, path, _data, mut r) = mapped_reader(len);
        assert!(!r.read_borrowed(4096).unwrap().is_empty());
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xff], 2 << 20).unwrap();
        drop(f);
        let err = loop {
            match r.read_borrowed(1 << 20) {
                Ok([]) => panic!("a changed file must fail"),
                Ok(_) => {}
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("changed while being read"), "{err}");
        // A file that is not regular is read with pread (here: nothing to map).
        let small = RangeReader::new(
            Arc::new(InputFile::open(&path).unwrap()),
            0,
            MAP_MIN - 1,
            1 << 20,
        )
        .unwrap();
        assert!(!small.mapped);
    }
}
