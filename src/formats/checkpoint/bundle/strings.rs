//! DT_STRING tensors in a data shard (tf-formats.md §2.6).

use super::read::crc_mismatch;
use super::*;
use crate::formats::io::{unmask_crc, RangeReader};

/// Facts from the pass over a string tensor's lengths.
#[derive(Clone, Copy, Debug)]
struct LengthScan {
    max_len: u64,
    /// File offset of the stored length checksum (end of the lengths).
    lengths_end: u64,
    /// The 4 stored checksum bytes, as found.
    stored: [u8; 4],
    /// File offset of the first string byte.
    data_start: u64,
    /// Sum of the lengths.
    data_len: u64,
    /// CRC32C over the lengths (as uint32/uint64 LE).
    len_crc: u32,
}

/// A DT_STRING tensor in a data shard (§2.6): varint64 lengths, a 4-byte masked
/// checksum of the lengths, then the bytes. Streams with two cursors, one over the
/// lengths and one over the bytes, so memory does not depend on the element count.
pub struct BundleStrings {
    file: Arc<InputFile>,
    tensor: String,
    label: String,
    start: u64,
    size: u64,
    n: u64,
    verify: bool,
    masked_crc: u32,
    cap: usize,
    scan: Option<LengthScan>,
    cursors: Option<(RangeReader, RangeReader)>,
    next: u64,
    len_crc: u32,
    crc: u32,
    done: bool,
}

impl BundleStrings {
    pub(super) fn new(
        file: Arc<InputFile>,
        span: &Span,
        n: u64,
        tensor: &str,
        label: &str,
        verify: bool,
        cap: usize,
    ) -> Self {
        BundleStrings {
            file,
            tensor: tensor.to_string(),
            label: label.to_string(),
            start: span.offset,
            size: span.size,
            n,
            verify,
            masked_crc: span.masked_crc,
            cap,
            scan: None,
            cursors: None,
            next: 0,
            len_crc: 0,
            crc: 0,
            done: false,
        }
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            file: self.file.path().to_path_buf(),
            tensor: Some(self.tensor.clone()),
            detail: format!("{}{detail}", self.label),
        }
    }

    /// Appends one length to a running CRC the way TF does: as uint32 LE, or uint64
    /// LE when it does not fit.
    fn extend_len_crc(crc: u32, len: u64) -> u32 {
        match u32::try_from(len) {
            Ok(l) => crc32c::crc32c_append(crc, &l.to_le_bytes()),
            Err(_) => crc32c::crc32c_append(crc, &len.to_le_bytes()),
        }
    }

    fn scan_lengths(&mut self) -> Result<LengthScan> {
        if let Some(s) = self.scan {
            return Ok(s);
        }
        let mut r = RangeReader::new(self.file.clone(), self.start, self.size, self.cap)?;
        let (mut crc, mut max, mut total) = (0u32, 0u64, 0u64);
        for i in 0..self.n {
            let len = r.read_varint64()?.ok_or_else(|| {
                self.corrupt(format!(
                    "the length of string {i} (of {}) is malformed or runs past the tensor's \
                     {} bytes",
                    self.n, self.size
                ))
            })?;
            if self.verify {
                crc = Self::extend_len_crc(crc, len);
            }
            max = max.max(len);
            total = total
                .checked_add(len)
                .ok_or_else(|| self.corrupt("string lengths overflow".to_string()))?;
        }
        let lengths_end = r.offset();
        let mut stored = [0u8; 4];
        if !r.read_exact(&mut stored)? {
            return Err(self.corrupt(format!(
                "the string length checksum is missing: the lengths end at byte {lengths_end}, \
                 less than 4 bytes before the end of the tensor's data"
            )));
        }
        if self.verify && unmask_crc(u32::from_le_bytes(stored)) != crc {
            return Err(crc_mismatch(
                &self.file,
                &self.tensor,
                &self.label,
                "string length ",
                (self.start, lengths_end),
                unmask_crc(u32::from_le_bytes(stored)),
            ));
        }
        let data_start = r.offset();
        if total > r.remaining() {
            return Err(self.corrupt(format!(
                "the string lengths add up to {total} bytes, but only {} bytes follow them",
                r.remaining()
            )));
        }
        let s = LengthScan {
            max_len: max,
            lengths_end,
            stored,
            data_start,
            data_len: total,
            len_crc: crc,
        };
        self.scan = Some(s);
        Ok(s)
    }
}

