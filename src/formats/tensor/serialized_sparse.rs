//! Serialized sparse tensors (tf-formats.md §8.6): a string TensorProto file written by
//! `tf.io.serialize_tensor(tf.io.serialize_sparse(st))` (shape `[3]`) or
//! `serialize_many_sparse` (shape `[N, 3]`), whose elements are serialized TensorProtos:
//! `indices` int64 `[nnz, rank]`, `values` `[nnz]` and `dense_shape` int64 `[rank]`,
//! one triple per row.
//!
//! Recognized by structure, not name: a string tensor whose last dimension is 3 and
//! whose every element decodes to TensorProtos of those dtypes and matching shapes.
//! Listed as one entry (named by the file stem) of the values' dtype with the dense
//! shape, densified while streaming by [`crate::densify::densify`]. For
//! `serialize_many_sparse` the dense shape is `[N] + max over rows of each row's
//! shape`, as `tf.io.deserialize_many_sparse` computes it, and row `b`'s indices get a
//! leading batch column `b`.
//!
//! With `--sparse keep` the entries are the parts instead, `NAME/indices` (int64
//! `[nnz, rank]`), `NAME/values` (`[nnz]`) and `NAME/dense_shape` (int64 `[rank]`). For
//! `serialize_many_sparse` these are the batch-wide parts exactly as
//! `tf.io.deserialize_many_sparse` returns them: indices with the leading batch column,
//! all rows' values concatenated, and the batch dense shape.

use crate::densify::{densify, read_dense_shape, SparseData};
use crate::dtype::DataType;
use crate::error::{Ctx, Error, Result};
use crate::formats::proto::TensorProto;
use crate::formats::tensor::tensorproto::{
    open_tensor, parse_dtype, parse_shape, stored_bytes, TensorProtoFile,
};
use crate::source::{num_elements, Container, Entry, RawTensor, StringRead};
use crate::stream::{ByteStream, SliceStream};
use prost::Message;
use std::path::{Path, PathBuf};

/// One `(indices, values, dense_shape)` triple.
struct Row {
    indices: TensorProto,
    values: TensorProto,
    nnz: u64,
}

/// Which tensor an entry stands for.
#[derive(Clone, Copy, Debug)]
enum Part {
    Dense,
    DenseShape,
    Indices,
    Values,
}

/// A serialized sparse tensor file.
pub struct SerializedSparse {
    path: PathBuf,
    file_len: u64,
    name: String,
    rows: Vec<Row>,
    /// `serialize_many_sparse` (rows get a batch column).
    batched: bool,
    /// Rank of each row's indices.
    row_rank: usize,
    dtype: DataType,
    dense_shape: Vec<u64>,
    nnz: u64,
    parts: Vec<Part>,
    entries: Vec<Entry>,
}

