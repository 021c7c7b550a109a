//! TensorFlow's record framing (docs/formats/tfrecord.md §1): `u64 length`,
//! `masked_crc32c(length)`, `data`, `masked_crc32c(data)`, all little-endian.

use super::compression::{read_full, Compression};
use crate::error::{Error, Result};
use crate::formats::io::unmask_crc;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Bytes of a record header (`kHeaderSize`).
pub const HEADER: u64 = 12;
/// Bytes of a record footer (`kFooterSize`).
pub const FOOTER: u64 = 4;
/// Largest record accepted: protobuf's 2 GiB message limit.
pub const MAX_RECORD: u64 = 2 << 30;

/// Bytes of the stream buffered; a record that fits is handed out from the buffer.
const BUFFER: usize = 256 << 10;

/// Reads the records of one (decompressed) stream, checking both CRCs.
pub struct RecordReader {
    inner: BufReader<Box<dyn Read + Send>>,
    /// Bytes of the buffer handed out by the last [`RecordReader::next_record`].
    lent: usize,
    /// The last record's CRC32C, as verified.
    crc: Option<u32>,
    path: PathBuf,
    compression: Compression,
    /// File length, for an uncompressed file (bounds a record's claimed length).
    file_len: Option<u64>,
    verify: bool,
    index: u64,
    offset: u64,
}

impl RecordReader {
    /// Reads records from `inner`, the decompressed stream of `path`.
    pub fn new(
        inner: Box<dyn Read + Send>,
        path: &Path,
        compression: Compression,
        file_len: Option<u64>,
        verify: bool,
    ) -> Self {
        RecordReader {
            inner: BufReader::with_capacity(BUFFER, inner),
            lent: 0,
            crc: None,
            path: path.to_path_buf(),
            compression,
            file_len,
            verify,
            index: 0,
            offset: 0,
        }
    }

    /// Index of the next record in this file.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// An error about record `index` at `offset` of this file.
    pub fn error_at(&self, index: u64, offset: u64, what: impl std::fmt::Display) -> Error {
        let place = if self.compression == Compression::None {
            String::new()
        } else {
            format!(" of the {}-decompressed stream", self.compression.name())
        };
        Error::corrupt(
            &self.path,
            format!("record {index} at byte {offset}{place}: {what}"),
        )
    }

    fn read_err(&self, e: io::Error, what: &str) -> Error {
        match e.kind() {
            io::ErrorKind::InvalidData
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::UnexpectedEof => self.error_at(
                self.index,
                self.offset,
                format!(
                    "{} data is damaged while reading the {what}: {e}",
                    self.compression.name()
                ),
            ),
            _ => Error::io(&self.path, e),
        }
    }

    /// The next record's data, borrowed from the read buffer when the whole record is
    /// in it (else read into `buf`), with its CRC32C as verified (`None` with
    /// `--no-verify`); `None` at the end of the stream. The same checks and errors as
    /// [`RecordReader::next_into`].
    pub fn next_record<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
    ) -> Result<Option<(&'a [u8], Option<u32>)>> {
        self.release();
        if let Some(n) = self
            .buffered_record()
            .map_err(|e| self.read_err(e, "header"))?
        {
            self.lent = n;
            let data = &self.inner.buffer()[HEADER as usize..n - FOOTER as usize];
            return Ok(Some((data, self.crc)));
        }
        Ok(if self.next_into(buf)? {
            Some((&buf[..], self.crc))
        } else {
            None
        })
    }

    fn release(&mut self) {
        if self.lent > 0 {
            self.inner.consume(self.lent);
            self.lent = 0;
        }
    }

    /// The length (header, data and footer) of the next record if it lies whole in the
    /// read buffer and passes every check; `None` sends the caller to the reading path,
    /// which reports whatever is wrong.
    fn buffered_record(&mut self) -> io::Result<Option<usize>> {
        let avail = self.inner.fill_buf()?;
        let Some(head) = avail.get(..HEADER as usize) else {
            return Ok(None);
        };
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&head[..8]);
        let mut crc4 = [0u8; 4];
        crc4.copy_from_slice(&head[8..]);
        let len = u64::from_le_bytes(len8);
        let Some(need) = usize::try_from(len)
            .ok()
            .filter(|_| len <= MAX_RECORD)
            .and_then(|l| l.checked_add((HEADER + FOOTER) as usize))
            .filter(|&n| n <= avail.len())
        else {
            return Ok(None);
        };
        if unmask_crc(u32::from_le_bytes(crc4)) != crc32c::crc32c(&len8) {
            return Ok(None);
        }
        if let Some(file_len) = self.file_len {
            if need as u64 > file_len.saturating_sub(self.offset) {
                return Ok(None);
            }
        }
        let data = &avail[HEADER as usize..need - FOOTER as usize];
        let mut foot = [0u8; 4];
        foot.copy_from_slice(&avail[need - FOOTER as usize..need]);
        let crc = unmask_crc(u32::from_le_bytes(foot));
        if self.verify && crc != crc32c::crc32c(data) {
            return Ok(None);
        }
        self.crc = self.verify.then_some(crc);
        self.index += 1;
        self.offset += need as u64;
        Ok(Some(need))
    }

    /// Replaces `buf` with the next record's data; `Ok(false)` at the end of the
    /// stream (which must fall on a record boundary).
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        self.release();
        let mut head = [0u8; HEADER as usize];
        let got = read_full(&mut self.inner, &mut head).map_err(|e| self.read_err(e, "header"))?;
        if got == 0 {
            return Ok(false);
        }
        if got < head.len() {
            return Err(self.error_at(
                self.index,
                self.offset,
                format!("truncated: the header needs 12 bytes, the stream ends after {got}"),
            ));
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&head[..8]);
        let mut crc4 = [0u8; 4];
        crc4.copy_from_slice(&head[8..]);
        if unmask_crc(u32::from_le_bytes(crc4)) != crc32c::crc32c(&len8) {
            let hint = if self.offset == 0 {
                " (is this a TFRecord file? try --compression)"
            } else {
                ""
            };
            return Err(self.error_at(
                self.index,
                self.offset,
                format!("corrupted: the length's CRC32C does not match{hint}"),
            ));
        }
        let len = u64::from_le_bytes(len8);
        let need = len.saturating_add(HEADER + FOOTER);
        if let Some(file_len) = self.file_len {
            let left = file_len.saturating_sub(self.offset);
            if need > left {
                return Err(self.error_at(
                    self.index,
                    self.offset,
                    format!(
                        "truncated: the record claims {len} bytes of data but only {} bytes \
                         of the file remain after its header",
                        left.saturating_sub(HEADER)
                    ),
                ));
            }
        }
        if len > MAX_RECORD {
            return Err(self.error_at(
                self.index,
                self.offset,
                format!("the record claims {len} bytes, more than protobuf's 2 GiB limit"),
            ));
        }
        buf.clear();
        buf.reserve(len.min(1 << 20) as usize);
        let got = (&mut self.inner)
            .take(len)
            .read_to_end(buf)
            .map_err(|e| self.read_err(e, "data"))?;
        let mut foot = [0u8; 4];
        let got_foot = if got as u64 == len {
            read_full(&mut self.inner, &mut foot).map_err(|e| self.read_err(e, "data CRC"))?
        } else {
            0
        };
        if got as u64 != len || got_foot < 4 {
            return Err(self.error_at(
                self.index,
                self.offset,
                format!(
                    "truncated: the record needs {len} bytes of data and a 4-byte CRC, the \
                     stream ends after {} of them",
                    got + got_foot
                ),
            ));
        }
        let crc = unmask_crc(u32::from_le_bytes(foot));
        if self.verify && crc != crc32c::crc32c(buf) {
            return Err(self.error_at(
                self.index,
                self.offset,
                "corrupted: the data's CRC32C does not match",
            ));
        }
        self.crc = self.verify.then_some(crc);
        self.index += 1;
        self.offset += need;
        Ok(true)
    }

    /// Offset of the next record's header in the (decompressed) stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// Frames `data` as one record (for tests, fuzzing and fixtures of damage).
