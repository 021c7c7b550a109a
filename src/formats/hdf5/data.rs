//! HDF5 datatypes as TensorFlow dtypes (docs/formats/hdf5.md §4) and the streams that
//! deliver a dataset's bytes in TensorFlow's layout: contiguous storage straight from
//! the file range, compact storage from the object header, chunked storage one band of
//! chunks at a time (§5).

use crate::dtype::DataType;
use crate::error::{Ctx, Result};
use crate::formats::io::{InputFile, RangeReader};
use crate::stream::ByteStream;
use hdf5_reader::messages::datatype::{StringSize, VarLenKind};
use hdf5_reader::{ByteOrder, DatasetChunk, DatasetChunkIterator, Datatype};
use std::sync::Arc;

/// How a dataset's elements are stored, when tf2npy can convert them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Elem {
    /// Fixed-size numbers: TF dtype, bytes per element, stored big-endian.
    Fixed {
        /// The TensorFlow dtype.
        dtype: DataType,
        /// Bytes per element.
        size: usize,
        /// Stored big-endian (swapped on the way out).
        swap: bool,
    },
    /// Fixed-length byte strings of `size` bytes, trailing NULs dropped.
    FixedString(usize),
    /// Variable-length strings (global heap).
    VlenString,
    /// Anything else: why it cannot be converted.
    Unsupported(String),
}

/// Maps an HDF5 datatype to an [`Elem`]. `keras_dtype` is the dataset's `dtype`
/// attribute (Keras 3 writes `bfloat16` on its 2-byte opaque type).
pub fn classify(t: &Datatype, keras_dtype: Option<&str>) -> Elem {
    let fixed = |dtype, size: u8, order: &ByteOrder| Elem::Fixed {
        dtype,
        size: usize::from(size),
        swap: *order == ByteOrder::BigEndian && size > 1,
    };
    match t {
        Datatype::FixedPoint {
            size,
            signed,
            byte_order,
        } => {
            let dt = match (size, signed) {
                (1, true) => DataType::Int8,
                (2, true) => DataType::Int16,
                (4, true) => DataType::Int32,
                (8, true) => DataType::Int64,
                (1, false) => DataType::Uint8,
                (2, false) => DataType::Uint16,
                (4, false) => DataType::Uint32,
                (8, false) => DataType::Uint64,
                _ => return Elem::Unsupported(format!("{size}-byte integers")),
            };
            fixed(dt, *size, byte_order)
        }
        Datatype::FloatingPoint { size, byte_order } => {
            let dt = match size {
                2 => DataType::Half,
                4 => DataType::Float,
                8 => DataType::Double,
                _ => return Elem::Unsupported(format!("{size}-byte floats")),
            };
            fixed(dt, *size, byte_order)
        }
        Datatype::Enum { base, members } if is_h5py_bool(base, members) => Elem::Fixed {
            dtype: DataType::Bool,
            size: 1,
            swap: false,
        },
        Datatype::Opaque { size: 2, .. } if keras_dtype == Some("bfloat16") => Elem::Fixed {
            dtype: DataType::Bfloat16,
            size: 2,
            swap: false,
        },
        Datatype::String {
            size: StringSize::Fixed(n),
            ..
        } => Elem::FixedString(*n as usize),
        Datatype::String {
            size: StringSize::Variable,
            ..
        } => Elem::VlenString,
        // A string's length counts base elements: 1-byte characters only (vlen.rs).
        Datatype::VarLen {
            base,
            kind: VarLenKind::String,
            ..
        } if base.is_vlen_string_base() => Elem::VlenString,
        other => Elem::Unsupported(describe(other)),
    }
}

/// h5py's bool: an enum over a 1-byte integer with `FALSE` = 0 and `TRUE` = 1.
fn is_h5py_bool(base: &Datatype, members: &[hdf5_reader::messages::datatype::EnumMember]) -> bool {
    let one_byte = matches!(base, Datatype::FixedPoint { size: 1, .. });
    let named = |n: &str, v: u8| members.iter().any(|m| m.name == n && m.value == [v]);
    one_byte && members.len() == 2 && named("FALSE", 0) && named("TRUE", 1)
}

fn describe(t: &Datatype) -> String {
    match t {
        Datatype::Compound { .. } => "a compound type".into(),
        Datatype::Array { .. } => "an array type".into(),
        Datatype::Enum { .. } => "an enum type (other than h5py's bool)".into(),
        Datatype::VarLen { .. } => "a variable-length sequence type".into(),
        Datatype::Opaque { size, tag } => format!("a {size}-byte opaque type (tag `{tag}`)"),
        Datatype::Reference { .. } => "an object or region reference".into(),
        Datatype::Bitfield { .. } => "a bitfield type".into(),
        _ => "this datatype".into(),
    }
}