/// Recognizes a serialized sparse tensor in a decoded TensorProto file. `Ok(None)` when
/// it is not one (then it is an ordinary tensor); an error when it has the structure of
/// one but its content is invalid (e.g. a negative dense dimension). `keep` lists the
/// parts instead of the dense tensor.
pub fn detect(file: &TensorProtoFile, keep: bool) -> Result<Option<SerializedSparse>> {
    let e = &file.entries()[0];
    if e.dtype != DataType::String {
        return Ok(None);
    }
    let batched = match e.shape[..] {
        [3] => false,
        [n, 3] if n >= 1 => true,
        _ => return Ok(None),
    };
    // A serialized sparse tensor stores every element: the repeat-last rule of
    // `string_val` must not turn a few stored strings into billions of parts to decode.
    let tp = file.proto();
    if tp.tensor_content.is_empty() && num_elements(&e.shape) != Some(tp.string_val.len() as u64) {
        return Ok(None);
    }
    let path = file.path();
    let ctx = Ctx::file(path).tensor(&e.name);
    let Ok(RawTensor::Strings(mut strings)) = open_tensor(file.proto(), e.dtype, &e.shape, &ctx)
    else {
        return Ok(None);
    };
    let mut protos = Vec::new();
    let mut buf = Vec::new();
    loop {
        match strings.next_into(&mut buf) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => return Ok(None),
        }
        match TensorProto::decode(&buf[..]) {
            Ok(tp) => protos.push(tp),
            Err(_) => return Ok(None),
        }
    }
    if protos.len() % 3 != 0 || protos.is_empty() {
        return Ok(None);
    }
    let quiet = Ctx::file(path);
    let mut rows = Vec::new();
    let mut shapes = Vec::new();
    let mut layout: Option<(usize, DataType)> = None;
    let mut it = protos.into_iter();
    while let (Some(indices), Some(values), Some(shape)) = (it.next(), it.next(), it.next()) {
        let Some((nnz, rank, dtype)) = row_layout(&indices, &values, &shape, &quiet) else {
            return Ok(None);
        };
        match layout {
            None => layout = Some((rank, dtype)),
            Some(l) if l == (rank, dtype) => {}
            Some(_) => return Ok(None),
        }
        // From here on it is a sparse tensor: bad content is an error, not "not sparse".
        let raw = open_tensor(&shape, DataType::Int64, &[rank as u64], &ctx)?;
        shapes.push(read_dense_shape(raw, rank, &ctx)?);
        rows.push(Row {
            indices,
            values,
            nnz,
        });
    }
    let Some((row_rank, dtype)) = layout else {
        return Ok(None);
    };
    let dense_shape = if batched {
        let mut d = vec![rows.len() as u64];
        d.extend((0..row_rank).map(|i| shapes.iter().map(|s| s[i]).max().unwrap_or(0)));
        d
    } else {
        shapes.swap_remove(0)
    };
    if num_elements(&dense_shape).is_none_or(|n| n > i64::MAX as u64) {
        return Err(ctx.corrupt(format!(
            "dense shape {dense_shape:?} has more elements than fit in 64 bits"
        )));
    }
    let nnz = rows
        .iter()
        .try_fold(0u64, |a, r| a.checked_add(r.nnz))
        .ok_or_else(|| ctx.corrupt("the number of values overflows"))?;
    let ix_bytes: u64 = rows.iter().map(|r| stored_bytes(&r.indices)).sum();
    let val_bytes: u64 = rows.iter().map(|r| stored_bytes(&r.values)).sum();
    let shape_bytes = rows.len() as u64 * row_rank as u64 * 8;
    let location = format!(
        "{nnz} values in {} row{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    let name = e.name.clone();
    let entry = |name: String, dtype, shape: Vec<u64>, stored_bytes| Entry {
        name,
        dtype,
        shape,
        stored_bytes,
        location: location.clone().into(),
        hidden: false,
    };
    let rank = dense_shape.len() as u64;
    let (parts, entries) = if keep {
        (
            vec![Part::DenseShape, Part::Indices, Part::Values],
            vec![
                entry(
                    format!("{name}/dense_shape"),
                    DataType::Int64,
                    vec![rank],
                    shape_bytes,
                ),
                entry(
                    format!("{name}/indices"),
                    DataType::Int64,
                    vec![nnz, rank],
                    ix_bytes,
                ),
                entry(format!("{name}/values"), dtype, vec![nnz], val_bytes),
            ],
        )
    } else {
        (
            vec![Part::Dense],
            vec![entry(
                name.clone(),
                dtype,
                dense_shape.clone(),
                ix_bytes + val_bytes + shape_bytes,
            )],
        )
    };
    Ok(Some(SerializedSparse {
        path: path.to_path_buf(),
        file_len: file.input_files().first().map_or(0, |f| f.1),
        name,
        rows,
        batched,
        row_rank,
        dtype,
        dense_shape,
        nnz,
        parts,
        entries,
    }))
}

/// `(nnz, rank, values dtype)` if the three protos have a sparse triple's dtypes and
/// shapes.
fn row_layout(
    indices: &TensorProto,
    values: &TensorProto,
    shape: &TensorProto,
    ctx: &Ctx,
) -> Option<(u64, usize, DataType)> {
    let int64 = DataType::Int64.code();
    if indices.dtype != int64 || shape.dtype != int64 {
        return None;
    }
    let ix = parse_shape(indices.tensor_shape.as_ref(), ctx).ok()?;
    let [nnz, rank] = ix[..] else {
        return None;
    };
    let dtype = parse_dtype(values.dtype, ctx).ok()?;
    if parse_shape(values.tensor_shape.as_ref(), ctx).ok()? != [nnz] {
        return None;
    }
    if parse_shape(shape.tensor_shape.as_ref(), ctx).ok()? != [rank] {
        return None;
    }
    Some((nnz, usize::try_from(rank).ok()?, dtype))
}

