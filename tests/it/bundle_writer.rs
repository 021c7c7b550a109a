//! A tiny V2 tensor-bundle writer for tests: builds `.index` tables (uncompressed or
//! snappy blocks) and data files the way TensorFlow's `BundleWriter` lays them out
//! (tf-formats.md §1-§2), so tests can make inputs TensorFlow never would at fixture
//! time: tensors over 4 GiB, damaged files, odd layouts.

#![allow(dead_code)]

use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};
use tf2npy::formats::proto::{
    tensor_shape_proto::Dim, BundleEntryProto, BundleHeaderProto, TensorShapeProto, VersionDef,
};

const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const MASK_DELTA: u32 = 0xa282_ead8;

/// TensorFlow's masked CRC32C.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One table block: entries (no prefix sharing), one restart point.
fn block(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in entries {
        varint(0, &mut b);
        varint(k.len() as u64, &mut b);
        varint(v.len() as u64, &mut b);
        b.extend_from_slice(k);
        b.extend_from_slice(v);
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b
}

/// Appends `contents` as a block with its trailer; returns its handle.
fn put_block(file: &mut Vec<u8>, contents: &[u8], snappy: bool) -> (u64, u64) {
    let (data, ty) = if snappy {
        (
            snap::raw::Encoder::new().compress_vec(contents).unwrap(),
            1u8,
        )
    } else {
        (contents.to_vec(), 0u8)
    };
    let off = file.len() as u64;
    file.extend_from_slice(&data);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&data), &[ty]);
    file.push(ty);
    file.extend_from_slice(&mask(crc).to_le_bytes());
    (off, data.len() as u64)
}

/// A complete table file for sorted `entries`, one data block per `per_block` entries.
pub fn table(entries: &[(Vec<u8>, Vec<u8>)], per_block: usize, snappy: bool) -> Vec<u8> {
    let mut file = Vec::new();
    let mut index = Vec::new();
    for chunk in entries.chunks(per_block.max(1)) {
        let (off, size) = put_block(&mut file, &block(chunk), snappy);
        let mut h = Vec::new();
        varint(off, &mut h);
        varint(size, &mut h);
        index.push((chunk.last().unwrap().0.clone(), h));
    }
    let meta = put_block(&mut file, &block(&[]), false);
    let idx = put_block(&mut file, &block(&index), false);
    let mut footer = Vec::new();
    for v in [meta.0, meta.1, idx.0, idx.1] {
        varint(v, &mut footer);
    }
    footer.resize(40, 0);
    footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
    file.extend_from_slice(&footer);
    file
}

/// A tensor to put in a test bundle.
pub struct Tensor {
    pub name: String,
    pub dtype: i32,
    pub shape: Vec<i64>,
    /// Payload bytes; `None` = `sparse_len` zero bytes with `patches` written over them.
    pub data: Option<Vec<u8>>,
    pub sparse_len: u64,
    pub patches: Vec<(u64, Vec<u8>)>,
}

impl Tensor {
    pub fn new(name: &str, dtype: i32, shape: &[i64], data: Vec<u8>) -> Self {
        Tensor {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            data: Some(data),
            sparse_len: 0,
            patches: vec![],
        }
    }

    /// A tensor of `len` payload bytes, zero but for `patches` (offset, bytes), written
    /// without holding the payload: for inputs larger than a test's memory budget.
    pub fn zeros(
        name: &str,
        dtype: i32,
        shape: Vec<i64>,
        len: u64,
        patches: Vec<(u64, Vec<u8>)>,
    ) -> Self {
        Tensor {
            name: name.into(),
            dtype,
            shape,
            data: None,
            sparse_len: len,
            patches,
        }
    }
}

/// A `TensorShapeProto` with these dimension sizes.
pub fn shape_proto(shape: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: shape
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

/// CRC32C of `len` zero bytes with `patches` applied, computed in chunks.
fn sparse_crc(len: u64, patches: &[(u64, Vec<u8>)]) -> u32 {
    let mut crc = 0u32;
    let zeros = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    let mut sorted: Vec<&(u64, Vec<u8>)> = patches.iter().collect();
    sorted.sort_by_key(|p| p.0);
    for (off, bytes) in sorted {
        while pos < *off {
            let n = (*off - pos).min(zeros.len() as u64) as usize;
            crc = crc32c::crc32c_append(crc, &zeros[..n]);
            pos += n as u64;
        }
        crc = crc32c::crc32c_append(crc, bytes);
        pos += bytes.len() as u64;
    }
    while pos < len {
        let n = (len - pos).min(zeros.len() as u64) as usize;
        crc = crc32c::crc32c_append(crc, &zeros[..n]);
        pos += n as u64;
    }
    crc
}

/// Writes `prefix.index` and `prefix.data-00000-of-00001`. Returns the data file path.
pub fn write_bundle(prefix: &Path, tensors: &[Tensor], snappy: bool) -> PathBuf {
    let data_path = PathBuf::from(format!("{}.data-00000-of-00001", prefix.display()));
    let mut data = std::fs::File::create(&data_path).unwrap();
    let mut offset = 0u64;
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for t in tensors {
        let (size, crc) = match &t.data {
            Some(bytes) => {
                data.write_all(bytes).unwrap();
                (bytes.len() as u64, crc32c::crc32c(bytes))
            }
            None => {
                use std::os::unix::fs::FileExt;
                data.set_len(offset + t.sparse_len).unwrap();
                for (off, bytes) in &t.patches {
                    data.write_all_at(bytes, offset + off).unwrap();
                }
                use std::io::Seek;
                data.seek(std::io::SeekFrom::Start(offset + t.sparse_len))
                    .unwrap();
                (t.sparse_len, sparse_crc(t.sparse_len, &t.patches))
            }
        };
        let entry = BundleEntryProto {
            dtype: t.dtype,
            shape: Some(shape_proto(&t.shape)),
            shard_id: 0,
            offset: offset as i64,
            size: size as i64,
            crc32c: mask(crc),
            slices: vec![],
        };
        offset += size;
        entries.push((t.name.as_bytes().to_vec(), entry.encode_to_vec()));
    }
    let header = BundleHeaderProto {
        num_shards: 1,
        endianness: 0,
        version: Some(VersionDef {
            producer: 1,
            min_consumer: 0,
            bad_consumers: vec![],
        }),
    };
    entries.push((Vec::new(), header.encode_to_vec()));
    entries.sort();
    let index = table(&entries, 16, snappy);
    std::fs::write(format!("{}.index", prefix.display()), index).unwrap();
    data_path
}
