//! The LevelDB-style table format of V2 `.index` files and V1 checkpoints
//! (tf-formats.md §1): a 48-byte footer with the magic number and two block handles,
//! blocks with a 5-byte trailer (type byte + masked CRC32C of contents ‖ type), raw
//! snappy compression (type 1), prefix-compressed keys and a restart array.
//!
//! [`Table`] validates the footer and the index block when opened; data blocks are
//! read and verified one at a time while [`Table::scan`] walks every `(key, value)` in
//! key order, or when [`Table::get`] looks one key up. Nothing is allocated from a size
//! taken from the file before that size is checked against the file's length, and keys
//! must be strictly increasing. The reader knows nothing of what keys and values mean.

use crate::error::{Ctx, Result};
use crate::formats::io::{decode_varint32, decode_varint64, unmask_crc, InputFile};
use std::path::Path;

/// Length of the table footer (`Footer::kEncodedLength`, §1.2).
pub const FOOTER_LEN: u64 = 48;
/// `kTableMagicNumber`, stored as fixed32 low then fixed32 high (§1.2).
pub const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Bytes after each block: one type byte and a masked CRC32C (§1.4).
pub const BLOCK_TRAILER_LEN: u64 = 5;
/// Block type byte: stored as is.
const NO_COMPRESSION: u8 = 0;
/// Block type byte: raw snappy.
const SNAPPY_COMPRESSION: u8 = 1;
/// No snappy block can expand by more than this factor (a 3-byte copy yields at most 64
/// bytes); a larger claim is damage, and is refused before allocating.
const MAX_SNAPPY_EXPANSION: u64 = 32;

/// Where a block lives: its offset and the size of its contents, trailer excluded (§1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHandle {
    /// Byte offset of the block in the file.
    pub offset: u64,
    /// Bytes of block contents (the 5-byte trailer follows them).
    pub size: u64,
}

impl BlockHandle {
    /// Decodes a handle (two varint64s) from the start of `buf`; returns it and the
    /// bytes used. Bytes after the handle are ignored, as TF does.
    pub fn decode(buf: &[u8]) -> Option<(BlockHandle, usize)> {
        let (offset, a) = decode_varint64(buf)?;
        let (size, b) = decode_varint64(buf.get(a..)?)?;
        Some((BlockHandle { offset, size }, a + b))
    }
}

/// True if `path` is a file whose last 8 bytes are the table magic number.
pub fn has_table_magic(path: &Path) -> Result<bool> {
    let file = InputFile::open(path)?;
    if file.len() < FOOTER_LEN {
        return Ok(false);
    }
    let mut magic = [0u8; 8];
    file.read_exact_at(file.len() - 8, &mut magic)?;
    Ok(u64::from_le_bytes(magic) == TABLE_MAGIC)
}

/// An opened table: the footer and index block, read and verified.
#[derive(Debug)]
pub struct Table {
    file: InputFile,
    /// The index block: one (separator key, data block handle) per data block.
    index: Vec<(Vec<u8>, BlockHandle)>,
}

impl Table {
    /// Opens the table file at `path`.
    pub fn open(path: &Path) -> Result<Table> {
        Table::from_file(InputFile::open(path)?)
    }