impl SerializedSparse {
    /// The indices of all rows as one `nnz x rank` int64 stream (with the batch column
    /// for `serialize_many_sparse`).
    fn indices<'a>(&'a self, ctx: &Ctx) -> Result<Box<dyn ByteStream + 'a>> {
        let mut streams = Vec::with_capacity(self.rows.len());
        for r in &self.rows {
            let shape = [r.nnz, self.row_rank as u64];
            match open_tensor(&r.indices, DataType::Int64, &shape, ctx)? {
                RawTensor::Fixed(s) => streams.push((s, r.nnz)),
                RawTensor::Strings(_) => {
                    return Err(Error::usage(
                        "internal error: int64 indices read as strings",
                    ))
                }
            }
        }
        if !self.batched {
            if let Some((s, _)) = streams.pop() {
                return Ok(s);
            }
        }
        Ok(Box::new(BatchIndices {
            rows: streams.into_iter(),
            cur: None,
            batch: -1,
            row_bytes: self.row_rank * 8,
            tuple: Vec::new(),
            pos: 0,
            ctx: ctx.clone(),
        }))
    }

    /// The values of all rows, concatenated.
    fn values<'a>(&'a self, ctx: &Ctx) -> Result<RawTensor<'a>> {
        let mut fixed = Vec::new();
        let mut strings = Vec::new();
        for r in &self.rows {
            match open_tensor(&r.values, self.dtype, &[r.nnz], ctx)? {
                RawTensor::Fixed(s) => fixed.push(s),
                RawTensor::Strings(s) => strings.push(s),
            }
        }
        if self.dtype == DataType::String {
            Ok(RawTensor::Strings(Box::new(ChainStrings {
                parts: strings,
                at: 0,
            })))
        } else {
            Ok(RawTensor::Fixed(Box::new(ChainStream {
                parts: fixed,
                at: 0,
            })))
        }
    }
}

impl Container for SerializedSparse {
    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> &'static str {
        "serialized sparse tensor"
    }

    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn open(&self, index: usize, _verify: bool) -> Result<RawTensor<'_>> {
        let ctx = Ctx::file(&self.path).tensor(&self.entries[index].name);
        match self.parts[index] {
            Part::Dense => densify(
                SparseData {
                    indices: self.indices(&ctx)?,
                    nnz: self.nnz,
                    values: self.values(&ctx)?,
                    dtype: self.dtype,
                    dense_shape: self.dense_shape.clone(),
                },
                &Ctx::file(&self.path).tensor(&self.name),
            ),
            Part::Indices => Ok(RawTensor::Fixed(self.indices(&ctx)?)),
            Part::Values => self.values(&ctx),
            Part::DenseShape => Ok(RawTensor::Fixed(Box::new(OwnedStream {
                data: self
                    .dense_shape
                    .iter()
                    .flat_map(|&d| (d as i64).to_le_bytes())
                    .collect(),
                pos: 0,
            }))),
        }
    }

    fn input_files(&self) -> Vec<(PathBuf, u64)> {
        vec![(self.path.clone(), self.file_len)]
    }
}

