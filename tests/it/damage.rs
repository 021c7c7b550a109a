//! Reading helpers for the damaged-file suite (`damaged.rs`): where the structures of a
//! real checkpoint lie, byte by byte, so tests can cut and flip exactly there.
//!
//! [`IndexLayout`] maps a `.index` table (tf-formats.md §1): the footer and its two
//! handles, the metaindex, index and data blocks with their 5-byte trailers, and every
//! entry of the index and data blocks (prefix-compressed keys are expanded).
//! [`tensors`] decodes the bundle entries, and [`string_regions`] splits a string
//! tensor's data into its length table (with the length checksum) and its bytes
//! (tf-formats.md §2.6). [`rebuild_index`] rewrites an index from edited entries with
//! valid checksums, for damage a block checksum would otherwise hide.

#![allow(dead_code)]

use prost::Message;
use std::ops::Range;
use std::path::{Path, PathBuf};
use tf2npy::formats::checkpoint::slice_key::{encode_tensor_name_slice, TensorSlice};
use tf2npy::formats::proto::{BundleEntryProto, BundleHeaderProto};

/// Decodes a varint at `pos`; returns the value and the position after it.
pub fn varint(b: &[u8], mut pos: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let c = b[pos];
        pos += 1;
        v |= u64::from(c & 0x7f) << shift;
        shift += 7;
        if c < 0x80 {
            return (v, pos);
        }
    }
}

/// One block of a table: its contents `[offset, offset + size)`, then a type byte and a
/// 4-byte checksum.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub offset: u64,
    pub size: u64,
}

impl Block {
    /// The contents.
    pub fn contents(&self) -> Range<u64> {
        self.offset..self.offset + self.size
    }

    /// The trailer: type byte and checksum.
    pub fn trailer(&self) -> Range<u64> {
        self.offset + self.size..self.offset + self.size + 5
    }
}

/// One entry of a block, as file offsets.
#[derive(Clone, Debug)]
pub struct EntryPos {
    /// The full key (prefix compression undone).
    pub key: Vec<u8>,
    /// Where the entry's three length varints start.
    pub start: u64,
    /// The stored (unshared) key bytes.
    pub key_bytes: Range<u64>,
    /// The value bytes.
    pub value: Range<u64>,
}

/// Where everything in a `.index` file is.
#[derive(Debug)]
pub struct IndexLayout {
    pub len: u64,
    /// The 48-byte footer starts here.
    pub footer: u64,
    /// The bytes of the metaindex handle, then of the index handle, in the footer.
    pub meta_handle: Range<u64>,
    pub index_handle: Range<u64>,
    pub meta: Block,
    pub index: Block,
    pub index_entries: Vec<EntryPos>,
    pub data: Vec<Block>,
    /// The entries of every data block, in order; `data_block[i]` is entry i's block.
    pub entries: Vec<EntryPos>,
    pub data_block: Vec<usize>,
    /// Each block's restart array (with its count), as file offsets.
    pub restarts: Vec<Range<u64>>,
}

/// The entries of the uncompressed block `b` of `file`, and its restart array.
fn block_entries(file: &[u8], b: Block) -> (Vec<EntryPos>, Range<u64>) {
    assert_eq!(
        file[(b.offset + b.size) as usize],
        0,
        "compressed block in a fixture"
    );
    let off = b.offset as usize;
    let block = &file[off..off + b.size as usize];
    let n = u32::from_le_bytes(block[block.len() - 4..].try_into().unwrap()) as usize;
    let limit = block.len() - 4 - 4 * n;
    let mut pos = 0;
    let mut key = Vec::new();
    let mut out = Vec::new();
    while pos < limit {
        let start = pos;
        let (shared, p) = varint(block, pos);
        let (unshared, p) = varint(block, p);
        let (vlen, p) = varint(block, p);
        key.truncate(shared as usize);
        key.extend_from_slice(&block[p..p + unshared as usize]);
        let v0 = p + unshared as usize;
        out.push(EntryPos {
            key: key.clone(),
            start: (off + start) as u64,
            key_bytes: (off + p) as u64..(off + v0) as u64,
            value: (off + v0) as u64..(off + v0) as u64 + vlen,
        });
        pos = v0 + vlen as usize;
    }
    (out, (off + limit) as u64..(off + block.len()) as u64)
}