    /// Reads and verifies the footer and index block of `file`.
    pub fn from_file(file: InputFile) -> Result<Table> {
        let ctx = Ctx::file(file.path());
        let len = file.len();
        if len < FOOTER_LEN {
            return Err(ctx.corrupt(format!(
                "file is too short to be a table ({len} bytes; the footer alone is \
                 {FOOTER_LEN})"
            )));
        }
        let footer_at = len - FOOTER_LEN;
        let mut footer = [0u8; FOOTER_LEN as usize];
        file.read_exact_at(footer_at, &mut footer)?;
        let (handles, magic) = footer.split_at(40);
        let magic = u64::from_le_bytes(magic.try_into().unwrap_or([0; 8]));
        if magic != TABLE_MAGIC {
            return Err(ctx.corrupt(format!(
                "not a checkpoint table: bad magic number {magic:#018x} at byte {} \
                 (expected {TABLE_MAGIC:#018x})",
                len - 8
            )));
        }
        let bad_footer = || {
            ctx.corrupt(format!(
                "malformed block handles in the footer at byte {footer_at}"
            ))
        };
        let (_metaindex, used) = BlockHandle::decode(handles).ok_or_else(bad_footer)?;
        let (index_handle, _) =
            BlockHandle::decode(handles.get(used..).unwrap_or(&[])).ok_or_else(bad_footer)?;
        let mut table = Table {
            file,
            index: Vec::new(),
        };
        let block = table.read_block(index_handle, "index block")?;
        let mut it = BlockIter::new(&block, &ctx, "index block", index_handle.offset)?;
        let mut index = Vec::new();
        while let Some((key, value)) = it.next_entry()? {
            let (handle, _) = BlockHandle::decode(&block[value]).ok_or_else(|| {
                ctx.corrupt(format!(
                    "index block at byte {}: malformed block handle for key {}",
                    index_handle.offset,
                    show_key(key)
                ))
            })?;
            index.push((key.to_vec(), handle));
        }
        table.index = index;
        Ok(table)
    }

    /// The table file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The table file's length in bytes.
    pub fn file_len(&self) -> u64 {
        self.file.len()
    }

    /// The data block handles, in key order.
    pub fn block_handles(&self) -> impl Iterator<Item = BlockHandle> + '_ {
        self.index.iter().map(|(_, h)| *h)
    }

    /// Every `(key, value)` of the table in key order, verifying each data block.
    pub fn scan(&self) -> TableScan<'_> {
        TableScan {
            table: self,
            next_block: 0,
            block: Vec::new(),
            block_offset: 0,
            pos: 0,
            limit: 0,
            key: Vec::new(),
            last_key: None,
            failed: false,
        }
    }

    /// The value stored under `key`, if any, reading only the one data block that can
    /// hold it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let i = self.index.partition_point(|(sep, _)| sep.as_slice() < key);
        let Some(&(_, handle)) = self.index.get(i) else {
            return Ok(None);
        };
        let ctx = Ctx::file(self.file.path());
        let block = self.read_block(handle, "data block")?;
        let mut it = BlockIter::new(&block, &ctx, "data block", handle.offset)?;
        while let Some((k, v)) = it.next_entry()? {
            match k.cmp(key) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Ok(Some(block[v].to_vec())),
                std::cmp::Ordering::Greater => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Reads block `h`, checks its trailer CRC and type, and decompresses it.
    fn read_block(&self, h: BlockHandle, what: &str) -> Result<Vec<u8>> {
        let ctx = Ctx::file(self.file.path());
        let blocks_end = self.file.len() - FOOTER_LEN;
        let end = h
            .size
            .checked_add(BLOCK_TRAILER_LEN)
            .and_then(|n| n.checked_add(h.offset));
        if end.is_none_or(|e| e > blocks_end) {
            return Err(ctx.corrupt(format!(
                "{what} handle (offset {}, size {}) points past the blocks, which end at \
                 byte {blocks_end}",
                h.offset, h.size
            )));
        }
        let mut raw = self
            .file
            .read_range(h.offset, h.size + BLOCK_TRAILER_LEN, what)?;
        let n = raw.len() - BLOCK_TRAILER_LEN as usize;
        let (contents_and_type, crc) = raw.split_at(n + 1);
        let stored = u32::from_le_bytes(crc.try_into().unwrap_or([0; 4]));
        let actual = crc32c::crc32c(contents_and_type);
        // Fuzz builds (`cargo fuzz` sets `--cfg fuzzing`) skip the block checksum so the
        // fuzzer reaches the block decoding behind it.
        if !cfg!(fuzzing) && unmask_crc(stored) != actual {
            return Err(ctx.corrupt(format!(
                "{what} at byte {}: block checksum mismatch (expected {:#010x})",
                h.offset,
                unmask_crc(stored)
            )));
        }
        let kind = contents_and_type.get(n).copied().unwrap_or(0);
        raw.truncate(n);
        match kind {
            NO_COMPRESSION => Ok(raw),
            SNAPPY_COMPRESSION => {
                let bad = |e: &dyn std::fmt::Display| {
                    ctx.corrupt(format!("{what} at byte {}: bad snappy data: {e}", h.offset))
                };
                let out_len = snap::raw::decompress_len(&raw).map_err(|e| bad(&e))?;
                let cap = (raw.len() as u64)
                    .saturating_mul(MAX_SNAPPY_EXPANSION)
                    .saturating_add(64);
                if out_len as u64 > cap {
                    return Err(ctx.corrupt(format!(
                        "{what} at byte {}: snappy data of {} bytes claims to expand to \
                         {out_len} bytes",
                        h.offset,
                        raw.len()
                    )));
                }
                snap::raw::Decoder::new()
                    .decompress_vec(&raw)
                    .map_err(|e| bad(&e))
            }
            other => Err(ctx.corrupt(format!(
                "{what} at byte {}: bad block type {other} (expected 0 = uncompressed or \
                 1 = snappy)",
                h.offset
            ))),
        }
    }
}

