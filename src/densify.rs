//! Sparse tensors (tf-formats.md §8.5–§8.6): densifying COO parts (`indices` int64
//! `[nnz, rank]`, `values` `[nnz]`, `dense_shape` int64 `[rank]`) as a stream, in
//! TensorFlow's storage layout (a [`RawTensor`] like any reader's). Used by readers
//! (serialized sparse tensors) and by the plan (sibling parts in a checkpoint,
//! `plan::sparse`); it knows nothing of NumPy.
//!
//! The dense array is produced in row-major order and never built in memory: the values
//! flow through from the reader's normal [`RawTensor`] stream, with zeros (or empty
//! strings) emitted between them. Memory is O(nnz): 8 bytes per nonzero for the linear
//! offsets; and when the indices are not in row-major order (TensorFlow's canonical
//! order, which every TF writer produces), also 8 more bytes per nonzero for the sort
//! permutation plus the values themselves, which must then be emitted out of stored
//! order. Out-of-range and duplicate indices are errors.

use crate::dtype::DataType;
use crate::error::{Ctx, Result};
use crate::source::{num_elements, RawTensor, StringRead};
use crate::stream::ByteStream;

/// What to do with sparse tensors (`--sparse`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SparseMode {
    /// Write each sparse tensor as one dense array, with zeros (or empty strings) where no
    /// value is set.
    #[default]
    Densify,
    /// Write the parts as they are stored: NAME/indices, NAME/values, NAME/dense_shape.
    Keep,
}

/// Bytes pulled from a part's stream per read.
const CHUNK: usize = 64 * 1024;

/// The parts of a sparse tensor, ready to densify.
pub struct SparseData<'a> {
    /// `nnz * rank` little-endian int64 indices, one row per nonzero.
    pub indices: Box<dyn ByteStream + 'a>,
    /// Number of nonzeros (rows of `indices`, elements of `values`).
    pub nnz: u64,
    /// The `nnz` values: a stream of stored elements of `dtype`, or strings.
    pub values: RawTensor<'a>,
    /// The values' dtype.
    pub dtype: DataType,
    /// The dense shape (its length is the rank).
    pub dense_shape: Vec<u64>,
}

/// Turns sparse parts into the dense tensor's stream (same storage layout as any reader's
/// [`RawTensor`], so `plan::convert::to_numpy` handles it like any tensor). Reads the
/// whole `indices` stream first (validating every index); the values are pulled as the
/// dense stream is read. `ctx` names the file and the sparse tensor for errors.
pub fn densify<'a>(data: SparseData<'a>, ctx: &Ctx) -> Result<RawTensor<'a>> {
    let SparseData {
        indices,
        nnz,
        values,
        dtype,
        dense_shape,
    } = data;
    let total = num_elements(&dense_shape)
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| {
            ctx.corrupt(format!(
                "dense shape {dense_shape:?} has more elements than fit in 64 bits"
            ))
        })?;
    let strides = strides(&dense_shape);
    let mut offsets = read_offsets(indices, nnz, &dense_shape, &strides, ctx)?;
    let perm = if offsets.windows(2).all(|w| w[0] < w[1]) {
        None
    } else {
        Some(sort_offsets(&mut offsets, &dense_shape, &strides, ctx)?)
    };
    match values {
        RawTensor::Fixed(stream) => {
            let elem = dtype
                .storage_bytes()
                .ok_or_else(|| ctx.unsupported(format!("{dtype} values cannot be densified")))?;
            if total.checked_mul(elem).is_none() {
                return Err(ctx.unsupported(format!(
                    "the dense tensor {dense_shape:?} would need more than 2^64 bytes"
                )));
            }
            let elem = elem as usize;
            let values = match perm {
                None => FixedValues::Stream(Buffered::new(stream)),
                Some(perm) => {
                    let mut b = Buffered::new(stream);
                    let mut data = Vec::new();
                    let mut one = vec![0u8; elem];
                    for _ in 0..offsets.len() {
                        b.read_exact(&mut one, ctx)?;
                        data.extend_from_slice(&one);
                    }
                    b.expect_end(ctx)?;
                    FixedValues::Memory { data, perm }
                }
            };
            Ok(RawTensor::Fixed(Box::new(DenseFixed {
                elem,
                total,
                next: 0,
                offsets,
                k: 0,
                values,
                pending: Vec::with_capacity(elem),
                pending_pos: 0,
                zeros: 0,
                finished: false,
                ctx: ctx.clone(),
            })))
        }
        RawTensor::Strings(mut s) => {
            let values = match perm {
                None => StrValues::Stream(s),
                Some(perm) => {
                    let mut data = Vec::new();
                    let mut buf = Vec::new();
                    while s.next_into(&mut buf)? {
                        if data.len() == offsets.len() {
                            return Err(ctx.corrupt("there are more values than indices"));
                        }
                        data.push(std::mem::take(&mut buf));
                    }
                    if data.len() != offsets.len() {
                        return Err(ctx.corrupt(format!(
                            "{} values for {} indices",
                            data.len(),
                            offsets.len()
                        )));
                    }
                    StrValues::Memory { data, perm }
                }
            };
            Ok(RawTensor::Strings(Box::new(DenseStrings {
                total,
                next: 0,
                offsets,
                k: 0,
                values,
                finished: false,
                ctx: ctx.clone(),
            })))
        }
    }
}