impl StringRead for BundleStrings {
    fn max_len(&mut self) -> Result<u64> {
        Ok(self.scan_lengths()?.max_len)
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        if self.done {
            return Ok(false);
        }
        let scan = self.scan_lengths()?;
        if self.cursors.is_none() {
            let lens = RangeReader::new(
                self.file.clone(),
                self.start,
                scan.lengths_end - self.start,
                self.cap,
            )?;
            let data =
                RangeReader::new(self.file.clone(), scan.data_start, scan.data_len, self.cap)?;
            self.cursors = Some((lens, data));
            self.crc = crc32c::crc32c_append(scan.len_crc, &scan.stored);
        }
        if self.next == self.n {
            if self.verify {
                if self.len_crc != scan.len_crc {
                    return Err(
                        self.corrupt("the string lengths changed while being read".to_string())
                    );
                }
                let expect = unmask_crc(self.masked_crc);
                if expect != self.crc {
                    return Err(crc_mismatch(
                        &self.file,
                        &self.tensor,
                        &self.label,
                        "",
                        (self.start, self.start + self.size),
                        expect,
                    ));
                }
            }
            self.done = true;
            return Ok(false);
        }
        let i = self.next;
        let Some((lens, data)) = self.cursors.as_mut() else {
            return Ok(false);
        };
        let len = lens.read_varint64()?;
        let remaining = data.remaining();
        let Some(len) = len.filter(|&l| l <= remaining) else {
            return Err(self.corrupt(format!(
                "string {i} has a malformed length or one longer than the {remaining} bytes left \
                 (did the file change while being read?)"
            )));
        };
        let l = usize::try_from(len)
            .map_err(|_| self.corrupt(format!("string {i} of {len} bytes is too large")))?;
        out.resize(l, 0);
        let Some((_, data)) = self.cursors.as_mut() else {
            return Ok(false);
        };
        if !data.read_exact(out)? {
            return Err(self.corrupt(format!("string {i} runs past the tensor's data")));
        }
        if self.verify {
            self.len_crc = Self::extend_len_crc(self.len_crc, len);
            self.crc = crc32c::crc32c_append(self.crc, out);
        }
        self.next += 1;
        Ok(true)
    }
}

/// One string slice: its [`BundleStrings`] is made when needed and dropped after the
/// length pass of `max_len` and at its end, so only the slice being read holds buffers.
pub(super) struct LazyStrings<'a> {
    pub(super) file: Arc<InputFile>,
    pub(super) span: &'a Span,
    pub(super) n: u64,
    pub(super) tensor: &'a str,
    pub(super) text: &'a str,
    pub(super) verify: bool,
    pub(super) cap: usize,
    pub(super) open: Option<BundleStrings>,
    pub(super) max_len: Option<u64>,
    pub(super) done: bool,
}

impl LazyStrings<'_> {
    fn make(&self) -> BundleStrings {
        let label = format!("slice `{}`: ", self.text);
        BundleStrings::new(
            self.file.clone(),
            self.span,
            self.n,
            self.tensor,
            &label,
            self.verify,
            self.cap,
        )
    }
}

impl StringRead for LazyStrings<'_> {
    fn max_len(&mut self) -> Result<u64> {
        if let Some(m) = self.max_len {
            return Ok(m);
        }
        let m = match &mut self.open {
            Some(s) => s.max_len()?,
            None => self.make().max_len()?,
        };
        self.max_len = Some(m);
        Ok(m)
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        if self.done {
            out.clear();
            return Ok(false);
        }
        if self.open.is_none() {
            self.open = Some(self.make());
        }
        let more = match &mut self.open {
            Some(s) => s.next_into(out)?,
            None => false,
        };
        if !more {
            self.open = None;
            self.done = true;
        }
        Ok(more)
    }
}