/// A full scan of a [`Table`]; see [`Table::scan`]. Yields owned `(key, value)` pairs;
/// stops after the first error.
pub struct TableScan<'t> {
    table: &'t Table,
    next_block: usize,
    block: Vec<u8>,
    block_offset: u64,
    pos: usize,
    limit: usize,
    key: Vec<u8>,
    last_key: Option<Vec<u8>>,
    failed: bool,
}

impl TableScan<'_> {
    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let ctx = Ctx::file(self.table.path());
        loop {
            if self.pos < self.limit {
                let value = next_entry(
                    &self.block,
                    &mut self.pos,
                    self.limit,
                    &mut self.key,
                    &ctx,
                    "data block",
                    self.block_offset,
                )?;
                if let Some(last) = &self.last_key {
                    if self.key <= *last {
                        return Err(ctx.corrupt(format!(
                            "data block at byte {}: key {} does not sort after the previous \
                             key {}",
                            self.block_offset,
                            show_key(&self.key),
                            show_key(last)
                        )));
                    }
                }
                self.last_key = Some(self.key.clone());
                return Ok(Some((self.key.clone(), self.block[value].to_vec())));
            }
            let Some(&(_, handle)) = self.table.index.get(self.next_block) else {
                return Ok(None);
            };
            self.next_block += 1;
            self.block = self.table.read_block(handle, "data block")?;
            self.block_offset = handle.offset;
            self.limit = entries_limit(&self.block, &ctx, "data block", handle.offset)?;
            self.pos = 0;
            self.key.clear();
        }
    }
}

