//! V1 checkpoints (tf-formats.md §7): one table file per shard (`model.ckpt`, or
//! `model.ckpt-00000-of-00002` … named by the glob `model.ckpt-?????-of-00002`), each
//! holding `SavedTensorSlices` records. Key `""` is the file's table of contents (a
//! `SavedTensorSliceMeta`: name, shape, dtype and the slices *this file* stores, per
//! tensor); every other key is `EncodeTensorNameSlice(name, slice)` and holds one
//! `SavedSlice` whose `TensorProto` carries only the typed value field (no dtype, no
//! shape). Every tensor is stored as slices, an unpartitioned one as a single full slice.
//!
//! [`V1Checkpoint::open`] reads only the header record of every file. It gathers each
//! tensor's slices across all files, checks the format version, every dtype and shape
//! (a tensor listed by several files must agree), every slice's rank and bounds, and
//! that the slices cover the tensor exactly once, before anything is converted. Data
//! records are read when a tensor is streamed: each slice's record is fetched from the
//! file whose header lists it ([`Table::get`]), decoded, checked (its name and slice
//! must match the key, and it must hold exactly one value per element; V1 has no
//! repeat-last rule), and reassembled by [`AssembledBytes`] / [`AssembledStrings`].
//! float16 and partitioned tensors, which TensorFlow's own V1 reader refuses, are read
//! like any other.
//!
//! Memory: a slice record is one protobuf message (TensorFlow's writer caps it at
//! 2 GiB) and must be decoded whole; that is inherent to the format. Each slice's
//! record is loaded when reassembly first needs it and dropped as soon as its last
//! element has been streamed, so at most one record per slice is held, and the
//! reassembled tensor is never materialized. While one record is loaded, its table
//! block, the record's bytes and its decoded values coexist briefly (about three times
//! the record). Row-partitioned and unpartitioned tensors therefore hold one record at
//! a time; slices that share rows (partitioned along a later axis) are interleaved and
//! held together. String tensors take two passes over their slices (one for the
//! longest element, one for the elements), loading one slice at a time in each, except
//! a single-slice tensor, whose record is kept between the passes.
//!
//! V1 files have no per-tensor checksums: the table's block checksums are always
//! verified, and `--no-verify` changes nothing here.

use crate::dtype::DataType;
use crate::error::{Ctx, Error, Result};
use crate::formats::checkpoint::slice_key::{
    box_volume, check_cover, encode_tensor_name_slice, AssembledBytes, AssembledStrings, SliceBox,
    TensorSlice,
};
use crate::formats::checkpoint::table::{show_key, Table};
use crate::formats::proto::{SavedSlice, SavedTensorSlices};
use crate::formats::tensor::tensorproto::{open_typed_exact, parse_dtype, parse_shape};
use crate::source::{num_elements, Container, Entry, RawTensor, StringRead};
use crate::stream::ByteStream;
use prost::Message;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What `--list` calls this container.
pub const KIND: &str = "TensorFlow V1 checkpoint";
/// `TF_CHECKPOINT_VERSION`: the V1 format version tf2npy reads (§7.2).
const CHECKPOINT_VERSION: i32 = 1;
/// `TF_CHECKPOINT_VERSION_MIN_PRODUCER`.
const CHECKPOINT_MIN_PRODUCER: i32 = 0;

