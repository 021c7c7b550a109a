//! Streaming a column that holds references (see the parent module): its pieces in
//! order, inline ones from the spill, referenced ones read again from the input files
//! through a window. Every record holding a referenced value is read again whole (the
//! bytes between its values too) and its CRC32C compared with the one the first read
//! verified, before the stream reports its end.

use super::{Buffered, Spill, INLINE, PIECE, WINDOW};
use crate::error::{Error, Result};
use crate::formats::io::{InputFile, RangeReader};
use std::sync::Arc;

/// The piece being streamed.
struct Piece {
    shard: u32,
    /// File offset of the next referenced byte (inline pieces: unused).
    offset: u64,
    left: u64,
    /// Whether its record is checked (its bytes feed [`Pieces::check`]).
    checked: bool,
}

/// A record holding referenced values, being checked: every byte of it is read again
/// (the values as they stream out, the bytes between them as the stream passes them)
/// and its CRC32C compared with the one the first read verified.
struct Check {
    shard: u32,
    /// File offset of the record's data.
    start: u64,
    len: u64,
    crc: u32,
    /// File offset up to which the record has been read again.
    pos: u64,
    seen: u32,
}

/// A column holding references: its pieces in order, inline ones from the spill,
/// referenced ones from the input files.
pub(super) struct Pieces<'a> {
    spill: &'a Spill,
    inline: Buffered<'a>,
    pieces: Buffered<'a>,
    /// Bytes still to drop from the front (a range's start).
    skip: u64,
    left: u64,
    cur: Option<Piece>,
    check: Option<Check>,
    /// The shard being read, and a reader positioned in it.
    reader: Option<(u32, RangeReader)>,
}

impl<'a> Pieces<'a> {
    /// Column `inline` with its `pieces`, from byte `skip`, at most `left` bytes.
    pub(super) fn new(
        spill: &'a Spill,
        inline: Buffered<'a>,
        pieces: Buffered<'a>,
        skip: u64,
        left: u64,
    ) -> Self {
        Pieces {
            spill,
            inline,
            pieces,
            skip,
            left,
            cur: None,
            check: None,
            reader: None,
        }
    }

    fn next_piece(&mut self) -> Result<bool> {
        let mut p = [0u8; PIECE];
        if !self.pieces.read_exact(&mut p)? {
            return Ok(false);
        }
        let word = |r: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(&p[r]);
            u64::from_le_bytes(b)
        };
        let (shard, crc, rec, rec_len, rel, len) = (
            word(0..4) as u32,
            word(4..8) as u32,
            word(8..16),
            word(16..20),
            word(20..24),
            word(24..32),
        );
        let offset = rec.saturating_add(rel);
        let checked = shard != INLINE && rec_len > 0;
        if shard != INLINE {
            let same = matches!(&self.check,
                Some(c) if c.shard == shard && c.start == rec && c.pos <= offset);
            if !same {
                self.finish_check()?;
                if checked {
                    self.check = Some(Check {
                        shard,
                        start: rec,
                        len: rec_len,
                        crc,
                        pos: rec,
                        seen: 0,
                    });
                }
            }
            if let Some(c) = self.check.as_mut().filter(|_| checked) {
                crc_to(&mut self.reader, self.spill, c, offset)?;
            }
        }
        self.cur = Some(Piece {
            shard,
            offset,
            left: len,
            checked,
        });
        Ok(true)
    }

    /// Reads the rest of the record being checked and compares its CRC32C.
    fn finish_check(&mut self) -> Result<()> {
        let Some(mut c) = self.check.take() else {
            return Ok(());
        };
        let end = c.start.saturating_add(c.len);
        crc_to(&mut self.reader, self.spill, &mut c, end)?;
        if c.seen != c.crc {
            return Err(Error::corrupt(
                self.spill.input(c.shard),
                format!(
                    "the record at byte {} changed while the file was being read (its \
                     CRC32C differs from the first read)",
                    c.start.saturating_sub(super::super::framing::HEADER)
                ),
            ));
        }
        Ok(())
    }

    /// The next up to `max` bytes (`max > 0`) of the column, borrowed from the spill's
    /// or the input's read buffer; empty at the end (after every record is checked).
    pub(super) fn next_slice(&mut self, max: usize) -> Result<&[u8]> {
        loop {
            let max = max.min(usize::try_from(self.left).unwrap_or(usize::MAX));
            if max == 0 {
                if self.left == 0 {
                    self.verify_rest()?;
                }
                return Ok(&[]);
            }
            let Some(p) = self.cur.as_mut() else {
                if !self.next_piece()? {
                    self.finish_check()?;
                    return Ok(&[]);
                }
                continue;
            };
            if p.left == 0 {
                self.cur = None;
                continue;
            }
            let want = if self.skip > 0 {
                usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(1 << 20)
            } else {
                max
            };
            let want = want.min(usize::try_from(p.left).unwrap_or(usize::MAX));
            let got: &[u8] = if p.shard == INLINE {
                let got = self.inline.borrow(want)?;
                if got.is_empty() {
                    return Err(self.spill.damaged("the temporary spill file is short"));
                }
                got
            } else {
                let got = read_at(
                    &mut self.reader,
                    self.spill,
                    p.shard,
                    p.offset,
                    p.left,
                    want,
                )?;
                if let Some(c) = self.check.as_mut().filter(|_| p.checked) {
                    c.seen = crc32c::crc32c_append(c.seen, got);
                    c.pos += got.len() as u64;
                }
                p.offset += got.len() as u64;
                got
            };
            p.left -= got.len() as u64;
            if self.skip > 0 {
                self.skip -= got.len() as u64;
                continue;
            }
            self.left -= got.len() as u64;
            // Re-borrow: the loop above may not return a borrow it continues past.
            let n = got.len();
            return Ok(self.last(n));
        }
    }

    /// At the end of a range that stops inside a column: reads the rest of the record
    /// being checked, so that it is compared before the stream reports its end.
    fn verify_rest(&mut self) -> Result<()> {
        self.cur = None;
        self.finish_check()
    }

    /// The `n` bytes just taken by [`Pieces::next_slice`], from the buffer they are in.
    fn last(&self, n: usize) -> &[u8] {
        match &self.cur {
            Some(p) if p.shard != INLINE => match &self.reader {
                Some((_, r)) => r.last_borrowed(n),
                None => &[],
            },
            _ => self.inline.last(n),
        }
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let got = self.next_slice(buf.len() - done)?;
            if got.is_empty() {
                break;
            }
            buf[done..done + got.len()].copy_from_slice(got);
            done += got.len();
        }
        Ok(done)
    }
}