/// Reverses the bytes of each `size`-byte element of `buf` (big- to little-endian).
pub fn swap_in_place(buf: &mut [u8], size: usize) {
    if size > 1 {
        for e in buf.chunks_exact_mut(size) {
            e.reverse();
        }
    }
}

/// A contiguous dataset's bytes: a range of the input file, swapped if big-endian.
pub struct RangeStream {
    reader: RangeReader,
    /// Element size when swapping (big-endian), else `None`.
    swap: Option<usize>,
    /// Swapped bytes not yet handed out.
    pending: Vec<u8>,
    head: usize,
}

impl RangeStream {
    /// Streams `[offset, offset + len)` of `file`.
    pub fn new(file: Arc<InputFile>, offset: u64, len: u64, swap: Option<usize>) -> Result<Self> {
        Ok(RangeStream {
            reader: RangeReader::new(file, offset, len, 1 << 20)?,
            swap,
            pending: Vec::new(),
            head: 0,
        })
    }
}

impl ByteStream for RangeStream {
    /// Little-endian data is lent straight from the reader's buffer (no copy).
    fn lends(&self) -> bool {
        self.swap.is_none()
    }

    fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        if self.swap.is_some() {
            return Err(crate::error::Error::usage(
                "internal error: read_borrowed on a byte-swapped HDF5 stream",
            ));
        }
        self.reader.read_borrowed(max)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let Some(size) = self.swap else {
            return self.reader.read(buf);
        };
        if self.head == self.pending.len() {
            let left = self.reader.remaining();
            if left == 0 || buf.is_empty() {
                return Ok(0);
            }
            // Whole elements only (the range is a whole number of them).
            let want = (64usize << 10).max(size) / size * size;
            let n = usize::try_from(left).map_or(want, |l| l.min(want));
            self.pending.resize(n, 0);
            if !self.reader.read_exact(&mut self.pending)? {
                return Err(Ctx::file(self.reader.file().path())
                    .corrupt("dataset range ended early".to_string()));
            }
            swap_in_place(&mut self.pending, size);
            self.head = 0;
        }
        let n = buf.len().min(self.pending.len() - self.head);
        buf[..n].copy_from_slice(&self.pending[self.head..self.head + n]);
        self.head += n;
        Ok(n)
    }
}

/// Bytes already in memory (a compact dataset), owned.
pub struct OwnedStream {
    data: Vec<u8>,
    pos: usize,
}

impl OwnedStream {
    /// Streams `data`.
    pub fn new(data: Vec<u8>) -> Self {
        OwnedStream { data, pos: 0 }
    }
}

impl ByteStream for OwnedStream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let rest = &self.data[self.pos..];
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// Largest band of chunks (one chunk high along the first dimension, the whole extent
/// along the others) a chunked dataset may need in memory.
pub const MAX_BAND_BYTES: u64 = 512 << 20;

/// The bytes of a band: `chunk[0]` rows (fewer at the end) of the whole extent of the
/// other dimensions.
pub fn band_bytes(shape: &[u64], chunk: &[u64], size: u64) -> Option<u64> {
    let rows = chunk.first().copied()?.min(shape.first().copied()?);
    shape
        .iter()
        .skip(1)
        .try_fold(rows.checked_mul(size)?, |a, &d| a.checked_mul(d))
}

/// A chunked dataset, assembled one band of chunks at a time in row-major order.
///
/// hdf5-reader yields chunks in index order, which for every index type is ascending
/// chunk coordinates; a chunk of an earlier band arriving late, a missing chunk or a
/// chunk outside the extent is an error (docs/formats/hdf5.md §5.3).
pub struct ChunkStream {
    chunks: DatasetChunkIterator,
    shape: Vec<u64>,
    chunk: Vec<u64>,
    size: usize,
    swap: bool,
    ctx: Ctx,
    /// Chunks per band (the chunk grid over dimensions 1..).
    per_band: u64,
    bands: u64,
    /// Index of the band in `band`.
    next_band: u64,
    band: Vec<u8>,
    head: usize,
    /// The first chunk of the next band, read ahead.
    ahead: Option<DatasetChunk>,
}

impl ChunkStream {
    /// Streams the dataset whose chunks `chunks` yields.
    pub fn new(
        chunks: DatasetChunkIterator,
        shape: Vec<u64>,
        chunk: Vec<u64>,
        size: usize,
        swap: bool,
        ctx: Ctx,
    ) -> Result<Self> {
        let grid = |s: u64, c: u64| s.div_ceil(c.max(1));
        let per_band = shape
            .iter()
            .zip(&chunk)
            .skip(1)
            .map(|(&s, &c)| grid(s, c))
            .product();
        let bands = match (shape.first(), chunk.first()) {
            (Some(&s), Some(&c)) => grid(s, c),
            _ => 0,
        };
        Ok(ChunkStream {
            chunks,
            shape,
            chunk,
            size,
            swap,
            ctx,
            per_band,
            bands,
            next_band: 0,
            band: Vec::new(),
            head: 0,
            ahead: None,
        })
    }

