//! Streaming a column that holds references (see the parent module): its pieces in
//! order, inline ones from the spill, referenced ones read again from the input files
//! through a window, each checked against the CRC32C of its first read.

use super::{Buffered, Spill, INLINE, PIECE, WINDOW};
use crate::error::{Error, Result};
use crate::formats::io::{InputFile, RangeReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The piece being streamed.
struct Piece {
    shard: u32,
    crc: u32,
    /// Where the referenced bytes start (for messages).
    start: u64,
    offset: u64,
    left: u64,
    /// CRC32C of the referenced bytes streamed so far.
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
        self.cur = Some(Piece {
            shard: word(0..4) as u32,
            crc: word(4..8) as u32,
            start: word(8..16),
            offset: word(8..16),
            left: word(16..24),
            seen: 0,
        });
        Ok(true)
    }

    /// The next up to `max` bytes (`max > 0`) of the column, borrowed from the spill's
    /// or the input's read buffer; empty at the end.
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
                    return Ok(&[]);
                }
                continue;
            };
            if p.left == 0 {
                if p.shard != INLINE && p.seen != p.crc {
                    return Err(p.changed(self.spill));
                }
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
                let r = reader_at(&mut self.reader, self.spill, p.shard, p.offset, p.left)?;
                let got = r.read_borrowed(want)?;
                if got.is_empty() {
                    return Err(Error::corrupt(
                        r.file().path(),
                        format!("the file ends before byte {} (did it change?)", p.offset),
                    ));
                }
                p.seen = crc32c::crc32c_append(p.seen, got);
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

    /// At the end of a range that stops inside a referenced value: reads the rest of
    /// the value too, so that its CRC32C is checked before the stream reports its end.
    fn verify_rest(&mut self) -> Result<()> {
        let Some(p) = self.cur.as_mut().filter(|p| p.shard != INLINE) else {
            return Ok(());
        };
        while p.left > 0 {
            let r = reader_at(&mut self.reader, self.spill, p.shard, p.offset, p.left)?;
            let want = usize::try_from(p.left).unwrap_or(usize::MAX).min(WINDOW);
            let got = r.read_borrowed(want)?;
            if got.is_empty() {
                return Err(Error::corrupt(
                    r.file().path(),
                    format!("the file ends before byte {} (did it change?)", p.offset),
                ));
            }
            p.seen = crc32c::crc32c_append(p.seen, got);
            p.offset += got.len() as u64;
            p.left -= got.len() as u64;
        }
        if p.seen != p.crc {
            return Err(p.changed(self.spill));
        }
        self.cur = None;
        Ok(())
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

impl Piece {
    /// The error for referenced bytes whose second read differs from the first.
    fn changed(&self, spill: &Spill) -> Error {
        let shown = spill.inputs.get(self.shard as usize);
        Error::corrupt(
            shown.map_or(Path::new("?"), PathBuf::as_path),
            format!(
                "the {} bytes at offset {} changed while the file was being read (their \
                 CRC32C differs from the first read)",
                self.offset - self.start,
                self.start
            ),
        )
    }
}