pub fn frame(data: &[u8]) -> Vec<u8> {
    use crate::formats::io::mask_crc;
    let mut out = Vec::with_capacity(data.len() + 16);
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&mask_crc(crc32c::crc32c(&len)).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&mask_crc(crc32c::crc32c(data)).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: Vec<u8>, verify: bool) -> RecordReader {
        let len = bytes.len() as u64;
        RecordReader::new(
            Box::new(io::Cursor::new(bytes)),
            Path::new("d.tfrecord"),
            Compression::None,
            Some(len),
            verify,
        )
    }

    fn all(bytes: Vec<u8>, verify: bool) -> Result<Vec<Vec<u8>>> {
        let mut r = reader(bytes, verify);
        let mut out = Vec::new();
        let mut b = Vec::new();
        while r.next_into(&mut b)? {
            out.push(b.clone());
        }
        Ok(out)
    }

    #[test]
    fn reads_framed_records() {
        let mut f = frame(b"abc");
        f.extend(frame(b""));
        f.extend(frame(&[0u8; 1000]));
        let recs = all(f, true).unwrap();
        assert_eq!(recs, vec![b"abc".to_vec(), vec![], vec![0u8; 1000]]);
    }

    #[test]
    fn every_truncation_is_an_error_naming_record_and_offset() {
        let mut f = frame(b"hello");
        let second = f.len();
        f.extend(frame(b"world!"));
        for cut in 1..f.len() {
            if cut == second {
                assert_eq!(all(f[..cut].to_vec(), true).unwrap().len(), 1);
                continue;
            }
            let msg = all(f[..cut].to_vec(), true).unwrap_err().to_string();
            let (idx, off) = if cut < second { (0, 0) } else { (1, second) };
            assert!(
                msg.contains(&format!("record {idx} at byte {off}: truncated")),
                "{cut}: {msg}"
            );
        }
    }

    #[test]
    fn flipped_bytes_are_caught() {
        let f = frame(b"payload");
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x10;
            let r = all(g, true);
            assert!(r.is_err(), "flip at {i} passed");
        }
        // --no-verify skips the data CRC only.
        let mut g = f.clone();
        g[13] ^= 1;
        assert!(all(g.clone(), false).is_ok());
        g[0] ^= 1;
        assert!(all(g, false).is_err());
    }

    #[test]
    fn a_huge_claimed_length_allocates_nothing() {
        use crate::formats::io::mask_crc;
        let len = (1u64 << 60).to_le_bytes();
        let mut f = len.to_vec();
        f.extend_from_slice(&mask_crc(crc32c::crc32c(&len)).to_le_bytes());
        f.extend_from_slice(b"xx");
        let msg = all(f.clone(), true).unwrap_err().to_string();
        assert!(msg.contains("claims 1152921504606846976 bytes"), "{msg}");
        // Without a file length (a compressed stream) the 2 GiB limit applies.
        let mut r = RecordReader::new(
            Box::new(io::Cursor::new(f)),
            Path::new("d.gz"),
            Compression::Gzip,
            None,
            true,
        );
        let msg = r.next_into(&mut Vec::new()).unwrap_err().to_string();
        assert!(msg.contains("of the gzip-decompressed stream"), "{msg}");
        assert!(msg.contains("2 GiB"), "{msg}");
    }
}