/// The stem, shard number and shard count of a sharded V1 file name
/// `STEM-NNNNN-of-MMMMM` (`ShardedFilename`: five or more digits each).
pub fn shard_name_parts(name: &[u8]) -> Option<(&[u8], u64, u64)> {
    let digits = |s: &[u8]| -> Option<u64> {
        if s.len() < 5 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let of = name.windows(4).rposition(|w| w == b"-of-")?;
    let total = digits(name.get(of + 4..)?)?;
    let dash = name.get(..of)?.iter().rposition(|&b| b == b'-')?;
    let shard = digits(name.get(dash + 1..of)?)?;
    (dash > 0).then(|| (&name[..dash], shard, total))
}

/// `ShardedFilename(stem, shard, total)`: `STEM-00000-of-00002`.
fn shard_file_name(stem: &[u8], shard: u64, total: u64) -> Vec<u8> {
    let mut v = stem.to_vec();
    v.extend_from_slice(format!("-{shard:05}-of-{total:05}").as_bytes());
    v
}

fn file_name(path: &Path) -> &[u8] {
    path.file_name().map_or(&[], |n| n.as_bytes())
}

/// One slice of a tensor: the file whose header lists it, and its geometry.
#[derive(Debug)]
struct Part {
    /// Index into `V1Checkpoint::files`.
    file: usize,
    /// The slice exactly as listed (its key is built from it).
    slice: TensorSlice,
    /// Its text form, for messages.
    text: String,
    /// Its box in the full tensor.
    bx: SliceBox,
}

/// A listed tensor's slices; empty `parts` never happens for a readable tensor with
/// elements (the cover check refuses it).
#[derive(Debug)]
struct Tensor {
    parts: Vec<Part>,
    /// Variant and resource tensors are listed but never read.
    readable: bool,
}

/// A V1 checkpoint, opened and validated: every shard file's table and the tensors
/// their headers list.
#[derive(Debug)]
pub struct V1Checkpoint {
    path: PathBuf,
    files: Vec<Table>,
    entries: Vec<Entry>,
    tensors: Vec<Tensor>,
}

/// Reads the header record (key `""`) of a V1 table.
fn read_header(table: &Table) -> Result<crate::formats::proto::SavedTensorSliceMeta> {
    let ctx = Ctx::file(table.path());
    let (key, value) = table
        .scan()
        .next()
        .ok_or_else(|| ctx.corrupt("the table is empty: a V1 checkpoint starts with a header"))??;
    if !key.is_empty() {
        return Err(ctx.corrupt(format!(
            "the first key is {}, not the header entry (the empty key)",
            show_key(&key)
        )));
    }
    let sts = SavedTensorSlices::decode(value.as_slice()).map_err(|e| {
        ctx.corrupt(format!(
            "not a V1 checkpoint: the header entry is not a SavedTensorSlices: {e}"
        ))
    })?;
    let meta = sts.meta.ok_or_else(|| {
        ctx.corrupt("not a V1 checkpoint: the header entry holds no SavedTensorSliceMeta")
    })?;
    crate::formats::check_versions(
        meta.versions.as_ref(),
        "checkpoint",
        CHECKPOINT_VERSION,
        CHECKPOINT_MIN_PRODUCER,
        &ctx,
    )?;
    Ok(meta)
}

/// What is known of one tensor while the headers are gathered.
struct Gathered {
    dtype: DataType,
    shape: Vec<u64>,
    /// The first file that lists it.
    first_file: usize,
    parts: Vec<Part>,
}

impl V1Checkpoint {
    /// Opens the V1 checkpoint made of exactly `files` (one table per shard; a single
    /// file for an unsharded save or when the user names one shard). `user_path` is
    /// what the user gave (a file, pattern or folder).
    pub fn open(user_path: &Path, files: &[PathBuf]) -> Result<V1Checkpoint> {
        let mut tables = Vec::with_capacity(files.len());
        for f in files {
            tables.push(Table::open(f)?);
        }
        let mut gathered: BTreeMap<String, Gathered> = BTreeMap::new();
        for (fi, table) in tables.iter().enumerate() {
            let meta = read_header(table)?;
            let fctx = Ctx::file(table.path());
            for m in meta.tensor {
                let ctx = fctx.tensor(&m.name);
                let dtype = parse_dtype(m.r#type, &ctx)?;
                let shape = parse_shape(m.shape.as_ref(), &ctx)?;
                let g = match gathered.get_mut(&m.name) {
                    Some(g) => {
                        let first = tables[g.first_file].path().display();
                        if g.dtype != dtype {
                            return Err(ctx.corrupt(format!(
                                "listed as {dtype} here but as {} in {first}",
                                g.dtype
                            )));
                        }
                        if g.shape != shape {
                            return Err(ctx.corrupt(format!(
                                "listed with shape {shape:?} here but {:?} in {first}",
                                g.shape
                            )));
                        }
                        g
                    }
                    None => gathered.entry(m.name.clone()).or_insert(Gathered {
                        dtype,
                        shape,
                        first_file: fi,
                        parts: Vec::new(),
                    }),
                };
                for sp in &m.slice {
                    let slice = TensorSlice::from_proto(sp);
                    let bx = slice.resolve(&g.shape).map_err(|e| ctx.corrupt(e))?;
                    g.parts.push(Part {
                        file: fi,
                        text: slice.to_text(),
                        slice,
                        bx,
                    });
                }
            }
        }
        let one_shard_hint = one_shard_hint(files);
        let mut entries = Vec::with_capacity(gathered.len());
        let mut tensors = Vec::with_capacity(gathered.len());
        for (name, g) in gathered {
            let ctx = Ctx::file(tables[g.first_file].path()).tensor(&name);
            let boxes: Vec<SliceBox> = g.parts.iter().map(|p| p.bx.clone()).collect();
            check_cover(&g.shape, &boxes, |i| {
                g.parts.get(i).map_or(String::new(), |p| p.text.clone())
            })
            .map_err(|e| ctx.corrupt(format!("{e}{one_shard_hint}")))?;
            let n = num_elements(&g.shape).unwrap_or(0);
            let nfiles = {
                let mut f: Vec<usize> = g.parts.iter().map(|p| p.file).collect();
                f.sort_unstable();
                f.dedup();
                f.len()
            };
            entries.push(Entry {
                name,
                dtype: g.dtype,
                shape: g.shape,
                // Records are varint-encoded; this is the size of the decoded values.
                stored_bytes: g.dtype.storage_bytes().map_or(n, |b| n.saturating_mul(b)),
                location: crate::source::Location::Slices {
                    slices: u32::try_from(g.parts.len()).unwrap_or(u32::MAX),
                    files: u32::try_from(nfiles).unwrap_or(u32::MAX),
                    unit: crate::source::FileUnit::File,
                },
                hidden: false,
            });
            tensors.push(Tensor {
                parts: g.parts,
                readable: g.dtype.is_convertible(),
            });
        }
        Ok(V1Checkpoint {
            path: user_path.to_path_buf(),
            files: tables,
            entries,
            tensors,
        })
    }

    /// Opens the files a glob `pattern` matched (`matched`, sorted). Shard files named
    /// `STEM-NNNNN-of-MMMMM` must all be there: a missing shard is a `NotFound` error
    /// naming it.
    pub fn open_matches(
        user_path: &Path,
        pattern: &Path,
        matched: &[PathBuf],
    ) -> Result<V1Checkpoint> {
        let mut sets: BTreeMap<(Vec<u8>, u64), Vec<u64>> = BTreeMap::new();
        for f in matched {
            if let Some((stem, shard, total)) = shard_name_parts(file_name(f)) {
                sets.entry((stem.to_vec(), total)).or_default().push(shard);
            }
        }
        for ((stem, total), shards) in &sets {
            if let Some(missing) = (0..*total).find(|s| !shards.contains(s)) {
                let name = shard_file_name(stem, missing, *total);
                let path = matched[0].with_file_name(OsStr::from_bytes(&name));
                return Err(Error::io(
                    &path,
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "shard file is missing: the V1 checkpoint `{}` has {total} shards, \
                             and only {} {} here",
                            pattern.display(),
                            shards.len(),
                            if shards.len() == 1 { "is" } else { "are" }
                        ),
                    ),
                ));
            }
        }
        V1Checkpoint::open(user_path, matched)
    }

    /// Opens the V1 checkpoint in folder `dir`, given its V1 table files (`tables`,
    /// sorted): one unsharded file, or every shard of one sharded save. Several
    /// checkpoints are a usage error naming them.
    pub fn open_folder(dir: &Path, tables: &[PathBuf]) -> Result<V1Checkpoint> {
        let mut groups: BTreeMap<Vec<u8>, Vec<PathBuf>> = BTreeMap::new();
        for t in tables {
            let name = file_name(t);
            let key = match shard_name_parts(name) {
                Some((stem, _, total)) => {
                    let mut k = stem.to_vec();
                    k.extend_from_slice(format!("-?????-of-{total:05}").as_bytes());
                    k
                }
                None => name.to_vec(),
            };
            groups.entry(key).or_default().push(t.clone());
        }
        let mut it = groups.iter();
        match (it.next(), it.next()) {
            (Some((key, files)), None) => {
                let pattern = dir.join(OsStr::from_bytes(key));
                if files.len() == 1 && shard_name_parts(file_name(&files[0])).is_none() {
                    V1Checkpoint::open(dir, files)
                } else {
                    V1Checkpoint::open_matches(dir, &pattern, files)
                }
            }
            (None, _) => Err(Error::io(
                dir,
                io::Error::new(io::ErrorKind::NotFound, "no V1 checkpoint here"),
            )),
            _ => {
                let names: Vec<String> = groups
                    .keys()
                    .map(|k| dir.join(OsStr::from_bytes(k)).display().to_string())
                    .collect();
                Err(Error::usage(format!(
                    "{} holds {} V1 checkpoints and no `checkpoint` state file; name one: {}",
                    dir.display(),
                    names.len(),
                    names.join(", ")
                )))
            }
        }
    }

    /// The table files read, in order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(Table::path)
    }
}