/// Row indices with a leading batch column: for row `b`, each `rank`-long index becomes
/// `[b, index...]`.
struct BatchIndices<'a> {
    rows: std::vec::IntoIter<(Box<dyn ByteStream + 'a>, u64)>,
    /// The current row's stream and how many indices it still holds.
    cur: Option<(Box<dyn ByteStream + 'a>, u64)>,
    batch: i64,
    row_bytes: usize,
    tuple: Vec<u8>,
    pos: usize,
    ctx: Ctx,
}

impl ByteStream for BatchIndices<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut w = 0;
        while w < buf.len() {
            if self.pos < self.tuple.len() {
                let n = (buf.len() - w).min(self.tuple.len() - self.pos);
                buf[w..w + n].copy_from_slice(&self.tuple[self.pos..self.pos + n]);
                self.pos += n;
                w += n;
                continue;
            }
            match &mut self.cur {
                Some((s, left)) if *left > 0 => {
                    self.tuple.clear();
                    self.tuple.extend_from_slice(&self.batch.to_le_bytes());
                    self.tuple.resize(8 + self.row_bytes, 0);
                    let mut got = 8;
                    while got < self.tuple.len() {
                        let n = s.read(&mut self.tuple[got..])?;
                        if n == 0 {
                            return Err(self
                                .ctx
                                .corrupt(format!("the indices of row {} end early", self.batch)));
                        }
                        got += n;
                    }
                    *left -= 1;
                    self.pos = 0;
                }
                Some((s, _)) => {
                    let mut probe = [0u8; 1];
                    if s.read(&mut probe)? != 0 {
                        return Err(self.ctx.corrupt(format!(
                            "the indices of row {} hold more data than their shape says",
                            self.batch
                        )));
                    }
                    self.cur = None;
                }
                None => match self.rows.next() {
                    Some(r) => {
                        self.cur = Some(r);
                        self.batch += 1;
                    }
                    None => break,
                },
            }
        }
        Ok(w)
    }
}

/// Byte streams one after the other.
struct ChainStream<'a> {
    parts: Vec<Box<dyn ByteStream + 'a>>,
    at: usize,
}

impl ByteStream for ChainStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        while let Some(s) = self.parts.get_mut(self.at) {
            let n = s.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.at += 1;
        }
        Ok(0)
    }
}

/// String streams one after the other.
struct ChainStrings<'a> {
    parts: Vec<Box<dyn StringRead + 'a>>,
    at: usize,
}

impl StringRead for ChainStrings<'_> {
    fn max_len(&mut self) -> Result<u64> {
        let mut m = 0;
        for p in &mut self.parts {
            m = m.max(p.max_len()?);
        }
        Ok(m)
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        while let Some(s) = self.parts.get_mut(self.at) {
            if s.next_into(out)? {
                return Ok(true);
            }
            self.at += 1;
        }
        out.clear();
        Ok(false)
    }
}

/// A stream over bytes it owns.
struct OwnedStream {
    data: Vec<u8>,
    pos: usize,
}