/// Row-major strides of `shape`, in elements. Cannot overflow when the element count
/// fits in 64 bits.
fn strides(shape: &[u64]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1].saturating_mul(shape[d + 1]);
    }
    s
}

/// Reads all `nnz` index rows and returns each nonzero's linear offset, in stored order.
fn read_offsets(
    indices: Box<dyn ByteStream + '_>,
    nnz: u64,
    shape: &[u64],
    strides: &[u64],
    ctx: &Ctx,
) -> Result<Vec<u64>> {
    let rank = shape.len();
    if rank == 0 && nnz > 1 {
        return Err(ctx.corrupt(format!("{nnz} values for a scalar (duplicate index [])")));
    }
    let mut input = Buffered::new(indices);
    // Grows with the data actually read, never from the claimed count alone.
    let mut offsets = Vec::with_capacity(usize::try_from(nnz.min(1 << 16)).unwrap_or(0));
    let mut row = vec![0i64; rank];
    let mut word = [0u8; 8];
    for k in 0..nnz {
        let mut off = 0u64;
        for slot in row.iter_mut() {
            input.read_exact(&mut word, ctx)?;
            *slot = i64::from_le_bytes(word);
        }
        for d in 0..rank {
            let i = row[d];
            if i < 0 || i as u64 >= shape[d] {
                return Err(ctx.corrupt(format!(
                    "index {row:?} of nonzero {k} is out of range for dense shape {shape:?}"
                )));
            }
            off += i as u64 * strides[d];
        }
        offsets.push(off);
    }
    input.expect_end(ctx)?;
    Ok(offsets)
}

/// Sorts `offsets` (memory O(nnz)), rejecting duplicates; returns the permutation:
/// `perm[k]` is the stored position of the k-th nonzero in row-major order.
fn sort_offsets(
    offsets: &mut Vec<u64>,
    shape: &[u64],
    strides: &[u64],
    ctx: &Ctx,
) -> Result<Vec<u64>> {
    let mut pairs: Vec<(u64, u64)> = offsets
        .iter()
        .enumerate()
        .map(|(i, &o)| (o, i as u64))
        .collect();
    pairs.sort_unstable();
    for w in pairs.windows(2) {
        if w[0].0 == w[1].0 {
            let index: Vec<u64> = strides
                .iter()
                .zip(shape)
                .map(|(&s, &d)| if d == 0 { 0 } else { w[0].0 / s % d })
                .collect();
            return Err(ctx.corrupt(format!(
                "nonzeros {} and {} have the same index {index:?}",
                w[0].1, w[1].1
            )));
        }
    }
    offsets.clear();
    offsets.extend(pairs.iter().map(|p| p.0));
    Ok(pairs.into_iter().map(|p| p.1).collect())
}

/// A byte stream read through a buffer, in exact-size pieces.
struct Buffered<'a> {
    inner: Box<dyn ByteStream + 'a>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl<'a> Buffered<'a> {
    fn new(inner: Box<dyn ByteStream + 'a>) -> Self {
        Buffered {
            inner,
            buf: vec![0; CHUNK],
            pos: 0,
            len: 0,
        }
    }

    /// Fills `out` completely; an early end of the stream is corruption.
    fn read_exact(&mut self, out: &mut [u8], ctx: &Ctx) -> Result<()> {
        let mut done = 0;
        while done < out.len() {
            if self.pos == self.len {
                self.len = self.inner.read(&mut self.buf)?;
                self.pos = 0;
                if self.len == 0 {
                    return Err(ctx.corrupt("a part of the sparse tensor ends early"));
                }
            }
            let n = (out.len() - done).min(self.len - self.pos);
            out[done..done + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
        Ok(())
    }

    /// Reads to the end (running the stream's integrity checks); leftover bytes are
    /// corruption.
    fn expect_end(&mut self, ctx: &Ctx) -> Result<()> {
        if self.pos < self.len || self.inner.read(&mut self.buf)? != 0 {
            return Err(
                ctx.corrupt("a part of the sparse tensor holds more data than its shape says")
            );
        }
        self.pos = 0;
        self.len = 0;
        Ok(())
    }
}

/// Where a dense fixed-size stream takes its values from.
enum FixedValues<'a> {
    /// In stored order, which is row-major order.
    Stream(Buffered<'a>),
    /// All values in stored order, emitted in `perm` order.
    Memory { data: Vec<u8>, perm: Vec<u64> },
}

/// The dense tensor of fixed-size elements.
struct DenseFixed<'a> {
    elem: usize,
    total: u64,
    /// Dense elements already scheduled (emitted or queued in `pending`/`zeros`).
    next: u64,
    /// Sorted linear offsets of the nonzeros.
    offsets: Vec<u64>,
    /// Next nonzero.
    k: usize,
    values: FixedValues<'a>,
    pending: Vec<u8>,
    pending_pos: usize,
    /// Zero bytes still to emit.
    zeros: u64,
    finished: bool,
    ctx: Ctx,
}