impl Iterator for TableScan<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Validates a block's restart array (§1.5) and returns where its entries end.
/// A block with no restart points is empty, as in TF.
fn entries_limit(block: &[u8], ctx: &Ctx, what: &str, at: u64) -> Result<usize> {
    let fixed32 = |i: usize| -> Option<u32> {
        let b = block.get(i..i.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    };
    let Some(tail) = block.len().checked_sub(4) else {
        return Err(ctx.corrupt(format!(
            "{what} at byte {at}: {} bytes is too short for a block (at least 4)",
            block.len()
        )));
    };
    let num_restarts = fixed32(tail).unwrap_or(0) as usize;
    let max = tail / 4;
    if num_restarts > max {
        return Err(ctx.corrupt(format!(
            "{what} at byte {at}: claims {num_restarts} restart points but has room for at \
             most {max}"
        )));
    }
    if num_restarts == 0 {
        return Ok(0);
    }
    let limit = tail - 4 * num_restarts;
    for i in 0..num_restarts {
        let r = fixed32(limit + 4 * i).unwrap_or(0) as usize;
        let ok = if i == 0 { r == 0 } else { r < limit };
        if !ok {
            return Err(ctx.corrupt(format!(
                "{what} at byte {at}: restart point {i} is at byte {r}, outside the entries \
                 (bytes 0..{limit}{})",
                if i == 0 { "; the first must be 0" } else { "" }
            )));
        }
    }
    Ok(limit)
}

/// Decodes the entry at `*pos`, updating `key` in place (prefix compression) and
/// advancing `*pos`; returns the value's byte range within `block`.
fn next_entry(
    block: &[u8],
    pos: &mut usize,
    limit: usize,
    key: &mut Vec<u8>,
    ctx: &Ctx,
    what: &str,
    at: u64,
) -> Result<std::ops::Range<usize>> {
    let start = *pos;
    let bad = |why: String| {
        ctx.corrupt(format!(
            "{what} at byte {at}: bad entry at block offset {start}: {why}"
        ))
    };
    let region = block.get(start..limit).unwrap_or(&[]);
    let mut p = 0usize;
    let mut varint = |name: &str| -> Result<usize> {
        let (v, n) = decode_varint32(region.get(p..).unwrap_or(&[]))
            .ok_or_else(|| bad(format!("malformed {name} length")))?;
        p += n;
        Ok(v as usize)
    };
    let shared = varint("shared key")?;
    let unshared = varint("key")?;
    let value_len = varint("value")?;
    if shared > key.len() {
        return Err(bad(format!(
            "shares {shared} bytes with the previous key, which has only {}",
            key.len()
        )));
    }
    let avail = region.len() - p;
    let fits = unshared
        .checked_add(value_len)
        .is_some_and(|need| need <= avail);
    if !fits {
        return Err(bad(format!(
            "key of {unshared} and value of {value_len} bytes run past the entries \
             ({avail} bytes left)"
        )));
    }
    key.truncate(shared);
    key.extend_from_slice(&region[p..p + unshared]);
    let v0 = start + p + unshared;
    *pos = v0 + value_len;
    Ok(v0..v0 + value_len)
}

/// Iterates the entries of one decoded block.
struct BlockIter<'b> {
    block: &'b [u8],
    pos: usize,
    limit: usize,
    key: Vec<u8>,
    ctx: &'b Ctx,
    what: &'b str,
    at: u64,
}

impl<'b> BlockIter<'b> {
    fn new(block: &'b [u8], ctx: &'b Ctx, what: &'b str, at: u64) -> Result<Self> {
        let limit = entries_limit(block, ctx, what, at)?;
        Ok(BlockIter {
            block,
            pos: 0,
            limit,
            key: Vec::new(),
            ctx,
            what,
            at,
        })
    }

    /// The next key and its value's range in the block.
    fn next_entry(&mut self) -> Result<Option<(&[u8], std::ops::Range<usize>)>> {
        if self.pos >= self.limit {
            return Ok(None);
        }
        let v = next_entry(
            self.block,
            &mut self.pos,
            self.limit,
            &mut self.key,
            self.ctx,
            self.what,
            self.at,
        )?;
        Ok(Some((&self.key, v)))
    }
}

