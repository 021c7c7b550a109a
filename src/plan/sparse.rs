//! Sparse tensors (tf-formats.md §8.5–§8.6): densifying COO parts (`indices` int64
//! `[nnz, rank]`, `values` `[nnz]`, `dense_shape` int64 `[rank]`) as a stream, and
//! finding such parts stored as sibling tensors `X/indices`, `X/values`,
//! `X/dense_shape` (each optionally with the TF2 `/.ATTRIBUTES/VARIABLE_VALUE` suffix)
//! in any container.
//!
//! The dense array is produced in row-major order and never built in memory: the values
//! flow through from the reader's normal [`RawTensor`] stream, with zeros (or empty
//! strings) emitted between them. Memory is O(nnz): 8 bytes per nonzero for the linear
//! offsets; and when the indices are not in row-major order (TensorFlow's canonical
//! order, which every TF writer produces), also 8 more bytes per nonzero for the sort
//! permutation plus the values themselves, which must then be emitted out of stored
//! order. Out-of-range and duplicate indices are errors.

use super::names::VARIABLE_VALUE_SUFFIX;
use crate::dtype::DataType;
use crate::error::{Ctx, Error, Result};
use crate::source::{num_elements, Container, Entry, RawTensor, StringRead};
use crate::stream::ByteStream;
use std::collections::HashMap;

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

/// Sibling entries of a container that together form one sparse tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseGroup {
    /// The dense tensor's name: the parts' common prefix `X` (without the TF2 suffix).
    pub name: String,
    /// Entry index of `X/indices`.
    pub indices: usize,
    /// Entry index of `X/values`.
    pub values: usize,
    /// Entry index of `X/dense_shape`.
    pub dense_shape: usize,
}

/// The dense name for an `indices` part's name: `X` for `X/indices` and for
/// `X/indices/.ATTRIBUTES/VARIABLE_VALUE`.
pub fn group_name(indices_name: &str) -> Option<&str> {
    let base = indices_name
        .strip_suffix(VARIABLE_VALUE_SUFFIX)
        .unwrap_or(indices_name);
    base.strip_suffix("/indices").filter(|p| !p.is_empty())
}

/// Finds the sparse tensors stored as siblings among `entries` (by name, then checked
/// by dtype and shape). Name matches whose dtypes or shapes do not fit together are
/// reported in `warnings` and left as separate tensors.
pub fn find_groups(entries: &[Entry], warnings: &mut Vec<String>) -> Vec<SparseGroup> {
    let by_name: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    let mut groups = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let suffix = if e.name.ends_with(VARIABLE_VALUE_SUFFIX) {
            VARIABLE_VALUE_SUFFIX
        } else {
            ""
        };
        let Some(prefix) = group_name(&e.name) else {
            continue;
        };
        let (Some(&values), Some(&dense_shape)) = (
            by_name.get(format!("{prefix}/values{suffix}").as_str()),
            by_name.get(format!("{prefix}/dense_shape{suffix}").as_str()),
        ) else {
            continue;
        };
        let group = SparseGroup {
            name: prefix.to_string(),
            indices: i,
            values,
            dense_shape,
        };
        match check_group(entries, &group) {
            Ok(()) => groups.push(group),
            Err(why) => warnings.push(format!(
                "`{prefix}/indices`, `values` and `dense_shape` are not a sparse tensor ({why}); \
                 writing them as they are"
            )),
        }
    }
    groups
}

/// Checks that a group's parts have the dtypes and shapes of a sparse tensor.
pub fn check_group(entries: &[Entry], g: &SparseGroup) -> std::result::Result<(), String> {
    let (ix, vals, shape) = (
        &entries[g.indices],
        &entries[g.values],
        &entries[g.dense_shape],
    );
    if ix.hidden || vals.hidden || shape.hidden {
        return Err("a part is hidden".to_string());
    }
    let [nnz, rank] = ix.shape[..] else {
        return Err(format!(
            "indices have shape {:?}, not [nnz, rank]",
            ix.shape
        ));
    };
    if ix.dtype != DataType::Int64 || shape.dtype != DataType::Int64 {
        return Err(format!(
            "indices are {} and dense_shape is {}, not int64",
            ix.dtype, shape.dtype
        ));
    }
    if vals.shape != [nnz] {
        return Err(format!(
            "values have shape {:?}, not [{nnz}] like the indices",
            vals.shape
        ));
    }
    if shape.shape != [rank] {
        return Err(format!(
            "dense_shape has shape {:?}, not [{rank}] like the indices' rank",
            shape.shape
        ));
    }
    if !vals.dtype.is_convertible() {
        return Err(format!("{} values", vals.dtype));
    }
    Ok(())
}

