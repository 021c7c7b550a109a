//! The bytes hdf5-reader parses come from here: a window `[base, base + len)` of an
//! [`InputFile`] (the whole file, or a `.keras` archive's stored member), read with
//! bounded positioned reads through `formats::io` (docs/formats/hdf5.md §2).

use crate::formats::io::InputFile;
use hdf5_reader::storage::{Storage, StorageBuffer};
use std::sync::Arc;

/// An HDF5 file's bytes inside an input file.
pub struct Window {
    file: Arc<InputFile>,
    base: u64,
    len: u64,
}

impl Window {
    /// The bytes `[base, base + len)` of `file`; the caller has checked the range.
    pub fn new(file: Arc<InputFile>, base: u64, len: u64) -> Self {
        Window { file, base, len }
    }

    /// The input file.
    pub fn file(&self) -> &Arc<InputFile> {
        &self.file
    }

    /// The input-file offset of the window's first byte.
    pub fn base(&self) -> u64 {
        self.base
    }
}

fn out_of_bounds(offset: u64, needed: u64, available: u64) -> hdf5_reader::error::Error {
    hdf5_reader::error::Error::UnexpectedEof {
        offset,
        needed,
        available,
    }
}

impl Storage for Window {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        let want = len as u64;
        // Checked against the window before anything is allocated.
        match offset.checked_add(want) {
            Some(end) if end <= self.len => {}
            _ => return Err(out_of_bounds(offset, want, self.len.saturating_sub(offset))),
        }
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(self.base + offset, &mut buf)
            .map_err(|e| hdf5_reader::error::Error::InvalidData(e.to_string()))?;
        Ok(StorageBuffer::from_vec(buf))
    }
}