impl IndexLayout {
    /// Maps the table in `file` (uncompressed blocks, as modern TF writes).
    pub fn parse(file: &[u8]) -> IndexLayout {
        let len = file.len();
        let footer = len - 48;
        let (mo, p) = varint(file, footer);
        let (ms, p) = varint(file, p);
        let meta_end = p;
        let (io, p) = varint(file, p);
        let (is, p) = varint(file, p);
        let meta = Block {
            offset: mo,
            size: ms,
        };
        let index = Block {
            offset: io,
            size: is,
        };
        let (index_entries, index_restarts) = block_entries(file, index);
        let mut data = Vec::new();
        let mut entries = Vec::new();
        let mut data_block = Vec::new();
        let mut restarts = vec![index_restarts];
        for e in &index_entries {
            let v = &file[e.value.start as usize..e.value.end as usize];
            let (offset, q) = varint(v, 0);
            let (size, _) = varint(v, q);
            let b = Block { offset, size };
            let (es, r) = block_entries(file, b);
            data_block.extend(std::iter::repeat_n(data.len(), es.len()));
            entries.extend(es);
            restarts.push(r);
            data.push(b);
        }
        IndexLayout {
            len: len as u64,
            footer: footer as u64,
            meta_handle: footer as u64..meta_end as u64,
            index_handle: meta_end as u64..p as u64,
            meta,
            index,
            index_entries,
            data,
            entries,
            data_block,
            restarts,
        }
    }
}

/// A tensor entry of a bundle, with the name errors use for it.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub key: Vec<u8>,
    /// The listed tensor this entry belongs to: its own name, or for a slice entry the
    /// full tensor's name.
    pub name: String,
    pub entry: BundleEntryProto,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.entry
            .shape
            .as_ref()
            .map_or(1, |s| s.dim.iter().map(|d| d.size as u64).product())
    }

    /// The data range in its shard.
    pub fn range(&self) -> Range<u64> {
        self.entry.offset as u64..(self.entry.offset + self.entry.size) as u64
    }

    /// True for entries tf2npy never reads (variant, resource) and for the full entry
    /// of a partitioned tensor (its data lives in the slice entries).
    pub fn unread(&self) -> bool {
        matches!(self.entry.dtype, 20 | 21) || !self.entry.slices.is_empty()
    }
}

/// The header and every tensor entry of the index at `index`, in key order.
pub fn tensors(index: &Path) -> (BundleHeaderProto, Vec<TensorInfo>) {
    let file = std::fs::read(index).unwrap();
    let layout = IndexLayout::parse(&file);
    let value = |e: &EntryPos| &file[e.value.start as usize..e.value.end as usize];
    let header = BundleHeaderProto::decode(value(&layout.entries[0])).unwrap();
    let mut out: Vec<TensorInfo> = layout.entries[1..]
        .iter()
        .map(|e| TensorInfo {
            key: e.key.clone(),
            name: String::from_utf8_lossy(&e.key).into_owned(),
            entry: BundleEntryProto::decode(value(e)).unwrap(),
        })
        .collect();
    // Slice entries are reported under their full tensor's name.
    let mut owner = std::collections::HashMap::new();
    for t in &out {
        for sp in &t.entry.slices {
            let skey = encode_tensor_name_slice(&t.key, &TensorSlice::from_proto(sp));
            owner.insert(skey, t.name.clone());
        }
    }
    for t in &mut out {
        if let Some(full) = owner.get(&t.key) {
            t.name = full.clone();
        }
    }
    (header, out)
}

