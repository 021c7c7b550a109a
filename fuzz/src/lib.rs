//! Helpers shared by the tf2npy fuzz targets: a byte cursor to carve structured values
//! out of the fuzzer's input, a per-process scratch folder for the files the readers
//! want (they read paths, not slices), a drain that pulls a tensor's stream to its end
//! (or to a cap, so a tiny broadcast constant of a huge shape is not a timeout), and a
//! minimal table writer that turns fuzzed `(key, value)` pairs into a valid `.index`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tf2npy::source::{RawTensor, StringRead};
use tf2npy::stream::ByteStream;

/// Payload bytes (or string elements) a drain pulls at most from one tensor.
pub const DRAIN_CAP: u64 = 1 << 20;

/// Reads structured values from the front of the fuzzer's input; past the end every
/// read yields zeros or empty slices, so any input is usable.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// The next byte (0 at the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `n` next bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// This process's scratch folder (on `/dev/shm` when there is one), created once.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("tf2npy-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch folder");
        dir
    })
}

/// Empties the scratch folder (files only; the targets create no subfolders).
pub fn clear_scratch() {
    if let Ok(rd) = std::fs::read_dir(scratch()) {
        for e in rd.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes `bytes` to `name` in the scratch folder; returns the path.
pub fn put(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, bytes).expect("write a scratch file");
    p
}

/// Reads a fixed-size stream to its end or to [`DRAIN_CAP`] bytes, with reads of
/// `chunk` bytes (at least 1). Returns the bytes seen (up to the cap) or the error.
pub fn drain_stream(s: &mut dyn ByteStream, chunk: usize) -> tf2npy::Result<Vec<u8>> {
    let mut buf = vec![0u8; chunk.clamp(1, 1 << 16)];
    let mut out = Vec::new();
    loop {
        let n = s.read(&mut buf)?;
        assert!(n <= buf.len(), "read returned more than the buffer");
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() as u64 >= DRAIN_CAP {
            return Ok(out);
        }
    }
}

/// Pulls every string of `s` (at most [`DRAIN_CAP`] of them), checking each against
/// `max_len`.
pub fn drain_strings(s: &mut dyn StringRead) -> tf2npy::Result<u64> {
    let max = s.max_len()?;
    let mut one = Vec::new();
    let mut n = 0u64;
    let mut bytes = 0u64;
    while s.next_into(&mut one)? {
        assert!(one.len() as u64 <= max, "a string is longer than max_len");
        n += 1;
        bytes += one.len() as u64;
        if n >= DRAIN_CAP || bytes >= DRAIN_CAP {
            break;
        }
    }
    Ok(n)
}

/// Drains a reader's tensor either way it comes.
pub fn drain(raw: RawTensor<'_>, chunk: usize) -> tf2npy::Result<()> {
    match raw {
        RawTensor::Fixed(mut s) => drain_stream(&mut s, chunk).map(|_| ()),
        RawTensor::Strings(mut s) => drain_strings(s.as_mut()).map(|_| ()),
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// TensorFlow's masked CRC32C.
fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

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

fn put_block(file: &mut Vec<u8>, contents: &[u8]) -> (u64, u64) {
    let off = file.len() as u64;
    file.extend_from_slice(contents);
    file.push(0);
    let crc = crc32c_of(&file[off as usize..]);
    file.extend_from_slice(&mask(crc).to_le_bytes());
    (off, contents.len() as u64)
}

/// CRC32C (Castagnoli), bitwise: the fuzz crate needs it only for small tables.
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid, uncompressed table file holding `entries` (sorted by the caller, keys
/// strictly increasing), `per_block` entries per data block.
pub fn table(entries: &[(Vec<u8>, Vec<u8>)], per_block: usize) -> Vec<u8> {
    let mut file = Vec::new();
    let mut index = Vec::new();
    for chunk in entries.chunks(per_block.max(1)) {
        let (off, size) = put_block(&mut file, &block(chunk));
        let mut h = Vec::new();
        varint(off, &mut h);
        varint(size, &mut h);
        let last = chunk.last().map(|(k, _)| k.clone()).unwrap_or_default();
        index.push((last, h));
    }
    let meta = put_block(&mut file, &block(&[]));
    let idx = put_block(&mut file, &block(&index));
    let mut footer = Vec::new();
    for v in [meta.0, meta.1, idx.0, idx.1] {
        varint(v, &mut footer);
    }
    footer.resize(40, 0);
    footer.extend_from_slice(&0xdb47_7524_8b80_fb57u64.to_le_bytes());
    file.extend_from_slice(&footer);
    file
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(super::crc32c_of(b"123456789"), 0xe306_9283);
    }
}