/// Opens a sibling group: reads its `dense_shape`, and returns the dense tensor's entry
/// and its densifying stream.
pub fn open_group<'a>(
    container: &'a dyn Container,
    g: &SparseGroup,
    verify: bool,
) -> Result<(Entry, RawTensor<'a>)> {
    let entries = container.entries();
    let file = Ctx::file(container.path());
    let ctx = file.tensor(&g.name);
    check_group(entries, g).map_err(|why| ctx.corrupt(why))?;
    let (ix, vals, se) = (
        &entries[g.indices],
        &entries[g.values],
        &entries[g.dense_shape],
    );
    let part = |i: usize, e: &Entry| {
        container
            .open(i, verify)
            .map_err(|err| err.in_tensor(&e.name))
    };
    let dense_shape = read_dense_shape(
        part(g.dense_shape, se)?,
        se.shape[0] as usize,
        &file.tensor(&se.name),
    )?;
    let RawTensor::Fixed(indices) = part(g.indices, ix)? else {
        return Err(Error::usage(format!(
            "internal error: int64 tensor `{}` read as strings",
            ix.name
        )));
    };
    let values = part(g.values, vals)?;
    let nnz = ix.shape[0];
    let entry = Entry {
        name: g.name.clone(),
        dtype: vals.dtype,
        shape: dense_shape.clone(),
        stored_bytes: ix.stored_bytes + vals.stored_bytes + se.stored_bytes,
        location: format!("sparse, {nnz} values"),
        hidden: false,
    };
    let raw = densify(
        SparseData {
            indices,
            nnz,
            values,
            dtype: vals.dtype,
            dense_shape,
        },
        &ctx,
    )?;
    Ok((entry, raw))
}

#[cfg(test)]
mod tests {
    use super::*;
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

    struct Strs(Vec<Vec<u8>>, usize);
    impl StringRead for Strs {
        fn max_len(&mut self) -> Result<u64> {
            Ok(self.0.iter().map(|v| v.len() as u64).max().unwrap_or(0))
        }
        fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
            out.clear();
            let Some(v) = self.0.get(self.1) else {
                return Ok(false);
            };
            out.extend_from_slice(v);
            self.1 += 1;
            Ok(true)
        }
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
                    values: RawTensor::Strings(Box::new(Strs(vals, 0))),
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

    fn entry(name: &str, dtype: DataType, shape: &[u64]) -> Entry {
        Entry {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            stored_bytes: 0,
            location: String::new(),
            hidden: false,
        }
    }

    #[test]
    fn finds_sibling_groups() {
        let s = VARIABLE_VALUE_SUFFIX;
        let entries = vec![
            entry(&format!("sp/dense_shape{s}"), DataType::Int64, &[2]),
            entry(&format!("sp/indices{s}"), DataType::Int64, &[4, 2]),
            entry(&format!("sp/values{s}"), DataType::Float, &[4]),
            entry("a/indices", DataType::Int64, &[4, 2]),
            entry("a/values", DataType::Float, &[3]),
            entry("a/dense_shape", DataType::Int64, &[2]),
            entry("b/indices", DataType::Int64, &[4, 2]),
            entry("b/values", DataType::Float, &[4]),
        ];
        let mut warnings = Vec::new();
        let groups = find_groups(&entries, &mut warnings);
        assert_eq!(
            groups,
            [SparseGroup {
                name: "sp".into(),
                indices: 1,
                values: 2,
                dense_shape: 0
            }]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("`a/indices`"), "{warnings:?}");
    }
}