/// A string tensor's data split into its length table (varints plus the 4-byte length
/// checksum) and its bytes, as file offsets.
pub fn string_regions(data: &[u8], t: &TensorInfo) -> (Range<u64>, Range<u64>) {
    let start = t.entry.offset as usize;
    let mut pos = start;
    for _ in 0..t.elements() {
        pos = varint(data, pos).1;
    }
    let lengths = start as u64..pos as u64 + 4;
    (lengths.clone(), lengths.end..t.range().end)
}

/// The data file of shard `id` of `prefix`, named from the header's shard count.
pub fn data_file(prefix: &Path, id: i32, num_shards: i32) -> PathBuf {
    PathBuf::from(format!(
        "{}.data-{id:05}-of-{num_shards:05}",
        prefix.display()
    ))
}

/// Copies checkpoint `src` (a prefix) into `dir` under the same file names; returns
/// the new prefix.
pub fn copy_checkpoint(src: &Path, dir: &Path) -> PathBuf {
    let stem = src.file_name().unwrap().to_str().unwrap();
    for e in std::fs::read_dir(src.parent().unwrap()).unwrap().flatten() {
        let name = e.file_name().to_str().unwrap().to_string();
        if let Some(rest) = name.strip_prefix(&format!("{stem}.")) {
            if rest == "index" || rest.starts_with("data-") {
                std::fs::copy(e.path(), dir.join(&name)).unwrap();
            }
        }
    }
    dir.join(stem)
}

/// Rewrites the index at `index` from its `(key, value)` entries after `edit` changed
/// them, with fresh block checksums.
pub fn rebuild_index(index: &Path, edit: impl FnOnce(&mut Vec<(Vec<u8>, Vec<u8>)>)) {
    let file = std::fs::read(index).unwrap();
    let layout = IndexLayout::parse(&file);
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = layout
        .entries
        .iter()
        .map(|e| {
            (
                e.key.clone(),
                file[e.value.start as usize..e.value.end as usize].to_vec(),
            )
        })
        .collect();
    edit(&mut entries);
    std::fs::write(index, crate::bundle_writer::table(&entries, 16, false)).unwrap();
}

/// Rewrites the bundle entry under `key` in the index at `index`.
pub fn edit_entry(index: &Path, key: &[u8], edit: impl FnOnce(&mut BundleEntryProto)) {
    rebuild_index(index, |entries| {
        let (_, v) = entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .expect("no such key");
        let mut e = BundleEntryProto::decode(v.as_slice()).unwrap();
        edit(&mut e);
        *v = e.encode_to_vec();
    });
}

/// Rewrites the header of the index at `index`.
pub fn edit_header(index: &Path, edit: impl FnOnce(&mut BundleHeaderProto)) {
    rebuild_index(index, |entries| {
        let v = &mut entries[0].1;
        let mut h = BundleHeaderProto::decode(v.as_slice()).unwrap();
        edit(&mut h);
        *v = h.encode_to_vec();
    });
}

/// The top-level fields of a protobuf message, as byte ranges (tag included).
pub fn proto_fields(b: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let start = pos;
        let (tag, p) = varint(b, pos);
        pos = match tag & 7 {
            0 => varint(b, p).1,
            1 => p + 8,
            2 => {
                let (n, q) = varint(b, p);
                q + n as usize
            }
            5 => p + 4,
            w => panic!("wire type {w} in a fixture"),
        };
        out.push(start..pos);
    }
    out
}

/// Flips bits `mask` of byte `at` of the file at `path`.
pub fn flip(path: &Path, at: u64, mask: u8) {
    let mut b = std::fs::read(path).unwrap();
    b[at as usize] ^= mask;
    std::fs::write(path, b).unwrap();
}

/// Cuts the file at `path` to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

/// Up to `n` positions spread evenly over `r` (all of them when `r` is short).
pub fn sample(r: Range<u64>, n: u64) -> Vec<u64> {
    let len = r.end.saturating_sub(r.start);
    if len <= n {
        return r.collect();
    }
    (0..n).map(|i| r.start + i * len / n).collect()
}