/// A key for error messages: printable ASCII as is, other bytes as `\xNN`.
pub fn show_key(key: &[u8]) -> String {
    let mut s = String::from("`");
    for &b in key {
        if (0x20..0x7f).contains(&b) && b != b'`' && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('`');
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::formats::io::mask_crc;
    use std::path::PathBuf;

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// Encodes one block with prefix compression and a restart every `interval`
    /// entries.
    pub fn build_block(entries: &[(&[u8], &[u8])], interval: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut restarts = Vec::new();
        let mut prev: &[u8] = &[];
        for (i, (k, v)) in entries.iter().enumerate() {
            let shared = if i % interval == 0 {
                restarts.push(out.len() as u32);
                0
            } else {
                prev.iter()
                    .zip(k.iter())
                    .take_while(|(a, b)| a == b)
                    .count()
            };
            put_varint(&mut out, shared as u64);
            put_varint(&mut out, (k.len() - shared) as u64);
            put_varint(&mut out, v.len() as u64);
            out.extend_from_slice(&k[shared..]);
            out.extend_from_slice(v);
            prev = k;
        }
        if restarts.is_empty() {
            restarts.push(0);
        }
        for r in &restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
        out
    }

    /// A tiny table writer: data blocks of `per_block` entries each, optional snappy.
    pub struct TableBuilder {
        /// Entries per data block.
        pub per_block: usize,
        /// Compress data blocks with raw snappy.
        pub snappy: bool,
    }

    fn push_block(out: &mut Vec<u8>, contents: &[u8], snappy: bool) -> BlockHandle {
        let (body, kind) = if snappy {
            (
                snap::raw::Encoder::new().compress_vec(contents).unwrap(),
                1u8,
            )
        } else {
            (contents.to_vec(), 0u8)
        };
        let h = BlockHandle {
            offset: out.len() as u64,
            size: body.len() as u64,
        };
        out.extend_from_slice(&body);
        out.push(kind);
        let mut c = body.clone();
        c.push(kind);
        out.extend_from_slice(&mask_crc(crc32c::crc32c(&c)).to_le_bytes());
        h
    }

    fn encode_handle(h: BlockHandle) -> Vec<u8> {
        let mut v = Vec::new();
        put_varint(&mut v, h.offset);
        put_varint(&mut v, h.size);
        v
    }

    impl TableBuilder {
        /// The table bytes for sorted `entries`.
        pub fn build(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut index: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for chunk in entries.chunks(self.per_block.max(1)) {
                let refs: Vec<(&[u8], &[u8])> = chunk
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_slice()))
                    .collect();
                let h = push_block(&mut out, &build_block(&refs, 16), self.snappy);
                let mut sep = chunk.last().unwrap().0.clone();
                sep.push(0xff);
                index.push((sep, encode_handle(h)));
            }
            let meta = push_block(&mut out, &build_block(&[], 16), false);
            let irefs: Vec<(&[u8], &[u8])> = index
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            let ih = push_block(&mut out, &build_block(&irefs, 1), false);
            let mut footer = encode_handle(meta);
            footer.extend(encode_handle(ih));
            footer.resize(40, 0);
            footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
            out.extend(footer);
            out
        }
    }

    pub fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    fn write(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.index");
        std::fs::write(&p, bytes).unwrap();
        (dir, p)
    }

    fn scan_bytes(bytes: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (_d, p) = write(bytes);
        let t = Table::open(&p)?;
        t.scan().collect()
    }

    fn sample() -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..40)
            .map(|i| kv(&format!("key/{i:03}"), &format!("value {i}")))
            .collect()
    }

    fn err_of(bytes: &[u8]) -> String {
        scan_bytes(bytes).unwrap_err().to_string()
    }

    #[test]
    fn reads_plain_and_snappy_tables() {
        for snappy in [false, true] {
            let want = sample();
            let bytes = TableBuilder {
                per_block: 7,
                snappy,
            }
            .build(&want);
            assert_eq!(scan_bytes(&bytes).unwrap(), want);
            let (_d, p) = write(&bytes);
            let t = Table::open(&p).unwrap();
            assert_eq!(t.block_handles().count(), 6);
            assert_eq!(t.get(b"key/013").unwrap(), Some(b"value 13".to_vec()));
            assert_eq!(t.get(b"key/0135").unwrap(), None);
            assert_eq!(t.get(b"zzz").unwrap(), None);
            assert_eq!(t.get(b"").unwrap(), None);
        }
        assert!(has_table_magic(
            &write(
                &TableBuilder {
                    per_block: 1,
                    snappy: false
                }
                .build(&[])
            )
            .1
        )
        .unwrap());
        assert_eq!(
            scan_bytes(
                &TableBuilder {
                    per_block: 1,
                    snappy: false
                }
                .build(&[])
            )
            .unwrap(),
            vec![]
        );
    }

    fn plain() -> Vec<u8> {
        TableBuilder {
            per_block: 100,
            snappy: false,
        }
        .build(&sample())
    }

    /// Rewrites the trailer CRC of the block that starts at `offset` with `size` bytes.
    fn fix_crc(bytes: &mut [u8], offset: usize, size: usize) {
        let crc = mask_crc(crc32c::crc32c(&bytes[offset..offset + size + 1]));
        bytes[offset + size + 1..offset + size + 5].copy_from_slice(&crc.to_le_bytes());
    }

    fn first_block_size(bytes: &[u8]) -> usize {
        let (_d, p) = write(bytes);
        Table::open(&p)
            .unwrap()
            .block_handles()
            .next()
            .unwrap()
            .size as usize
    }

    #[test]
    fn rejects_bad_magic() {
        let mut b = plain();
        let n = b.len();
        b[n - 1] ^= 1;
        assert!(err_of(&b).contains("bad magic number"));
        assert!(!has_table_magic(&write(&b).1).unwrap());
    }

    #[test]
    fn rejects_short_file() {
        assert!(err_of(&[0u8; 47]).contains("too short to be a table"));
        let b = plain();
        // Keep the footer but cut the blocks: the index handle now points past them.
        let cut = b[b.len() - 48..].to_vec();
        assert!(err_of(&cut).contains("points past the blocks"));
    }

    #[test]
    fn rejects_bad_block_crc() {
        let mut b = plain();
        b[3] ^= 0x40;
        let err = err_of(&b);
        assert!(
            err.contains("block checksum mismatch (expected 0x"),
            "{err}"
        );
        // Only the stored checksum: the computed one would give the block away.
        assert!(!err.contains("computed"), "{err}");
    }

    #[test]
    fn rejects_bad_type_byte() {
        let mut b = plain();
        let size = first_block_size(&b);
        b[size] = 2;
        fix_crc(&mut b, 0, size);
        assert!(err_of(&b).contains("bad block type 2"));
    }

    #[test]
    fn rejects_bad_snappy() {
        let mut b = plain();
        let size = first_block_size(&b);
        b[size] = 1;
        fix_crc(&mut b, 0, size);
        assert!(err_of(&b).contains("snappy"));
    }

    #[test]
    fn rejects_shared_longer_than_previous_key() {
        let mut b = plain();
        // The first entry starts at 0 with shared = 0; claim 1 shared byte instead.
        b[0] = 1;
        let size = first_block_size(&b);
        fix_crc(&mut b, 0, size);
        assert!(err_of(&b).contains("shares 1 bytes with the previous key"));
    }

    #[test]
    fn rejects_restarts_out_of_range() {
        let mut b = plain();
        let size = first_block_size(&b);
        // Last restart offset (just before num_restarts) pointing past the entries.
        b[size - 8..size - 4].copy_from_slice(&(size as u32).to_le_bytes());
        fix_crc(&mut b, 0, size);
        assert!(err_of(&b).contains("outside the entries"), "{}", err_of(&b));
        // num_restarts larger than the block can hold.
        let mut b = plain();
        b[size - 4..size].copy_from_slice(&1_000_000u32.to_le_bytes());
        fix_crc(&mut b, 0, size);
        assert!(err_of(&b).contains("restart points but has room"));
    }

    #[test]
    fn rejects_entries_running_past_the_block() {
        let mut b = TableBuilder {
            per_block: 1,
            snappy: false,
        }
        .build(&[kv("a", "1")]);
        // value length of the first entry: byte 2.
        b[2] = 0x7f;
        let size = first_block_size(&b);
        fix_crc(&mut b, 0, size);
        assert!(err_of(&b).contains("run past the entries"));
    }

    #[test]
    fn rejects_unsorted_keys() {
        let entries = vec![kv("b", "1"), kv("a", "2")];
        let b = TableBuilder {
            per_block: 1,
            snappy: false,
        }
        .build(&entries);
        assert!(err_of(&b).contains("does not sort after"));
    }

    #[test]
    fn rejects_tiny_blocks() {
        assert!(entries_limit(&[0, 0], &Ctx::file("x"), "data block", 0)
            .unwrap_err()
            .to_string()
            .contains("too short for a block"));
        assert_eq!(
            entries_limit(&[0, 0, 0, 0], &Ctx::file("x"), "b", 0).unwrap(),
            0
        );
    }
}