impl ByteStream for OwnedStream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut s = SliceStream::new(&self.data[self.pos..]);
        let n = s.read(buf)?;
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::densify::SparseMode;
    use crate::formats::proto::TensorShapeProto;
    use crate::formats::{open, OpenOptions};
    use crate::stream::read_to_end;

    fn shape(dims: &[i64]) -> Option<TensorShapeProto> {
        crate::formats::tensor::tensorproto::shape_proto(dims)
    }

    fn int64(dims: &[i64], vals: &[i64]) -> Vec<u8> {
        TensorProto {
            dtype: DataType::Int64.code(),
            tensor_shape: shape(dims),
            tensor_content: vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// One `serialize_sparse` row: float values, indices `ix` of rank `dense.len()`.
    fn row(ix: &[i64], vals: &[f32], dense: &[i64]) -> Vec<Vec<u8>> {
        let rank = dense.len() as i64;
        let nnz = vals.len() as i64;
        let values = TensorProto {
            dtype: DataType::Float.code(),
            tensor_shape: shape(&[nnz]),
            float_val: vals.to_vec(),
            ..Default::default()
        };
        vec![
            int64(&[nnz, rank], ix),
            values.encode_to_vec(),
            int64(&[rank], dense),
        ]
    }

    fn write(dir: &Path, name: &str, dims: &[i64], elems: Vec<Vec<u8>>) -> PathBuf {
        let tp = TensorProto {
            dtype: DataType::String.code(),
            tensor_shape: shape(dims),
            string_val: elems,
            ..Default::default()
        };
        let p = dir.join(name);
        std::fs::write(&p, tp.encode_to_vec()).unwrap();
        p
    }

    fn read(c: &dyn Container, i: usize) -> Result<Vec<u8>> {
        let RawTensor::Fixed(mut s) = c.open(i, true)? else {
            panic!("strings")
        };
        let mut out = Vec::new();
        read_to_end(&mut s, &mut out)?;
        Ok(out)
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn many_sparse_rows_take_the_max_shape_and_any_order() {
        let dir = tempfile::tempdir().unwrap();
        // Row 0: [2] with value at 1; row 1: [3] with values at 2 then 0 (unsorted).
        let mut elems = row(&[1], &[1.0], &[2]);
        elems.extend(row(&[2, 0], &[3.0, 2.0], &[3]));
        let p = write(dir.path(), "m.pb", &[2, 3], elems);
        let c = open(&p, &OpenOptions::default()).unwrap();
        assert_eq!(c.kind(), "serialized sparse tensor");
        assert_eq!(c.entries()[0].shape, [2, 3]);
        assert_eq!(c.entries()[0].dtype, DataType::Float);
        assert_eq!(
            read(c.as_ref(), 0).unwrap(),
            f32s(&[0.0, 1.0, 0.0, 2.0, 0.0, 3.0])
        );
        let keep = OpenOptions {
            sparse: SparseMode::Keep,
            ..Default::default()
        };
        let c = open(&p, &keep).unwrap();
        let names: Vec<&str> = c.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["m/dense_shape", "m/indices", "m/values"]);
        let i64s = |v: &[i64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        assert_eq!(read(c.as_ref(), 0).unwrap(), i64s(&[2, 3]));
        assert_eq!(read(c.as_ref(), 1).unwrap(), i64s(&[0, 1, 1, 2, 1, 0]));
        assert_eq!(c.entries()[1].shape, [3, 2]);
        assert_eq!(read(c.as_ref(), 2).unwrap(), f32s(&[1.0, 3.0, 2.0]));
    }

    #[test]
    fn bad_indices_are_errors_naming_file_and_tensor() {
        let dir = tempfile::tempdir().unwrap();
        for (name, ix, want) in [
            ("range.pb", vec![0i64, 0, 2, 0], "out of range"),
            ("dup.pb", vec![1i64, 1, 1, 1], "have the same index [1, 1]"),
        ] {
            let p = write(dir.path(), name, &[3], row(&ix, &[1.0, 2.0], &[2, 2]));
            let c = open(&p, &OpenOptions::default()).unwrap();
            let err = read(c.as_ref(), 0).unwrap_err().to_string();
            let stem = name.trim_end_matches(".pb");
            assert!(err.contains(&format!("{name}: tensor `{stem}`: ")), "{err}");
            assert!(err.contains(want), "{err}");
        }
        // A negative dense dimension is found when the file is opened.
        let p = write(dir.path(), "neg.pb", &[3], row(&[], &[], &[2, -1]));
        let err = open(&p, &OpenOptions::default()).err().unwrap().to_string();
        assert!(err.contains("negative dimension"), "{err}");
    }

    #[test]
    fn broadcast_string_val_is_not_expanded_into_parts() {
        // Found while fuzzing (fuzz/README.md): shape [2^40, 3] with one empty
        // string_val (an empty TensorProto) repeated: detection decoded 3 * 2^40 parts.
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "b.pb", &[1 << 40, 3], vec![Vec::new()]);
        let c = open(&p, &OpenOptions::default()).unwrap();
        assert_eq!(c.kind(), "TensorProto");
        assert_eq!(c.entries()[0].shape, [1 << 40, 3]);
    }

    #[test]
    fn other_string_tensors_are_not_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "s.pb",
            &[3],
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
        );
        assert_eq!(
            open(&p, &OpenOptions::default()).unwrap().kind(),
            "TensorProto"
        );
        // Three TensorProtos, but the values do not match the indices.
        let mut elems = row(&[0, 1], &[1.0], &[4]);
        elems[0] = int64(&[2, 1], &[0, 1]);
        let p = write(dir.path(), "t.pb", &[3], elems);
        assert_eq!(
            open(&p, &OpenOptions::default()).unwrap().kind(),
            "TensorProto"
        );
    }
}