/// Reads record `c` again from where it was read to up to file offset `upto`, feeding
/// its CRC32C.
fn crc_to(
    reader: &mut Option<(u32, RangeReader)>,
    spill: &Spill,
    c: &mut Check,
    upto: u64,
) -> Result<()> {
    while c.pos < upto {
        let left = upto - c.pos;
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(WINDOW);
        let got = read_at(reader, spill, c.shard, c.pos, left, want)?;
        c.seen = crc32c::crc32c_append(c.seen, got);
        c.pos += got.len() as u64;
    }
    Ok(())
}

/// The next up to `want` bytes (`want > 0`) of shard `shard` from `offset`, of the
/// `len` still to read there, borrowed from the reader's window.
fn read_at<'r>(
    reader: &'r mut Option<(u32, RangeReader)>,
    spill: &Spill,
    shard: u32,
    offset: u64,
    len: u64,
    want: usize,
) -> Result<&'r [u8]> {
    let got = reader_at(reader, spill, shard, offset, len)?.read_borrowed(want)?;
    if got.is_empty() {
        return Err(Error::corrupt(
            spill.input(shard),
            format!("the file ends before byte {offset} (did it change?)"),
        ));
    }
    Ok(got)
}

/// A reader of shard `shard` positioned at `offset`, reusing `reader` when it is that
/// shard's and not past `offset`.
fn reader_at<'r>(
    reader: &'r mut Option<(u32, RangeReader)>,
    spill: &Spill,
    shard: u32,
    offset: u64,
    len: u64,
) -> Result<&'r mut RangeReader> {
    let reuse = matches!(reader, Some((s, r)) if *s == shard && r.offset() <= offset);
    if !reuse {
        let path = spill
            .inputs
            .get(shard as usize)
            .ok_or_else(|| spill.damaged("the temporary spill file is damaged"))?;
        let file = Arc::new(InputFile::open(path)?);
        let flen = file.len();
        file.check_range(offset, len, "a value read again")?;
        *reader = Some((
            shard,
            RangeReader::new(file, offset, flen - offset, WINDOW)?,
        ));
    }
    match reader {
        Some((_, r)) => {
            r.skip_to(offset)?;
            Ok(r)
        }
        None => Err(spill.damaged("internal error: no reader")),
    }
}