/// When `files` is one shard of a sharded save, advice for a cover error.
fn one_shard_hint(files: &[PathBuf]) -> String {
    let [one] = files else {
        return String::new();
    };
    match shard_name_parts(file_name(one)) {
        Some((stem, _, total)) if total > 1 => {
            let mut pat = stem.to_vec();
            pat.extend_from_slice(format!("-?????-of-{total:05}").as_bytes());
            format!(
                " (this file is one of {total} shards: to read them all, give their folder \
                 or the pattern `{}`)",
                one.with_file_name(OsStr::from_bytes(&pat)).display()
            )
        }
        _ => String::new(),
    }
}

impl Container for V1Checkpoint {
    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn open(&self, index: usize, _verify: bool) -> Result<RawTensor<'_>> {
        let (Some(entry), Some(t)) = (self.entries.get(index), self.tensors.get(index)) else {
            return Err(Error::usage(format!("internal error: no tensor #{index}")));
        };
        let first = t.parts.first().map_or(0, |p| p.file);
        let ctx = self
            .files
            .get(first)
            .map_or_else(|| Ctx::file(&self.path), |f| Ctx::file(f.path()))
            .tensor(&entry.name);
        if !t.readable {
            return Err(ctx.unsupported(format!(
                "{} tensors have no NumPy equivalent and cannot be converted",
                entry.dtype
            )));
        }
        let boxes: Vec<SliceBox> = t.parts.iter().map(|p| p.bx.clone()).collect();
        let labels: Vec<String> = t.parts.iter().map(|p| p.text.clone()).collect();
        let keep = t.parts.len() == 1;
        let mut lazy = Vec::with_capacity(t.parts.len());
        for p in &t.parts {
            let table = self
                .files
                .get(p.file)
                .ok_or_else(|| Error::usage("internal error: unknown V1 file"))?;
            lazy.push(LazySlice {
                table,
                name: &entry.name,
                shape: &entry.shape,
                dtype: entry.dtype,
                part: p,
                keep_after_max_len: keep,
                max_len: None,
                state: State::Unread,
            });
        }
        if entry.dtype == DataType::String {
            let parts: Vec<Box<dyn StringRead + '_>> = lazy
                .into_iter()
                .map(|l| Box::new(l) as Box<dyn StringRead + '_>)
                .collect();
            let s = AssembledStrings::new(&entry.shape, boxes, parts, labels, ctx);
            Ok(RawTensor::Strings(Box::new(s)))
        } else {
            let elem = entry
                .dtype
                .storage_bytes()
                .ok_or_else(|| ctx.unsupported("variable-size dtype"))?;
            let parts: Vec<Box<dyn ByteStream + '_>> = lazy
                .into_iter()
                .map(|l| Box::new(l) as Box<dyn ByteStream + '_>)
                .collect();
            let s = AssembledBytes::new(&entry.shape, boxes, parts, elem, labels, ctx);
            Ok(RawTensor::Fixed(Box::new(s)))
        }
    }

    fn input_files(&self) -> Vec<(PathBuf, u64)> {
        self.files
            .iter()
            .map(|t| (t.path().to_path_buf(), t.file_len()))
            .collect()
    }
}

/// Where a slice's record is in its life.
enum State {
    /// Not loaded yet.
    Unread,
    /// Loaded and being streamed.
    Open(RawTensor<'static>),
    /// Streamed to its end and dropped.
    Done,
}

/// One slice's data, loaded from its record on first use and dropped when streamed.
struct LazySlice<'a> {
    table: &'a Table,
    name: &'a str,
    /// The full tensor's shape.
    shape: &'a [u64],
    dtype: DataType,
    part: &'a Part,
    /// Strings: keep the record loaded by `max_len` for the elements (single-slice
    /// tensors); otherwise it is dropped and loaded again.
    keep_after_max_len: bool,
    max_len: Option<u64>,
    state: State,
}

impl LazySlice<'_> {
    fn ctx(&self) -> Ctx {
        Ctx::file(self.table.path()).tensor(self.name)
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> Error {
        self.ctx()
            .corrupt(format!("slice `{}`: {detail}", self.part.text))
    }

    /// Fetches, decodes and checks the slice's record and opens its values.
    fn load(&self) -> Result<RawTensor<'static>> {
        let key = encode_tensor_name_slice(self.name.as_bytes(), &self.part.slice);
        let value = self
            .table
            .get(&key)
            .map_err(|e| e.in_tensor(self.name))?
            .ok_or_else(|| {
                self.corrupt(format!(
                    "no record under its key {}, though the file's header lists it",
                    show_key(&key)
                ))
            })?;
        let sts = SavedTensorSlices::decode(value.as_slice())
            .map_err(|e| self.corrupt(format!("the record is not a SavedTensorSlices: {e}")))?;
        drop(value);
        let SavedSlice { name, slice, data } = sts
            .data
            .ok_or_else(|| self.corrupt("the record holds no slice data"))?;
        if name != self.name {
            return Err(self.corrupt(format!(
                "the record under its key belongs to tensor `{name}`"
            )));
        }
        let stored = TensorSlice::from_proto(&slice.unwrap_or_default());
        if stored.resolve(self.shape).as_ref() != Ok(&self.part.bx) {
            return Err(self.corrupt(format!(
                "the record under its key holds slice `{}`",
                stored.to_text()
            )));
        }
        let n = box_volume(&self.part.bx).ok_or_else(|| self.corrupt("element count overflows"))?;
        open_typed_exact(data.unwrap_or_default(), self.dtype, n, &self.ctx())
            .map_err(|e| e.with_detail_prefix(&format!("slice `{}`", self.part.text)))
    }
}