impl ByteStream for DenseFixed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut w = 0;
        while w < buf.len() {
            if self.pending_pos < self.pending.len() {
                let n = (buf.len() - w).min(self.pending.len() - self.pending_pos);
                buf[w..w + n]
                    .copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
                self.pending_pos += n;
                w += n;
            } else if self.zeros > 0 {
                let n = usize::try_from(self.zeros)
                    .unwrap_or(usize::MAX)
                    .min(buf.len() - w);
                buf[w..w + n].fill(0);
                self.zeros -= n as u64;
                w += n;
            } else if let Some(&off) = self.offsets.get(self.k) {
                if off > self.next {
                    self.zeros = (off - self.next) * self.elem as u64;
                    self.next = off;
                    continue;
                }
                self.pending.resize(self.elem, 0);
                match &mut self.values {
                    FixedValues::Stream(s) => s.read_exact(&mut self.pending, &self.ctx)?,
                    FixedValues::Memory { data, perm } => {
                        let at = perm[self.k] as usize * self.elem;
                        self.pending.copy_from_slice(&data[at..at + self.elem]);
                    }
                }
                self.pending_pos = 0;
                self.k += 1;
                self.next += 1;
            } else if self.next < self.total {
                self.zeros = (self.total - self.next) * self.elem as u64;
                self.next = self.total;
            } else {
                if !self.finished {
                    if let FixedValues::Stream(s) = &mut self.values {
                        s.expect_end(&self.ctx)?;
                    }
                    self.finished = true;
                }
                break;
            }
        }
        Ok(w)
    }
}

/// Where a dense string tensor takes its values from.
enum StrValues<'a> {
    /// In stored order, which is row-major order.
    Stream(Box<dyn StringRead + 'a>),
    /// All values in stored order, emitted in `perm` order.
    Memory { data: Vec<Vec<u8>>, perm: Vec<u64> },
}

/// The dense tensor of strings: the values where set, empty strings elsewhere.
struct DenseStrings<'a> {
    total: u64,
    next: u64,
    offsets: Vec<u64>,
    k: usize,
    values: StrValues<'a>,
    finished: bool,
    ctx: Ctx,
}

impl StringRead for DenseStrings<'_> {
    fn max_len(&mut self) -> Result<u64> {
        match &mut self.values {
            StrValues::Stream(s) => s.max_len(),
            StrValues::Memory { data, .. } => {
                Ok(data.iter().map(|v| v.len() as u64).max().unwrap_or(0))
            }
        }
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        if self.next >= self.total {
            if !self.finished {
                if let StrValues::Stream(s) = &mut self.values {
                    if s.next_into(out)? {
                        out.clear();
                        return Err(self.ctx.corrupt("there are more values than indices"));
                    }
                }
                self.finished = true;
            }
            return Ok(false);
        }
        if self.offsets.get(self.k) == Some(&self.next) {
            match &mut self.values {
                StrValues::Stream(s) => {
                    if !s.next_into(out)? {
                        return Err(self.ctx.corrupt("there are fewer values than indices"));
                    }
                }
                StrValues::Memory { data, perm } => {
                    out.extend_from_slice(&data[perm[self.k] as usize]);
                }
            }
            self.k += 1;
        }
        self.next += 1;
        Ok(true)
    }
}