    fn next_chunk(&mut self) -> Result<Option<DatasetChunk>> {
        if let Some(c) = self.ahead.take() {
            return Ok(Some(c));
        }
        match self.chunks.next() {
            None => Ok(None),
            Some(Ok(c)) => Ok(Some(c)),
            Some(Err(e)) => Err(self.ctx.corrupt(format!("reading a chunk: {e}"))),
        }
    }

    /// Fills `band` with band `next_band`.
    fn fill_band(&mut self) -> Result<()> {
        let b = self.next_band;
        let c0 = self.chunk[0];
        let row0 = b * c0;
        let rows = c0.min(self.shape[0] - row0);
        let mut band_shape = self.shape.clone();
        band_shape[0] = rows;
        let len = band_shape.iter().product::<u64>() * self.size as u64;
        self.band.clear();
        self.band.resize(len as usize, 0);
        let mut seen = std::collections::HashSet::new();
        while let Some(chunk) = self.next_chunk()? {
            let offs = chunk.offsets().to_vec();
            if offs.len() != self.shape.len() {
                return Err(self.ctx.corrupt(format!(
                    "a chunk has {} coordinates for a dataset of rank {}",
                    offs.len(),
                    self.shape.len()
                )));
            }
            for ((&o, &s), &c) in offs.iter().zip(&self.shape).zip(&self.chunk) {
                if o >= s || o % c != 0 {
                    return Err(self.ctx.corrupt(format!(
                        "chunk at {offs:?} lies outside the extent {:?} or off the chunk \
                         grid {:?}",
                        self.shape, self.chunk
                    )));
                }
            }
            let cb = offs[0] / c0;
            if cb > b {
                self.ahead = Some(chunk);
                break;
            }
            if cb < b || !seen.insert(offs.clone()) {
                return Err(self.ctx.corrupt(format!(
                    "chunk at {offs:?} is listed twice or out of order in the chunk index"
                )));
            }
            self.place(&chunk, &offs, &band_shape)?;
        }
        if seen.len() as u64 != self.per_band {
            return Err(self.ctx.unsupported(format!(
                "{} of the {} chunks of rows {row0}..{} are stored; unwritten chunks (fill \
                 values) are not supported",
                seen.len(),
                self.per_band,
                row0 + rows
            )));
        }
        if self.swap {
            swap_in_place(&mut self.band, self.size);
        }
        self.next_band += 1;
        self.head = 0;
        Ok(())
    }

    /// Copies the part of `chunk` inside the extent into the band.
    fn place(&mut self, chunk: &DatasetChunk, offs: &[u64], band_shape: &[u64]) -> Result<()> {
        let n = self.chunk.len();
        let es = self.size;
        let want = self.chunk.iter().product::<u64>() as usize * es;
        let bytes = chunk.bytes();
        if bytes.len() != want {
            return Err(self.ctx.corrupt(format!(
                "chunk at {offs:?} decodes to {} bytes, not the {want} of its shape {:?}",
                bytes.len(),
                self.chunk
            )));
        }
        // The region of the chunk inside the extent.
        let ext: Vec<u64> = (0..n)
            .map(|d| self.chunk[d].min(self.shape[d] - offs[d]))
            .collect();
        let run = ext[n - 1] as usize * es;
        let mut idx = vec![0u64; n - 1];
        loop {
            // Source: row-major in the chunk; destination: row-major in the band, the
            // chunk's first coordinate relative to the band's first row.
            let mut src = 0u64;
            let mut dst = 0u64;
            for d in 0..n {
                let i = if d + 1 < n { idx[d] } else { 0 };
                src = src * self.chunk[d] + i;
                let o = if d == 0 { 0 } else { offs[d] };
                dst = dst * band_shape[d] + o + i;
            }
            let (src, dst) = (src as usize * es, dst as usize * es);
            self.band[dst..dst + run].copy_from_slice(&bytes[src..src + run]);
            // Advance the index over dimensions 0..n-1.
            let mut d = n - 1;
            loop {
                if d == 0 {
                    return Ok(());
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < ext[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}

impl ByteStream for ChunkStream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.head == self.band.len() {
            if self.next_band == self.bands {
                if let Some(c) = self.next_chunk()? {
                    return Err(self.ctx.corrupt(format!(
                        "chunk at {:?} is out of order in the chunk index",
                        c.offsets()
                    )));
                }
                return Ok(0);
            }
            self.fill_band()?;
        }
        let n = buf.len().min(self.band.len() - self.head);
        buf[..n].copy_from_slice(&self.band[self.head..self.head + n]);
        self.head += n;
        Ok(n)
    }
}