impl ByteStream for LazySlice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.state {
                State::Unread => self.state = State::Open(self.load()?),
                State::Open(RawTensor::Fixed(s)) => {
                    let n = s.read(buf)?;
                    if n == 0 {
                        self.state = State::Done;
                    }
                    return Ok(n);
                }
                State::Open(RawTensor::Strings(_)) => {
                    return Err(self.corrupt("internal error: string values for a fixed dtype"))
                }
                State::Done => return Ok(0),
            }
        }
    }
}

impl StringRead for LazySlice<'_> {
    fn max_len(&mut self) -> Result<u64> {
        if let Some(m) = self.max_len {
            return Ok(m);
        }
        let m = match &mut self.state {
            State::Open(RawTensor::Strings(s)) => s.max_len()?,
            State::Unread if self.keep_after_max_len => {
                let mut raw = self.load()?;
                let m = match &mut raw {
                    RawTensor::Strings(s) => s.max_len()?,
                    RawTensor::Fixed(_) => 0,
                };
                self.state = State::Open(raw);
                m
            }
            _ => match self.load()? {
                RawTensor::Strings(mut s) => s.max_len()?,
                RawTensor::Fixed(_) => 0,
            },
        };
        self.max_len = Some(m);
        Ok(m)
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        loop {
            match &mut self.state {
                State::Unread => self.state = State::Open(self.load()?),
                State::Open(RawTensor::Strings(s)) => {
                    let more = s.next_into(out)?;
                    if !more {
                        self.state = State::Done;
                    }
                    return Ok(more);
                }
                State::Open(RawTensor::Fixed(_)) => {
                    return Err(self.corrupt("internal error: fixed values for a string dtype"))
                }
                State::Done => {
                    out.clear();
                    return Ok(false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::checkpoint::table::tests::TableBuilder;
    use crate::formats::proto::VersionDef;
    use crate::formats::proto::{
        tensor_slice_proto::extent::HasLength, tensor_slice_proto::Extent as ExtentProto,
        SavedSliceMeta, SavedTensorSliceMeta, TensorProto, TensorSliceProto,
    };

    type Ext = (i64, Option<i64>);

    fn slice_proto(ext: &[Ext]) -> TensorSliceProto {
        TensorSliceProto {
            extent: ext
                .iter()
                .map(|&(start, len)| ExtentProto {
                    start,
                    has_length: len.map(HasLength::Length),
                })
                .collect(),
        }
    }

    fn meta(name: &str, dtype: DataType, shape: &[i64], slices: &[&[Ext]]) -> SavedSliceMeta {
        SavedSliceMeta {
            name: name.into(),
            shape: crate::formats::tensor::tensorproto::shape_proto(shape),
            r#type: dtype.code(),
            slice: slices.iter().map(|s| slice_proto(s)).collect(),
        }
    }

    fn header(tensors: Vec<SavedSliceMeta>, versions: Option<VersionDef>) -> (Vec<u8>, Vec<u8>) {
        let sts = SavedTensorSlices {
            meta: Some(SavedTensorSliceMeta {
                tensor: tensors,
                versions: versions.or(Some(VersionDef {
                    producer: 1,
                    ..Default::default()
                })),
            }),
            data: None,
        };
        (Vec::new(), sts.encode_to_vec())
    }

    fn record(name: &str, ext: &[Ext], tp: TensorProto) -> (Vec<u8>, Vec<u8>) {
        let slice = slice_proto(ext);
        let key = encode_tensor_name_slice(name.as_bytes(), &TensorSlice::from_proto(&slice));
        let sts = SavedTensorSlices {
            meta: None,
            data: Some(SavedSlice {
                name: name.into(),
                slice: Some(slice),
                data: Some(tp),
            }),
        };
        (key, sts.encode_to_vec())
    }

    fn floats(v: &[f32]) -> TensorProto {
        TensorProto {
            float_val: v.to_vec(),
            ..Default::default()
        }
    }

    /// Writes a table of `entries` (sorted here) as `dir/name`.
    fn write(dir: &Path, name: &str, mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> PathBuf {
        entries.sort();
        let bytes = TableBuilder {
            per_block: 2,
            snappy: true,
        }
        .build(&entries);
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn read_fixed(c: &V1Checkpoint, name: &str) -> Result<Vec<u8>> {
        crate::source::testing::read_fixed(c, name, true)
    }

    fn read_strings(c: &V1Checkpoint, name: &str) -> Result<(u64, Vec<Vec<u8>>)> {
        crate::source::testing::read_strings(c, name, true)
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A checkpoint with a row- and a column-partitioned float tensor, a partitioned
    /// string tensor, a scalar, complex and half values, and an empty tensor.
    fn sample(dir: &Path) -> PathBuf {
        use DataType as D;
        let s: Vec<Vec<u8>> = ["a", "", "ccc", "\u{e9}"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        write(
            dir,
            "model.ckpt",
            vec![
                header(
                    vec![
                        meta(
                            "rows",
                            D::Float,
                            &[3, 2],
                            &[&[(0, Some(1)), (0, Some(2))], &[(1, Some(2)), (0, None)]],
                        ),
                        meta(
                            "cols",
                            D::Float,
                            &[2, 3],
                            &[&[(0, None), (0, Some(2))], &[(0, Some(2)), (2, Some(1))]],
                        ),
                        meta(
                            "s",
                            D::String,
                            &[2, 2],
                            &[&[(0, Some(1)), (0, None)], &[(1, Some(1)), (0, None)]],
                        ),
                        meta("scalar", D::Double, &[], &[&[]]),
                        meta("c", D::Complex64, &[2], &[&[(0, None)]]),
                        meta("h", D::Half, &[3], &[&[(0, None)]]),
                        meta("empty", D::Int32, &[0, 4], &[&[(0, None), (0, None)]]),
                    ],
                    None,
                ),
                record("rows", &[(0, Some(1)), (0, Some(2))], floats(&[1.0, 2.0])),
                record(
                    "rows",
                    &[(1, Some(2)), (0, None)],
                    floats(&[3.0, 4.0, 5.0, 6.0]),
                ),
                record(
                    "cols",
                    &[(0, None), (0, Some(2))],
                    floats(&[1.0, 2.0, 4.0, 5.0]),
                ),
                record("cols", &[(0, Some(2)), (2, Some(1))], floats(&[3.0, 6.0])),
                record(
                    "s",
                    &[(0, Some(1)), (0, None)],
                    TensorProto {
                        string_val: s[..2].to_vec(),
                        ..Default::default()
                    },
                ),
                record(
                    "s",
                    &[(1, Some(1)), (0, None)],
                    TensorProto {
                        string_val: s[2..].to_vec(),
                        ..Default::default()
                    },
                ),
                record(
                    "scalar",
                    &[],
                    TensorProto {
                        double_val: vec![2.5],
                        ..Default::default()
                    },
                ),
                record(
                    "c",
                    &[(0, None)],
                    TensorProto {
                        scomplex_val: vec![1.0, -1.0, 2.0, -2.0],
                        ..Default::default()
                    },
                ),
                record(
                    "h",
                    &[(0, None)],
                    TensorProto {
                        half_val: vec![0x3c00, 0x7e00, 0x8001],
                        ..Default::default()
                    },
                ),
                record("empty", &[(0, None), (0, None)], TensorProto::default()),
            ],
        )
    }

    #[test]
    fn reads_every_kind_of_slice() {
        let d = tempfile::tempdir().unwrap();
        let p = sample(d.path());
        let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
        let names: Vec<&str> = c.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["c", "cols", "empty", "h", "rows", "s", "scalar"]);
        assert_eq!(c.kind(), KIND);
        let rows = &c.entries()[4];
        assert_eq!(rows.location, "2 slices in 1 file");
        assert_eq!(rows.shape, [3, 2]);
        let six = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(read_fixed(&c, "rows").unwrap(), six);
        assert_eq!(read_fixed(&c, "cols").unwrap(), six);
        assert_eq!(read_fixed(&c, "scalar").unwrap(), 2.5f64.to_le_bytes());
        assert_eq!(
            read_fixed(&c, "c").unwrap(),
            f32_bytes(&[1.0, -1.0, 2.0, -2.0])
        );
        assert_eq!(
            read_fixed(&c, "h").unwrap(),
            [0x00, 0x3c, 0x00, 0x7e, 0x01, 0x80]
        );
        assert_eq!(read_fixed(&c, "empty").unwrap(), Vec::<u8>::new());
        let (max, s) = read_strings(&c, "s").unwrap();
        assert_eq!(max, 3);
        assert_eq!(s, [&b"a"[..], b"", b"ccc", "\u{e9}".as_bytes()]);
        assert_eq!(
            c.input_files(),
            vec![(p.clone(), std::fs::metadata(&p).unwrap().len())]
        );
    }

    fn open_err(p: &Path) -> String {
        V1Checkpoint::open(p, &[p.to_path_buf()])
            .unwrap_err()
            .to_string()
    }

    fn one(dir: &Path, metas: Vec<SavedSliceMeta>, recs: Vec<(Vec<u8>, Vec<u8>)>) -> PathBuf {
        let mut e = vec![header(metas, None)];
        e.extend(recs);
        write(dir, "m.ckpt", e)
    }

    #[test]
    fn value_count_must_equal_the_slice() {
        let d = tempfile::tempdir().unwrap();
        for (vals, want) in [
            (
                vec![1.0],
                "float_val holds 1 values, but the slice has 2 float32 elements",
            ),
            (vec![1.0, 2.0, 3.0], "holds 3 values"),
            (vec![], "holds 0 values"),
        ] {
            let p = one(
                d.path(),
                vec![meta("t", DataType::Float, &[2], &[&[(0, None)]])],
                vec![record("t", &[(0, None)], floats(&vals))],
            );
            let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
            let err = read_fixed(&c, "t").unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Corrupt { .. }), "{msg}");
            assert!(
                msg.starts_with(&format!("{}: tensor `t`: slice `-`: ", p.display())),
                "{msg}"
            );
            assert!(msg.contains(want), "{msg}");
        }
        // Complex values come in pairs; strings count too.
        let p = one(
            d.path(),
            vec![
                meta("c", DataType::Complex128, &[1], &[&[(0, None)]]),
                meta("s", DataType::String, &[2], &[&[(0, None)]]),
            ],
            vec![
                record(
                    "c",
                    &[(0, None)],
                    TensorProto {
                        dcomplex_val: vec![1.0, 2.0, 3.0],
                        ..Default::default()
                    },
                ),
                record(
                    "s",
                    &[(0, None)],
                    TensorProto {
                        string_val: vec![b"x".to_vec()],
                        tensor_content: vec![1, 2],
                        ..Default::default()
                    },
                ),
            ],
        );
        let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
        let msg = read_fixed(&c, "c").unwrap_err().to_string();
        assert!(
            msg.contains("dcomplex_val holds an odd number of values"),
            "{msg}"
        );
        let msg = read_strings(&c, "s").unwrap_err().to_string();
        assert!(
            msg.contains("tensor `s`: slice `-`: string_val holds 1 values"),
            "{msg}"
        );
        assert!(msg.contains("2 bytes of tensor_content"), "{msg}");
    }

    #[test]
    fn records_must_match_their_key() {
        let d = tempfile::tempdir().unwrap();
        let m = || vec![meta("t", DataType::Float, &[2], &[&[(0, None)]])];
        // No record at all.
        let p = one(d.path(), m(), vec![]);
        let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
        let msg = read_fixed(&c, "t").unwrap_err().to_string();
        assert!(msg.contains("tensor `t`: slice `-`: no record under its key `\\x00t\\x00\\x01\\x01\\x01\\x80\\x7f`"), "{msg}");
        // A record for another name or slice under the key.
        let (key, _) = record("t", &[(0, None)], floats(&[1.0, 2.0]));
        let (_, other) = record("u", &[(0, None)], floats(&[1.0, 2.0]));
        let p = one(d.path(), m(), vec![(key.clone(), other)]);
        let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
        let msg = read_fixed(&c, "t").unwrap_err().to_string();
        assert!(msg.contains("belongs to tensor `u`"), "{msg}");
        let (_, other) = record("t", &[(0, Some(1))], floats(&[1.0, 2.0]));
        let p = one(d.path(), m(), vec![(key.clone(), other)]);
        let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
        let msg = read_fixed(&c, "t").unwrap_err().to_string();
        assert!(msg.contains("holds slice `0,1`"), "{msg}");
        // Garbage and a meta record instead of data.
        let p = one(d.path(), m(), vec![(key.clone(), vec![0xff, 0xff])]);
        let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
        let msg = read_fixed(&c, "t").unwrap_err().to_string();
        assert!(msg.contains("not a SavedTensorSlices"), "{msg}");
        let p = one(d.path(), m(), vec![(key, header(vec![], None).1)]);
        let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
        let msg = read_fixed(&c, "t").unwrap_err().to_string();
        assert!(msg.contains("holds no slice data"), "{msg}");
    }

    #[test]
    fn listing_checks_slices_and_cover() {
        let d = tempfile::tempdir().unwrap();
        let f = DataType::Float;
        for (m, want) in [
            (
                meta("t", f, &[4], &[&[(0, Some(2))], &[(3, Some(1))]]),
                "tensor `t`: the slices hold 3 elements but the tensor has 4",
            ),
            (
                meta("t", f, &[4], &[&[(0, Some(3))], &[(2, Some(2))]]),
                "tensor `t`: slices `0,3` and `2,2` overlap",
            ),
            (meta("t", f, &[4], &[&[(0, None)], &[(0, None)]]), "overlap"),
            (
                meta("t", f, &[4], &[&[(0, None), (0, None)]]),
                "tensor `t`: slice `-:-` has 2 dimensions but the tensor has 1",
            ),
            (
                meta("t", f, &[4], &[&[(2, Some(3))]]),
                "lies outside the tensor's size 4",
            ),
            (meta("t", f, &[4], &[]), "the slices hold 0 elements"),
            (meta("t", f, &[-1], &[&[(0, None)]]), "negative dimension"),
            (
                SavedSliceMeta {
                    r#type: 0,
                    ..meta("t", f, &[1], &[&[(0, None)]])
                },
                "invalid or unknown dtype value 0",
            ),
        ] {
            let p = one(d.path(), vec![m], vec![]);
            let msg = open_err(&p);
            assert!(msg.starts_with(&p.display().to_string()), "{msg}");
            assert!(msg.contains(want), "{want}: {msg}");
        }
    }

    #[test]
    fn headers_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "e", vec![]);
        assert!(open_err(&p).contains("the table is empty"));
        let p = write(d.path(), "k", vec![(b"a".to_vec(), vec![])]);
        assert!(open_err(&p).contains("the first key is `a`"));
        let p = write(d.path(), "v2", vec![(vec![], vec![0x08, 0x01])]);
        assert!(
            open_err(&p).contains("not a V1 checkpoint"),
            "{}",
            open_err(&p)
        );
        let (_, data) = record("t", &[], floats(&[1.0]));
        let p = write(d.path(), "d", vec![(vec![], data)]);
        assert!(open_err(&p).contains("holds no SavedTensorSliceMeta"));
        for (v, want) in [
            (
                VersionDef {
                    producer: -1,
                    ..Default::default()
                },
                "older than the oldest supported",
            ),
            (
                VersionDef {
                    producer: 1,
                    min_consumer: 2,
                    ..Default::default()
                },
                "version 2 or newer",
            ),
            (
                VersionDef {
                    producer: 1,
                    bad_consumers: vec![1],
                    ..Default::default()
                },
                "disallows readers of format version 1",
            ),
        ] {
            let p = write(d.path(), "v", vec![header(vec![], Some(v))]);
            let err = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap_err();
            assert!(matches!(err, Error::Unsupported { .. }), "{err}");
            assert!(err.to_string().contains(want), "{err}");
        }
    }

    fn shards(dir: &Path) -> Vec<PathBuf> {
        use DataType as D;
        let a = write(
            dir,
            "m-00000-of-00002",
            vec![
                header(
                    vec![
                        meta("t", D::Float, &[3], &[&[(0, Some(1))]]),
                        meta("only0", D::Int64, &[1], &[&[(0, None)]]),
                    ],
                    None,
                ),
                record("t", &[(0, Some(1))], floats(&[1.0])),
                record(
                    "only0",
                    &[(0, None)],
                    TensorProto {
                        int64_val: vec![-7],
                        ..Default::default()
                    },
                ),
            ],
        );
        let b = write(
            dir,
            "m-00001-of-00002",
            vec![
                header(vec![meta("t", D::Float, &[3], &[&[(1, Some(2))]])], None),
                record("t", &[(1, Some(2))], floats(&[2.0, 3.0])),
            ],
        );
        vec![a, b]
    }

    #[test]
    fn gathers_slices_across_shards() {
        let d = tempfile::tempdir().unwrap();
        let files = shards(d.path());
        let pattern = d.path().join("m-?????-of-00002");
        let c = V1Checkpoint::open_matches(&pattern, &pattern, &files).unwrap();
        assert_eq!(c.entries()[1].name, "t");
        assert_eq!(c.entries()[1].location, "2 slices in 2 files");
        assert_eq!(read_fixed(&c, "t").unwrap(), f32_bytes(&[1.0, 2.0, 3.0]));
        assert_eq!(read_fixed(&c, "only0").unwrap(), (-7i64).to_le_bytes());
        assert_eq!(c.input_files().len(), 2);
        assert_eq!(c.files().count(), 2);
        // The folder finds the same checkpoint.
        let c = V1Checkpoint::open_folder(d.path(), &files).unwrap();
        assert_eq!(c.entries().len(), 2);
        assert_eq!(c.path(), d.path());

        // One shard alone: `t` is not covered, and the message says how to read all.
        let msg = open_err(&files[0]);
        assert!(
            msg.contains("tensor `t`: the slices hold 1 elements"),
            "{msg}"
        );
        assert!(
            msg.contains("one of 2 shards") && msg.contains("m-?????-of-00002"),
            "{msg}"
        );

        // A missing shard is named.
        let err = V1Checkpoint::open_matches(&pattern, &pattern, &files[1..]).unwrap_err();
        assert!(matches!(&err, Error::Io { err, .. } if err.kind() == io::ErrorKind::NotFound));
        let msg = err.to_string();
        assert!(
            msg.contains("m-00000-of-00002: shard file is missing"),
            "{msg}"
        );
        let err = V1Checkpoint::open_folder(d.path(), &files[1..]).unwrap_err();
        assert!(err.to_string().contains("m-00000-of-00002"), "{err}");

        // Two files that disagree on a tensor's dtype or shape.
        write(
            d.path(),
            "m-00001-of-00002",
            vec![header(
                vec![meta("t", DataType::Double, &[3], &[&[(1, Some(2))]])],
                None,
            )],
        );
        let msg = V1Checkpoint::open(&pattern, &files)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("m-00001-of-00002: tensor `t`: listed as float64 here but as float32"),
            "{msg}"
        );
        write(
            d.path(),
            "m-00001-of-00002",
            vec![header(
                vec![meta("t", DataType::Float, &[4], &[&[(1, Some(2))]])],
                None,
            )],
        );
        let msg = V1Checkpoint::open(&pattern, &files)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("listed with shape [4] here but [3]"), "{msg}");
    }

    #[test]
    fn folders_with_several_checkpoints_are_ambiguous() {
        let d = tempfile::tempdir().unwrap();
        let mut files = shards(d.path());
        files.push(sample(d.path()));
        files.sort();
        let err = V1Checkpoint::open_folder(d.path(), &files).unwrap_err();
        assert!(err.is_usage());
        let msg = err.to_string();
        assert!(msg.contains("holds 2 V1 checkpoints"), "{msg}");
        assert!(
            msg.contains("m-?????-of-00002") && msg.contains("model.ckpt"),
            "{msg}"
        );
        assert!(V1Checkpoint::open_folder(d.path(), &[]).is_err());
    }

    #[test]
    fn unconvertible_dtypes_are_listed_not_read() {
        let d = tempfile::tempdir().unwrap();
        let p = one(
            d.path(),
            vec![meta("v", DataType::Variant, &[1], &[&[(0, None)]])],
            vec![],
        );
        let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
        assert_eq!(c.entries()[0].dtype, DataType::Variant);
        let err = c.open(0, true).err().unwrap();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    }

    #[test]
    fn slices_are_loaded_when_needed_and_dropped_when_streamed() {
        let d = tempfile::tempdir().unwrap();
        let p = one(
            d.path(),
            vec![meta(
                "t",
                DataType::Float,
                &[2],
                &[&[(0, Some(1))], &[(1, Some(1))]],
            )],
            vec![record("t", &[(0, Some(1))], floats(&[1.5]))],
        );
        let c = V1Checkpoint::open(&p, std::slice::from_ref(&p)).unwrap();
        let t = &c.tensors[0];
        let mut lazy = LazySlice {
            table: &c.files[0],
            name: "t",
            shape: &c.entries[0].shape,
            dtype: DataType::Float,
            part: &t.parts[0],
            keep_after_max_len: false,
            max_len: None,
            state: State::Unread,
        };
        let mut buf = [0u8; 8];
        assert_eq!(ByteStream::read(&mut lazy, &mut buf[..0]).unwrap(), 0);
        assert!(matches!(lazy.state, State::Unread));
        assert_eq!(ByteStream::read(&mut lazy, &mut buf).unwrap(), 4);
        assert!(matches!(lazy.state, State::Open(_)));
        assert_eq!(ByteStream::read(&mut lazy, &mut buf).unwrap(), 0);
        assert!(matches!(lazy.state, State::Done));
        // The first element streams before the second slice's record is looked for.
        let RawTensor::Fixed(mut s) = c.open(0, true).unwrap() else {
            panic!("fixed")
        };
        assert_eq!(s.read(&mut buf[..4]).unwrap(), 4);
        assert_eq!(buf[..4], 1.5f32.to_le_bytes());
        let msg = s.read(&mut buf).unwrap_err().to_string();
        assert!(msg.contains("slice `1,1`: no record"), "{msg}");
    }

    #[test]
    fn parses_shard_names() {
        assert_eq!(
            shard_name_parts(b"model.ckpt-00001-of-00002"),
            Some((&b"model.ckpt"[..], 1, 2))
        );
        assert_eq!(
            shard_name_parts(b"m-5-00000-of-123456"),
            Some((&b"m-5"[..], 0, 123_456))
        );
        assert_eq!(shard_name_parts(b"model.ckpt"), None);
        assert_eq!(shard_name_parts(b"m-0000-of-00002"), None);
        assert_eq!(shard_name_parts(b"-00000-of-00002"), None);
        assert_eq!(shard_name_parts(b"m-00000-of-0000x"), None);
        assert_eq!(shard_file_name(b"m", 3, 12), b"m-00003-of-00012");
    }

    #[test]
    fn damaged_blocks_name_the_file_and_tensor() {
        let d = tempfile::tempdir().unwrap();
        let p = sample(d.path());
        let good = std::fs::read(&p).unwrap();
        // Flip a byte in each position of the first data blocks: either the header is
        // refused when listing, or a read fails naming the tensor; never a panic.
        let mut failures = 0;
        for at in (0..good.len() - 48).step_by(7) {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            let q = d.path().join("bad.ckpt");
            std::fs::write(&q, &bad).unwrap();
            let Ok(c) = V1Checkpoint::open(&q, std::slice::from_ref(&q)) else {
                failures += 1;
                continue;
            };
            for e in c.entries().to_vec() {
                let r = if e.dtype == DataType::String {
                    read_strings(&c, &e.name).map(|_| ())
                } else {
                    read_fixed(&c, &e.name).map(|_| ())
                };
                if let Err(err) = r {
                    failures += 1;
                    let msg = err.to_string();
                    assert!(msg.contains(&format!("tensor `{}`", e.name)), "{msg}");
                    assert!(msg.contains("bad.ckpt"), "{msg}");
                }
            }
        }
        assert!(failures > 10, "{failures}");
        // Truncated anywhere.
        for cut in [1, 10, good.len() / 2, good.len() - 49] {
            let q = d.path().join("cut.ckpt");
            std::fs::write(&q, &good[..good.len() - cut]).unwrap();
            let msg = open_err(&q);
            assert!(msg.contains("cut.ckpt"), "{msg}");
        }
    }
}