/// Reads a `dense_shape` part: `rank` int64 values, each ≥ 0.
pub fn read_dense_shape(raw: RawTensor<'_>, rank: usize, ctx: &Ctx) -> Result<Vec<u64>> {
    let RawTensor::Fixed(stream) = raw else {
        return Err(ctx.corrupt("dense_shape is not an int64 tensor"));
    };
    let mut b = Buffered::new(stream);
    let mut dims = Vec::with_capacity(rank);
    let mut word = [0u8; 8];
    for _ in 0..rank {
        b.read_exact(&mut word, ctx)?;
        let d = i64::from_le_bytes(word);
        let d = u64::try_from(d)
            .map_err(|_| ctx.corrupt(format!("dense_shape has a negative dimension ({d})")))?;
        dims.push(d);
    }
    b.expect_end(ctx)?;
    Ok(dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::VecStrings;
    use crate::stream::{read_to_end, SliceStream};

    fn ctx() -> Ctx {
        Ctx::file("sp.pb").tensor("sp")
    }

    fn ix_bytes(ix: &[i64]) -> Vec<u8> {
        ix.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn dense_f32(ix: &[i64], vals: &[f32], shape: &[u64]) -> Result<Vec<f32>> {
        let ixb = ix_bytes(ix);
        let vb: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let raw = densify(
            SparseData {
                indices: Box::new(SliceStream::new(&ixb)),
                nnz: vals.len() as u64,
                values: RawTensor::Fixed(Box::new(SliceStream::new(&vb))),
                dtype: DataType::Float,
                dense_shape: shape.to_vec(),
            },
            &ctx(),
        )?;
        let RawTensor::Fixed(mut s) = raw else {
            panic!("strings")
        };
        let mut out = Vec::new();
        read_to_end(&mut s, &mut out)?;
        Ok(out
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    #[test]
    fn densifies_sorted_and_unsorted() {
        let want = vec![0.0, 1.0, 0.0, 0.0, 0.0, 2.0];
        assert_eq!(
            dense_f32(&[0, 1, 1, 2], &[1.0, 2.0], &[2, 3]).unwrap(),
            want
        );
        assert_eq!(
            dense_f32(&[1, 2, 0, 1], &[2.0, 1.0], &[2, 3]).unwrap(),
            want
        );
        assert_eq!(dense_f32(&[], &[], &[2, 0]).unwrap(), Vec::<f32>::new());
        assert_eq!(dense_f32(&[], &[7.0], &[]).unwrap(), vec![7.0]);
    }

    #[test]
    fn rejects_out_of_range_and_duplicate_indices() {
        let err = dense_f32(&[0, 3], &[1.0], &[2, 3])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("sp.pb: tensor `sp`: index [0, 3] of nonzero 0 is out of range"),
            "{err}"
        );
        let err = dense_f32(&[-1, 0], &[1.0], &[2, 3])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("out of range"), "{err}");
        let err = dense_f32(&[1, 1, 0, 0, 1, 1], &[1.0, 2.0, 3.0], &[2, 3])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("nonzeros 0 and 2 have the same index [1, 1]"),
            "{err}"
        );
    }

    #[test]
    fn rejects_short_parts() {
        let err = dense_f32(&[0], &[1.0], &[2, 3]).err().unwrap().to_string();
        assert!(err.contains("ends early"), "{err}");
    }

    #[test]
    fn densifies_strings_in_both_orders() {
        for (ix, vals) in [
            (vec![0i64, 2], vec![b"a".to_vec(), b"ccc".to_vec()]),
            (vec![2i64, 0], vec![b"ccc".to_vec(), b"a".to_vec()]),
        ] {
            let ixb = ix_bytes(&ix);
            let raw = densify(
                SparseData {
                    indices: Box::new(SliceStream::new(&ixb)),
                    nnz: 2,
                    values: RawTensor::Strings(Box::new(VecStrings::new(vals))),
                    dtype: DataType::String,
                    dense_shape: vec![4],
                },
                &ctx(),
            )
            .unwrap();
            let RawTensor::Strings(mut s) = raw else {
                panic!("fixed")
            };
            assert_eq!(s.max_len().unwrap(), 3);
            let mut got = Vec::new();
            let mut buf = Vec::new();
            while s.next_into(&mut buf).unwrap() {
                got.push(buf.clone());
            }
            assert_eq!(got, [b"a".to_vec(), vec![], b"ccc".to_vec(), vec![]]);
        }
    }

    #[test]
    fn streams_into_tiny_buffers() {
        let ixb = ix_bytes(&[1, 3]);
        let vb: Vec<u8> = [1.5f64, 2.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let raw = densify(
            SparseData {
                indices: Box::new(SliceStream::new(&ixb)),
                nnz: 2,
                values: RawTensor::Fixed(Box::new(SliceStream::new(&vb))),
                dtype: DataType::Double,
                dense_shape: vec![5],
            },
            &ctx(),
        )
        .unwrap();
        let RawTensor::Fixed(mut s) = raw else {
            panic!()
        };
        let mut out = Vec::new();
        let mut b = [0u8; 3];
        loop {
            let n = s.read(&mut b).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&b[..n]);
        }
        let mut want = vec![0u8; 40];
        want[8..16].copy_from_slice(&1.5f64.to_le_bytes());
        want[24..32].copy_from_slice(&2.5f64.to_le_bytes());
        assert_eq!(out, want);
    }
}
