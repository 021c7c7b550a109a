//! V2 tensor bundles: `prefix.index` (a table of `key → BundleEntryProto` after a
//! `BundleHeaderProto` under the empty key) plus raw data shards
//! `prefix.data-NNNNN-of-MMMMM` (tf-formats.md §2-§3).
//!
//! [`Bundle::open`] reads the whole index and validates every listed tensor before
//! anything is converted: dtype and shape, shard id against the header's shard count,
//! the data range against the shard file's real length, the byte size against the
//! element count, and for partitioned tensors every slice (rank, bounds, its entry's
//! dtype and shape, exact coverage). Reading then streams: [`SpanStream`] pulls a
//! tensor's bytes with large positioned reads and checks its CRC32C before the final
//! `Ok(0)`; [`BundleStrings`] walks the string layout of §2.6 with two cursors (lengths
//! and bytes); sliced tensors are reassembled by [`crate::formats::checkpoint::slice_key`].

use crate::dtype::DataType;
use crate::error::{Ctx, Error, Result};
use crate::formats::checkpoint::slice_key::{
    check_cover, encode_tensor_name_slice, AssembledBytes, AssembledStrings, SliceBox, TensorSlice,
};
use crate::formats::checkpoint::table::{show_key, Table};
use crate::formats::io::{unmask_crc, InputFile, RangeReader};
use crate::formats::proto::{bundle_header_proto::Endianness, BundleEntryProto, BundleHeaderProto};
use crate::formats::tensor::tensorproto::{parse_dtype, parse_shape};
use crate::source::{num_elements, Container, Entry, RawTensor, StringRead};
use crate::stream::ByteStream;
use prost::Message;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `kTensorBundleVersion`: the bundle format version tf2npy reads (§2.2).
const BUNDLE_VERSION: i32 = 1;
/// `kTensorBundleMinProducer`.
const BUNDLE_MIN_PRODUCER: i32 = 0;
/// The TF2 object graph key, listed as hidden (§4.1).
pub const OBJECT_GRAPH_KEY: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";
/// Read buffer of a whole (unsliced) tensor.
const TENSOR_BUFFER: usize = 1 << 20;
/// Read buffer of each cursor of a string tensor.
const STRING_BUFFER: usize = 256 << 10;
/// Read buffer of each slice of a partitioned tensor (memory grows with the slice count).
const SLICE_BUFFER: usize = 64 << 10;
/// The advice appended to every checksum error.
const NO_VERIFY_HINT: &str = "(use --no-verify only to recover data from a damaged checkpoint)";

/// `DataFilename(prefix, shard, num_shards)`: `prefix.data-00000-of-00001`.
pub fn data_filename(prefix: &Path, shard: i32, num_shards: i32) -> PathBuf {
    let mut s = OsString::from(prefix.as_os_str());
    s.push(format!(".data-{shard:05}-of-{num_shards:05}"));
    PathBuf::from(s)
}

/// `MetaFilename(prefix)`: `prefix.index`.
pub fn index_filename(prefix: &Path) -> PathBuf {
    let mut s = OsString::from(prefix.as_os_str());
    s.push(".index");
    PathBuf::from(s)
}

/// A validated byte range of one data shard holding one tensor (or slice).
#[derive(Clone, Debug)]
struct Span {
    /// Index into `Bundle::shards`.
    shard: usize,
    offset: u64,
    size: u64,
    /// The stored (masked) CRC32C.
    masked_crc: u32,
}

/// One slice of a partitioned tensor: its box in the full tensor and its data.
#[derive(Clone, Debug)]
struct Part {
    text: String,
    bx: SliceBox,
    span: Span,
}

/// Where a listed tensor's data is.
#[derive(Clone, Debug)]
enum Source {
    Plain(Span),
    Sliced(Vec<Part>),
    /// Variant and resource tensors: listed, never read.
    Unreadable,
}

/// A V2 checkpoint, opened and validated.
#[derive(Debug)]
pub struct Bundle {
    path: PathBuf,
    index_path: PathBuf,
    index_len: u64,
    /// The data files tensors are stored in, with their lengths when validated. They
    /// are opened when a tensor is read, not kept open (checkpoints can have thousands),
    /// except the one read last (`recent`).
    shards: Vec<(PathBuf, u64)>,
    /// Data files named by the header that no tensor uses, for `input_files`.
    other_files: Vec<(PathBuf, u64)>,
    entries: Vec<Entry>,
    sources: Vec<Source>,
    /// The data file read last, kept open for the next tensor (one file: 20,000 small
    /// tensors in one shard cost one `open`, not 20,000).
    recent: std::sync::Mutex<Option<(usize, Arc<InputFile>)>>,
}

/// Finds and measures data shards on first use and remembers them.
struct Shards<'p> {
    prefix: &'p Path,
    num_shards: i32,
    files: Vec<(PathBuf, u64)>,
    slot: BTreeMap<i32, usize>,
}

/// The length of the data file `path`, or `None` if it does not exist.
fn data_file_len(path: &Path) -> Result<Option<u64>> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Some(m.len())),
        Ok(_) => Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "a data file is expected here"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

impl Shards<'_> {
    fn get(&mut self, id: i32, ctx: &Ctx) -> Result<usize> {
        if let Some(&s) = self.slot.get(&id) {
            return Ok(s);
        }
        if id < 0 || id >= self.num_shards {
            return Err(ctx.corrupt(format!(
                "shard_id {id} is out of range: the header says there are {} data files",
                self.num_shards
            )));
        }
        let path = data_filename(self.prefix, id, self.num_shards);
        let found = match data_file_len(&path)? {
            Some(len) => Some((path.clone(), len)),
            None => match find_renumbered_shard(self.prefix, id) {
                Some(p) => data_file_len(&p)?.map(|len| (p, len)),
                None => None,
            },
        };
        let Some(file) = found else {
            return Err(Error::io(
                &path,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "data file is missing{}",
                        ctx.tensor
                            .as_ref()
                            .map(|t| format!(" (tensor `{t}` is stored in it)"))
                            .unwrap_or_default()
                    ),
                ),
            ));
        };
        self.files.push(file);
        let s = self.files.len() - 1;
        self.slot.insert(id, s);
        Ok(s)
    }
}

/// `prefix.data-<id>-of-*` when exactly one such file exists: a merged bundle whose
/// header shard count disagrees with the file names (tf-formats.md §2.1).
fn find_renumbered_shard(prefix: &Path, id: i32) -> Option<PathBuf> {
    let dir = match prefix.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let stem = prefix.file_name()?.to_str()?;
    let want = format!("{stem}.data-{id:05}-of-");
    let mut found = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(rest) = name.strip_prefix(&want) {
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                if found.is_some() {
                    return None;
                }
                found = Some(dir.join(name));
            }
        }
    }
    found
}

/// The dims of a box.
fn box_shape(b: &[(u64, u64)]) -> Vec<u64> {
    b.iter().map(|&(_, l)| l).collect()
}

impl Bundle {
    /// Opens the checkpoint `prefix` (`prefix.index` + data files); `user_path` is what
    /// the user typed, reported by [`Container::path`].
    pub fn open(user_path: &Path, prefix: &Path) -> Result<Bundle> {
        let index_path = index_filename(prefix);
        let table = Table::open(&index_path)?;
        let ctx = Ctx::file(&index_path);
        let mut scan = table.scan();
        let (key, value) = scan
            .next()
            .ok_or_else(|| ctx.corrupt("the index is empty: it has no header entry"))??;
        if !key.is_empty() {
            return Err(ctx.corrupt(format!(
                "the first key is {}, not the header entry (the empty key)",
                show_key(&key)
            )));
        }
        if value.first() == Some(&0x0a) {
            return Err(ctx.unsupported(
                "this `.index` file holds a V1 checkpoint (SavedTensorSlices); pass the V1 file itself (a V1 checkpoint has no .index/.data files)",
            ));
        }
        let header = BundleHeaderProto::decode(value.as_slice()).map_err(|e| {
            ctx.corrupt(format!("the header entry is not a BundleHeaderProto: {e}"))
        })?;
        crate::formats::check_versions(
            header.version.as_ref(),
            "bundle",
            BUNDLE_VERSION,
            BUNDLE_MIN_PRODUCER,
            &ctx,
        )?;
        match Endianness::try_from(header.endianness) {
            Ok(Endianness::Little) => {}
            Ok(Endianness::Big) => {
                return Err(ctx.unsupported(
                    "this checkpoint was written on a big-endian machine; big-endian \
                     checkpoints are not supported",
                ))
            }
            Err(_) => {
                return Err(ctx.corrupt(format!(
                    "the header has an unknown endianness value {}",
                    header.endianness
                )))
            }
        }
        let mut raw: Vec<(Vec<u8>, BundleEntryProto)> = Vec::new();
        for kv in scan {
            let (key, value) = kv?;
            let entry = BundleEntryProto::decode(value.as_slice()).map_err(|e| {
                ctx.tensor(&String::from_utf8_lossy(&key))
                    .corrupt(format!("the index entry is not a BundleEntryProto: {e}"))
            })?;
            raw.push((key, entry));
        }
        let mut shards = Shards {
            prefix,
            num_shards: header.num_shards,
            files: Vec::new(),
            slot: BTreeMap::new(),
        };
        // Keys of slice entries, hidden from the listing as TF does (§3.5).
        let mut hidden = std::collections::HashSet::new();
        for (key, e) in &raw {
            for sp in &e.slices {
                hidden.insert(encode_tensor_name_slice(key, &TensorSlice::from_proto(sp)));
            }
        }
        let mut listed: Vec<(Entry, Source)> = Vec::new();
        for (key, e) in &raw {
            if hidden.contains(key) {
                continue;
            }
            let name = String::from_utf8_lossy(key).into_owned();
            let tctx = ctx.tensor(&name);
            listed.push(describe(key, &name, e, &raw, &mut shards, &tctx)?);
        }
        listed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let (entries, sources) = listed.into_iter().unzip();
        let other_files = unreferenced_shards(&shards);
        Ok(Bundle {
            path: user_path.to_path_buf(),
            index_len: table.file_len(),
            index_path,
            shards: shards.files,
            other_files,
            entries,
            sources,
            recent: std::sync::Mutex::new(None),
        })
    }

    /// The `.index` file.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    /// Opens shard `shard` for one tensor, reusing an already open file.
    fn shard_file(&self, shard: usize, cache: &mut OpenFiles) -> Result<Arc<InputFile>> {
        if let Some(f) = cache.get(&shard) {
            return Ok(f.clone());
        }
        let (path, _) = self
            .shards
            .get(shard)
            .ok_or_else(|| Error::usage("internal error: unknown shard"))?;
        let recent = self.recent.lock().ok().and_then(|r| r.clone());
        let f = match recent {
            Some((s, f)) if s == shard => f,
            _ => Arc::new(InputFile::open(path)?),
        };
        if let Ok(mut r) = self.recent.lock() {
            *r = Some((shard, f.clone()));
        }
        cache.insert(shard, f.clone());
        Ok(f)
    }
}

/// The data files one tensor's streams share.
type OpenFiles = BTreeMap<usize, Arc<InputFile>>;

/// Data files `0..num_shards` that exist but hold no listed tensor (probing at most a
/// few thousand names).
fn unreferenced_shards(shards: &Shards<'_>) -> Vec<(PathBuf, u64)> {
    const MAX_PROBE: i32 = 4096;
    let mut out = Vec::new();
    for id in 0..shards.num_shards.min(MAX_PROBE) {
        if shards.slot.contains_key(&id) {
            continue;
        }
        let p = data_filename(shards.prefix, id, shards.num_shards);
        if let Ok(m) = std::fs::metadata(&p) {
            if m.is_file() {
                out.push((p, m.len()));
            }
        }
    }
    out
}

/// Validates the data range of a plain (or slice) entry holding `n` elements of
/// `dtype`.
fn plain_span(
    e: &BundleEntryProto,
    dtype: DataType,
    shape: &[u64],
    shards: &mut Shards<'_>,
    ctx: &Ctx,
) -> Result<Span> {
    let n = num_elements(shape).ok_or_else(|| ctx.corrupt("element count overflows"))?;
    let offset = u64::try_from(e.offset)
        .map_err(|_| ctx.corrupt(format!("negative data offset {}", e.offset)))?;
    let size =
        u64::try_from(e.size).map_err(|_| ctx.corrupt(format!("negative data size {}", e.size)))?;
    match dtype.storage_bytes() {
        Some(elem) if n.checked_mul(elem) != Some(size) => {
            return Err(ctx.corrupt(format!(
                "the entry says {size} bytes, but {n} {dtype} elements of shape {shape:?} \
                 take {}",
                n.checked_mul(elem)
                    .map_or("more than 2^64".to_string(), |b| b.to_string())
            )));
        }
        None if dtype == DataType::String && n.checked_add(4).is_none_or(|min| size < min) => {
            return Err(ctx.corrupt(format!(
                "the entry says {size} bytes, too few for {n} strings (at least {} \
                 bytes: one per length and a 4-byte checksum)",
                n.saturating_add(4)
            )));
        }
        _ => {}
    }
    let shard = shards.get(e.shard_id, ctx)?;
    let (path, len) = &shards.files[shard];
    if offset.checked_add(size).is_none_or(|end| end > *len) {
        return Err(ctx.corrupt(format!(
            "data at bytes [{offset}, {offset} + {size}) lies past the end of {} ({len} bytes)",
            path.display(),
        )));
    }
    Ok(Span {
        shard,
        offset,
        size,
        masked_crc: e.crc32c,
    })
}

/// Validates the listed entry `key` and describes it.
fn describe(
    key: &[u8],
    name: &str,
    e: &BundleEntryProto,
    raw: &[(Vec<u8>, BundleEntryProto)],
    shards: &mut Shards<'_>,
    ctx: &Ctx,
) -> Result<(Entry, Source)> {
    let dtype = parse_dtype(e.dtype, ctx)?;
    let shape = parse_shape(e.shape.as_ref(), ctx)?;
    let readable = dtype.is_convertible();
    let mut entry = Entry {
        name: name.to_string(),
        dtype,
        shape: shape.clone(),
        stored_bytes: 0,
        location: String::new(),
        hidden: name == OBJECT_GRAPH_KEY,
    };
    if e.slices.is_empty() {
        let span = plain_span(e, dtype, &shape, shards, ctx)?;
        entry.stored_bytes = span.size;
        entry.location = format!("shard {} @ {}", e.shard_id, span.offset);
        let source = if readable {
            Source::Plain(span)
        } else {
            Source::Unreadable
        };
        return Ok((entry, source));
    }
    let mut parts = Vec::with_capacity(e.slices.len());
    let mut shard_ids = std::collections::BTreeSet::new();
    for sp in &e.slices {
        let slice = TensorSlice::from_proto(sp);
        let text = slice.to_text();
        let bx = slice.resolve(&shape).map_err(|m| ctx.corrupt(m))?;
        let sctx = |m: String| ctx.corrupt(format!("slice `{text}`: {m}"));
        let is_full = slice
            .extents
            .iter()
            .all(|x| x.start == 0 && x.length.is_none());
        let span = if is_full {
            // TF reads a full stored slice from the full tensor's own entry.
            shard_ids.insert(e.shard_id);
            plain_span(e, dtype, &shape, shards, ctx)?
        } else {
            let skey = encode_tensor_name_slice(key, &slice);
            let i = raw
                .binary_search_by(|(k, _)| k.as_slice().cmp(&skey))
                .map_err(|_| sctx(format!("no entry under its key {}", show_key(&skey))))?;
            let se = &raw[i].1;
            if !se.slices.is_empty() {
                return Err(sctx("its entry is itself partitioned".to_string()));
            }
            let sdtype = parse_dtype(se.dtype, ctx)?;
            if sdtype != dtype {
                return Err(sctx(format!(
                    "stored as {sdtype}, but the tensor is {dtype}"
                )));
            }
            let want = box_shape(&bx);
            let got = parse_shape(se.shape.as_ref(), ctx)?;
            if got != want {
                return Err(sctx(format!(
                    "stored with shape {got:?}, but the slice has shape {want:?}"
                )));
            }
            shard_ids.insert(se.shard_id);
            plain_span(se, dtype, &want, shards, ctx)
                .map_err(|e| e.with_detail_prefix(&format!("slice `{text}`")))?
        };
        parts.push(Part { text, bx, span });
    }
    let boxes: Vec<SliceBox> = parts.iter().map(|p| p.bx.clone()).collect();
    check_cover(&shape, &boxes, |i| {
        parts.get(i).map_or(String::new(), |p| p.text.clone())
    })
    .map_err(|m| ctx.corrupt(m))?;
    entry.stored_bytes = parts.iter().map(|p| p.span.size).sum();
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    entry.location = format!(
        "{} in {}",
        plural(parts.len(), "slice"),
        plural(shard_ids.len(), "shard")
    );
    let source = if readable {
        Source::Sliced(parts)
    } else {
        Source::Unreadable
    };
    Ok((entry, source))
}

impl Container for Bundle {
    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> &'static str {
        "TensorFlow V2 checkpoint"
    }

    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn open(&self, index: usize, verify: bool) -> Result<RawTensor<'_>> {
        let (Some(entry), Some(source)) = (self.entries.get(index), self.sources.get(index)) else {
            return Err(Error::usage(format!("internal error: no tensor #{index}")));
        };
        let name = entry.name.as_str();
        let tctx = Ctx::file(&self.index_path).tensor(name);
        let n =
            num_elements(&entry.shape).ok_or_else(|| tctx.corrupt("element count overflows"))?;
        let mut files = OpenFiles::new();
        match source {
            Source::Unreadable => Err(tctx.unsupported(format!(
                "{} tensors have no NumPy equivalent and cannot be converted",
                entry.dtype
            ))),
            Source::Plain(span) => {
                let file = self.shard_file(span.shard, &mut files)?;
                Ok(if entry.dtype == DataType::String {
                    let s = BundleStrings::new(file, span, n, name, "", verify, STRING_BUFFER);
                    RawTensor::Strings(Box::new(s))
                } else {
                    let s = SpanStream::new(file, span, name, "", verify, TENSOR_BUFFER)?;
                    RawTensor::Fixed(Box::new(s))
                })
            }
            Source::Sliced(parts) => {
                let boxes: Vec<SliceBox> = parts.iter().map(|p| p.bx.clone()).collect();
                let labels: Vec<String> = parts.iter().map(|p| p.text.clone()).collect();
                if entry.dtype == DataType::String {
                    let mut streams: Vec<Box<dyn StringRead>> = Vec::with_capacity(parts.len());
                    for p in parts {
                        let file = self.shard_file(p.span.shard, &mut files)?;
                        let pn = num_elements(&box_shape(&p.bx)).unwrap_or(0);
                        let label = format!("slice `{}`: ", p.text);
                        streams.push(Box::new(BundleStrings::new(
                            file,
                            &p.span,
                            pn,
                            name,
                            &label,
                            verify,
                            SLICE_BUFFER,
                        )));
                    }
                    let s = AssembledStrings::new(&entry.shape, boxes, streams, labels, tctx);
                    Ok(RawTensor::Strings(Box::new(s)))
                } else {
                    let elem = entry
                        .dtype
                        .storage_bytes()
                        .ok_or_else(|| tctx.unsupported("variable-size dtype"))?;
                    let mut streams: Vec<Box<dyn ByteStream>> = Vec::with_capacity(parts.len());
                    for p in parts {
                        let file = self.shard_file(p.span.shard, &mut files)?;
                        let label = format!("slice `{}`: ", p.text);
                        streams.push(Box::new(SpanStream::new(
                            file,
                            &p.span,
                            name,
                            &label,
                            verify,
                            SLICE_BUFFER,
                        )?));
                    }
                    let s = AssembledBytes::new(&entry.shape, boxes, streams, elem, labels, tctx);
                    Ok(RawTensor::Fixed(Box::new(s)))
                }
            }
        }
    }

    fn variable_names(&self) -> Result<Vec<Option<String>>> {
        crate::formats::checkpoint::object_graph::variable_names(self, &Ctx::file(&self.index_path))
    }

    fn input_files(&self) -> Vec<(PathBuf, u64)> {
        let mut out = vec![(self.index_path.clone(), self.index_len)];
        out.extend(self.shards.iter().cloned());
        out.extend(self.other_files.iter().cloned());
        out.sort();
        out
    }
}

/// The checksum error of a tensor's data.
fn crc_mismatch(
    file: &InputFile,
    tensor: &str,
    label: &str,
    what: &str,
    range: (u64, u64),
    stored: u32,
    actual: u32,
) -> Error {
    Error::Corrupt {
        file: file.path().to_path_buf(),
        tensor: Some(tensor.to_string()),
        detail: format!(
            "{label}{what}checksum mismatch in bytes [{}, {}): stored {stored:#010x}, computed \
             {actual:#010x} {NO_VERIFY_HINT}",
            range.0, range.1
        ),
    }
}

/// The bytes of one tensor (or slice) in a data shard, streamed, with its CRC32C
/// checked before the final `Ok(0)` when verifying.
pub struct SpanStream {
    reader: RangeReader,
    tensor: String,
    label: String,
    start: u64,
    end: u64,
    crc: u32,
    /// The unmasked stored CRC, when verifying.
    expect: Option<u32>,
    done: bool,
}

impl SpanStream {
    fn new(
        file: Arc<InputFile>,
        span: &Span,
        tensor: &str,
        label: &str,
        verify: bool,
        cap: usize,
    ) -> Result<Self> {
        let reader = RangeReader::new(file, span.offset, span.size, cap)?;
        Ok(SpanStream {
            reader,
            tensor: tensor.to_string(),
            label: label.to_string(),
            start: span.offset,
            end: span.offset + span.size,
            crc: 0,
            expect: verify.then(|| unmask_crc(span.masked_crc)),
            done: false,
        })
    }
}

impl SpanStream {
    /// The checksum check at the end of the span.
    fn check_end(&mut self) -> Result<()> {
        if let Some(expect) = self.expect {
            if expect != self.crc {
                return Err(crc_mismatch(
                    self.reader.file(),
                    &self.tensor,
                    &self.label,
                    "",
                    (self.start, self.end),
                    expect,
                    self.crc,
                ));
            }
        }
        self.done = true;
        Ok(())
    }
}

impl ByteStream for SpanStream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.reader.read(buf)?;
        if n > 0 {
            if self.expect.is_some() {
                self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
            }
            return Ok(n);
        }
        self.check_end()?;
        Ok(0)
    }

    fn lends(&self) -> bool {
        true
    }

    /// Lends the reader's buffer: the CRC32C is computed over exactly the bytes the
    /// caller then writes.
    fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        if self.done || max == 0 {
            return Ok(&[]);
        }
        if self.reader.remaining() == 0 {
            self.check_end()?;
            return Ok(&[]);
        }
        let b = self.reader.read_borrowed(max)?;
        if self.expect.is_some() {
            self.crc = crc32c::crc32c_append(self.crc, b);
        }
        Ok(b)
    }
}

/// Facts from the pass over a string tensor's lengths.
#[derive(Clone, Copy, Debug)]
struct LengthScan {
    max_len: u64,
    /// File offset of the stored length checksum (end of the lengths).
    lengths_end: u64,
    /// The 4 stored checksum bytes, as found.
    stored: [u8; 4],
    /// File offset of the first string byte.
    data_start: u64,
    /// Sum of the lengths.
    data_len: u64,
    /// CRC32C over the lengths (as uint32/uint64 LE).
    len_crc: u32,
}

/// A DT_STRING tensor in a data shard (§2.6): varint64 lengths, a 4-byte masked
/// checksum of the lengths, then the bytes. Streams with two cursors, one over the
/// lengths and one over the bytes, so memory does not depend on the element count.
pub struct BundleStrings {
    file: Arc<InputFile>,
    tensor: String,
    label: String,
    start: u64,
    size: u64,
    n: u64,
    verify: bool,
    masked_crc: u32,
    cap: usize,
    scan: Option<LengthScan>,
    cursors: Option<(RangeReader, RangeReader)>,
    next: u64,
    len_crc: u32,
    crc: u32,
    done: bool,
}

impl BundleStrings {
    fn new(
        file: Arc<InputFile>,
        span: &Span,
        n: u64,
        tensor: &str,
        label: &str,
        verify: bool,
        cap: usize,
    ) -> Self {
        BundleStrings {
            file,
            tensor: tensor.to_string(),
            label: label.to_string(),
            start: span.offset,
            size: span.size,
            n,
            verify,
            masked_crc: span.masked_crc,
            cap,
            scan: None,
            cursors: None,
            next: 0,
            len_crc: 0,
            crc: 0,
            done: false,
        }
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            file: self.file.path().to_path_buf(),
            tensor: Some(self.tensor.clone()),
            detail: format!("{}{detail}", self.label),
        }
    }

    /// Appends one length to a running CRC the way TF does: as uint32 LE, or uint64
    /// LE when it does not fit.
    fn extend_len_crc(crc: u32, len: u64) -> u32 {
        match u32::try_from(len) {
            Ok(l) => crc32c::crc32c_append(crc, &l.to_le_bytes()),
            Err(_) => crc32c::crc32c_append(crc, &len.to_le_bytes()),
        }
    }

    fn scan_lengths(&mut self) -> Result<LengthScan> {
        if let Some(s) = self.scan {
            return Ok(s);
        }
        let mut r = RangeReader::new(self.file.clone(), self.start, self.size, self.cap)?;
        let (mut crc, mut max, mut total) = (0u32, 0u64, 0u64);
        for i in 0..self.n {
            let len = r.read_varint64()?.ok_or_else(|| {
                self.corrupt(format!(
                    "the length of string {i} (of {}) is malformed or runs past the tensor's \
                     {} bytes",
                    self.n, self.size
                ))
            })?;
            if self.verify {
                crc = Self::extend_len_crc(crc, len);
            }
            max = max.max(len);
            total = total
                .checked_add(len)
                .ok_or_else(|| self.corrupt("string lengths overflow".to_string()))?;
        }
        let lengths_end = r.offset();
        let mut stored = [0u8; 4];
        if !r.read_exact(&mut stored)? {
            return Err(self.corrupt(format!(
                "the string length checksum is missing: the lengths end at byte {lengths_end}, \
                 less than 4 bytes before the end of the tensor's data"
            )));
        }
        if self.verify && unmask_crc(u32::from_le_bytes(stored)) != crc {
            return Err(crc_mismatch(
                &self.file,
                &self.tensor,
                &self.label,
                "string length ",
                (self.start, lengths_end),
                unmask_crc(u32::from_le_bytes(stored)),
                crc,
            ));
        }
        let data_start = r.offset();
        if total > r.remaining() {
            return Err(self.corrupt(format!(
                "the string lengths add up to {total} bytes, but only {} bytes follow them",
                r.remaining()
            )));
        }
        let s = LengthScan {
            max_len: max,
            lengths_end,
            stored,
            data_start,
            data_len: total,
            len_crc: crc,
        };
        self.scan = Some(s);
        Ok(s)
    }
}

impl StringRead for BundleStrings {
    fn max_len(&mut self) -> Result<u64> {
        Ok(self.scan_lengths()?.max_len)
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        if self.done {
            return Ok(false);
        }
        let scan = self.scan_lengths()?;
        if self.cursors.is_none() {
            let lens = RangeReader::new(
                self.file.clone(),
                self.start,
                scan.lengths_end - self.start,
                self.cap,
            )?;
            let data =
                RangeReader::new(self.file.clone(), scan.data_start, scan.data_len, self.cap)?;
            self.cursors = Some((lens, data));
            self.crc = crc32c::crc32c_append(scan.len_crc, &scan.stored);
        }
        if self.next == self.n {
            if self.verify {
                if self.len_crc != scan.len_crc {
                    return Err(
                        self.corrupt("the string lengths changed while being read".to_string())
                    );
                }
                let expect = unmask_crc(self.masked_crc);
                if expect != self.crc {
                    return Err(crc_mismatch(
                        &self.file,
                        &self.tensor,
                        &self.label,
                        "",
                        (self.start, self.start + self.size),
                        expect,
                        self.crc,
                    ));
                }
            }
            self.done = true;
            return Ok(false);
        }
        let i = self.next;
        let Some((lens, data)) = self.cursors.as_mut() else {
            return Ok(false);
        };
        let len = lens.read_varint64()?;
        let remaining = data.remaining();
        let Some(len) = len.filter(|&l| l <= remaining) else {
            return Err(self.corrupt(format!(
                "string {i} has a malformed length or one longer than the {remaining} bytes left \
                 (did the file change while being read?)"
            )));
        };
        let l = usize::try_from(len)
            .map_err(|_| self.corrupt(format!("string {i} of {len} bytes is too large")))?;
        out.resize(l, 0);
        let Some((_, data)) = self.cursors.as_mut() else {
            return Ok(false);
        };
        if !data.read_exact(out)? {
            return Err(self.corrupt(format!("string {i} runs past the tensor's data")));
        }
        if self.verify {
            self.len_crc = Self::extend_len_crc(self.len_crc, len);
            self.crc = crc32c::crc32c_append(self.crc, out);
        }
        self.next += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::checkpoint::table::tests::TableBuilder;
    use crate::formats::io::mask_crc;
    use crate::formats::proto::tensor_slice_proto::{extent::HasLength, Extent};
    use crate::formats::proto::{TensorShapeProto, TensorSliceProto, VersionDef};

    fn shape(dims: &[i64]) -> Option<TensorShapeProto> {
        crate::formats::tensor::tensorproto::shape_proto(dims)
    }

    fn slice_proto(ext: &[(i64, Option<i64>)]) -> TensorSliceProto {
        TensorSliceProto {
            extent: ext
                .iter()
                .map(|&(start, len)| Extent {
                    start,
                    has_length: len.map(HasLength::Length),
                })
                .collect(),
        }
    }

    /// The §2.6 layout of `strings` and its entry checksum (masked).
    fn string_tensor(strings: &[&[u8]]) -> (Vec<u8>, u32) {
        let p = string_payload(strings);
        let lens: usize = p.len() - 4 - strings.iter().map(|s| s.len()).sum::<usize>();
        let mut crc = 0;
        for s in strings {
            crc = crc32c::crc32c_append(crc, &(s.len() as u32).to_le_bytes());
        }
        crc = crc32c::crc32c_append(crc, &p[lens..]);
        (p, mask_crc(crc))
    }

    /// The §2.6 layout of `strings`.
    fn string_payload(strings: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut crc = 0;
        for s in strings {
            let mut v = s.len() as u64;
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
            crc = crc32c::crc32c_append(crc, &(s.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(&mask_crc(crc).to_le_bytes());
        for s in strings {
            out.extend_from_slice(s);
        }
        out
    }

    /// A hand-built V2 checkpoint.
    struct Ckpt {
        dir: tempfile::TempDir,
        header: BundleHeaderProto,
        entries: BTreeMap<Vec<u8>, BundleEntryProto>,
        data: Vec<Vec<u8>>,
    }

    impl Ckpt {
        fn new(num_shards: usize) -> Self {
            Ckpt {
                dir: tempfile::tempdir().unwrap(),
                header: BundleHeaderProto {
                    num_shards: num_shards as i32,
                    endianness: 0,
                    version: Some(VersionDef {
                        producer: 1,
                        min_consumer: 0,
                        bad_consumers: vec![],
                    }),
                },
                entries: BTreeMap::new(),
                data: vec![Vec::new(); num_shards],
            }
        }

        fn prefix(&self) -> PathBuf {
            self.dir.path().join("model.ckpt")
        }

        fn add(
            &mut self,
            key: &[u8],
            dtype: DataType,
            dims: &[i64],
            payload: &[u8],
            shard: usize,
        ) -> &mut BundleEntryProto {
            let data = &mut self.data[shard];
            data.push(0xee); // padding, as with data_alignment > 1
            let e = BundleEntryProto {
                dtype: dtype.code(),
                shape: shape(dims),
                shard_id: shard as i32,
                offset: data.len() as i64,
                size: payload.len() as i64,
                crc32c: mask_crc(crc32c::crc32c(payload)),
                slices: vec![],
            };
            data.extend_from_slice(payload);
            self.entries.insert(key.to_vec(), e);
            self.entries.get_mut(key).unwrap()
        }

        fn add_strings(&mut self, key: &[u8], dims: &[i64], strings: &[&[u8]], shard: usize) {
            let (payload, crc) = string_tensor(strings);
            self.add(key, DataType::String, dims, &payload, shard)
                .crc32c = crc;
        }

        fn add_f32(&mut self, key: &str, dims: &[i64], vals: &[f32]) -> &mut BundleEntryProto {
            let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.add(key.as_bytes(), DataType::Float, dims, &bytes, 0)
        }

        /// A partitioned tensor of u16 `0..n` (row-major) split into `slices`.
        fn add_sliced_u16(&mut self, key: &str, dims: &[i64], slices: &[&[(i64, Option<i64>)]]) {
            let shape_u: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
            let mut full = BundleEntryProto {
                dtype: DataType::Uint16.code(),
                shape: shape(dims),
                ..Default::default()
            };
            for (i, ext) in slices.iter().enumerate() {
                let sp = slice_proto(ext);
                let ts = TensorSlice::from_proto(&sp);
                let bx = ts.resolve(&shape_u).unwrap();
                let mut payload = Vec::new();
                let n: u64 = bx.iter().map(|&(_, l)| l).product();
                for j in 0..n {
                    let (mut rem, mut lin) = (j, 0u64);
                    for d in (0..bx.len()).rev() {
                        let stride: u64 = shape_u[d + 1..].iter().product();
                        lin += (bx[d].0 + rem % bx[d].1) * stride;
                        rem /= bx[d].1;
                    }
                    payload.extend_from_slice(&(lin as u16).to_le_bytes());
                }
                let sdims: Vec<i64> = bx.iter().map(|&(_, l)| l as i64).collect();
                let skey = encode_tensor_name_slice(key.as_bytes(), &ts);
                let shard = i % self.data.len();
                self.add(&skey, DataType::Uint16, &sdims, &payload, shard);
                full.slices.push(sp);
            }
            self.entries.insert(key.as_bytes().to_vec(), full);
        }

        fn write(&self) {
            let mut kvs = vec![(Vec::new(), self.header.encode_to_vec())];
            kvs.extend(
                self.entries
                    .iter()
                    .map(|(k, e)| (k.clone(), e.encode_to_vec())),
            );
            let table = TableBuilder {
                per_block: 3,
                snappy: false,
            }
            .build(&kvs);
            std::fs::write(index_filename(&self.prefix()), table).unwrap();
            let n = self.data.len() as i32;
            for (i, d) in self.data.iter().enumerate() {
                std::fs::write(data_filename(&self.prefix(), i as i32, n), d).unwrap();
            }
        }

        fn open(&self) -> Result<Bundle> {
            self.write();
            Bundle::open(&self.prefix(), &self.prefix())
        }

        fn err(&self) -> String {
            self.open().unwrap_err().to_string()
        }
    }

    fn fixed_bytes(b: &Bundle, name: &str, verify: bool) -> Result<Vec<u8>> {
        crate::source::testing::read_fixed(b, name, verify)
    }

    fn strings(b: &Bundle, name: &str, verify: bool) -> Result<(u64, Vec<Vec<u8>>)> {
        crate::source::testing::read_strings(b, name, verify)
    }

    fn iota_u16(n: u16) -> Vec<u8> {
        (0..n).flat_map(|i| i.to_le_bytes()).collect()
    }

    fn sample() -> Ckpt {
        let mut c = Ckpt::new(2);
        c.add_f32("a", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        c.add_f32("empty", &[0, 3], &[]);
        let s: [&[u8]; 4] = [b"", b"x", &[0u8, 0xff, 0], &[b'y'; 200]];
        c.add_strings(b"s", &[2, 2], &s, 1);
        c.add_strings(b"s_empty", &[0], &[], 1);
        c.add_strings(OBJECT_GRAPH_KEY.as_bytes(), &[], &[b"graph"], 0);
        c.add(b"var", DataType::Variant, &[1], &[1, 2, 3, 4, 5, 6], 0);
        c.add_sliced_u16(
            "rows",
            &[10, 3],
            &[
                &[(0, Some(4)), (0, Some(3))],
                &[(4, Some(3)), (0, Some(3))],
                &[(7, Some(3)), (0, None)],
            ],
        );
        c.add_sliced_u16(
            "cols",
            &[4, 6],
            &[&[(0, None), (3, Some(3))], &[(0, None), (0, Some(3))]],
        );
        c
    }

    #[test]
    fn reads_plain_string_and_sliced_tensors() {
        let c = sample();
        let b = c.open().unwrap();
        let names: Vec<&str> = b.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                OBJECT_GRAPH_KEY,
                "a",
                "cols",
                "empty",
                "rows",
                "s",
                "s_empty",
                "var"
            ]
        );
        let e = |n: &str| b.entries().iter().find(|e| e.name == n).unwrap().clone();
        assert!(e(OBJECT_GRAPH_KEY).hidden && !e("a").hidden);
        assert_eq!(e("a").location, "shard 0 @ 1");
        assert_eq!(e("rows").location, "3 slices in 2 shards");
        assert_eq!(e("rows").shape, [10, 3]);
        assert_eq!(e("rows").stored_bytes, 60);
        assert_eq!(e("var").dtype, DataType::Variant);
        let a: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(fixed_bytes(&b, "a", true).unwrap(), a);
        assert_eq!(fixed_bytes(&b, "empty", true).unwrap(), Vec::<u8>::new());
        assert_eq!(fixed_bytes(&b, "rows", true).unwrap(), iota_u16(30));
        assert_eq!(fixed_bytes(&b, "cols", true).unwrap(), iota_u16(24));
        let (max, s) = strings(&b, "s", true).unwrap();
        assert_eq!(max, 200);
        assert_eq!(
            s,
            vec![
                b"".to_vec(),
                b"x".to_vec(),
                vec![0, 0xff, 0],
                vec![b'y'; 200]
            ]
        );
        assert_eq!(strings(&b, "s_empty", true).unwrap(), (0, vec![]));
        let i = names.iter().position(|&n| n == "var").unwrap();
        assert!(matches!(b.open(i, true), Err(Error::Unsupported { .. })));
        let files = b.input_files();
        assert_eq!(files.len(), 3);
        assert!(files[0].0.ends_with("model.ckpt.data-00000-of-00002"));
        assert!(files[2].0.ends_with("model.ckpt.index"));
    }

    #[test]
    fn reads_sliced_strings() {
        let mut c = Ckpt::new(1);
        let all: Vec<Vec<u8>> = (0..6).map(|i| vec![b'a' + i as u8; i + 1]).collect();
        let mut full = BundleEntryProto {
            dtype: DataType::String.code(),
            shape: shape(&[2, 3]),
            ..Default::default()
        };
        for ext in [[(0, None), (0, Some(1))], [(0, None), (1, Some(2))]] {
            let sp = slice_proto(&ext);
            let ts = TensorSlice::from_proto(&sp);
            let (c0, cn) = (ext[1].0 as usize, ext[1].1.unwrap() as usize);
            let part: Vec<&[u8]> = (0..2)
                .flat_map(|r| (c0..c0 + cn).map(move |col| (r, col)))
                .map(|(r, col)| all[r * 3 + col].as_slice())
                .collect();
            c.add_strings(
                &encode_tensor_name_slice(b"t", &ts),
                &[2, cn as i64],
                &part,
                0,
            );
            full.slices.push(sp);
        }
        c.entries.insert(b"t".to_vec(), full);
        let b = c.open().unwrap();
        assert_eq!(b.entries().len(), 1);
        let (max, got) = strings(&b, "t", true).unwrap();
        assert_eq!(max, 6);
        assert_eq!(got, all);
    }

    #[test]
    fn rejects_bad_headers() {
        let mut c = sample();
        c.header.endianness = 1;
        assert!(matches!(c.open(), Err(Error::Unsupported { .. })));
        assert!(c.err().contains("big-endian"));
        let mut c = sample();
        c.header.version.as_mut().unwrap().min_consumer = 2;
        assert!(c.err().contains("reader of format version 2"));
        let mut c = sample();
        c.header.version.as_mut().unwrap().bad_consumers = vec![1];
        assert!(c.err().contains("disallows"));
        // A V1 table: the "" value is a SavedTensorSlices (field 1, length-delimited).
        let c = Ckpt::new(1);
        let table = TableBuilder {
            per_block: 3,
            snappy: false,
        }
        .build(&[(Vec::new(), vec![0x0a, 0x00])]);
        std::fs::write(index_filename(&c.prefix()), table).unwrap();
        let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
        assert!(err.to_string().contains("holds a V1 checkpoint"), "{err}");
        let table = TableBuilder {
            per_block: 3,
            snappy: false,
        }
        .build(&[(b"a".to_vec(), vec![])]);
        std::fs::write(index_filename(&c.prefix()), table).unwrap();
        let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
        assert!(err.to_string().contains("not the header entry"), "{err}");
        let table = TableBuilder {
            per_block: 3,
            snappy: false,
        }
        .build(&[(Vec::new(), vec![0x08, 0x01, 0x10, 0x07])]);
        std::fs::write(index_filename(&c.prefix()), table).unwrap();
        let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
        assert!(err.to_string().contains("unknown endianness"), "{err}");
        let table = TableBuilder {
            per_block: 3,
            snappy: false,
        }
        .build(&[(Vec::new(), vec![0x08, 0x01]), (b"x".to_vec(), vec![0xff])]);
        std::fs::write(index_filename(&c.prefix()), table).unwrap();
        let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
        assert!(
            err.to_string()
                .contains("tensor `x`: the index entry is not a BundleEntryProto"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_entries() {
        let check = |f: &dyn Fn(&mut Ckpt), want: &str| {
            let mut c = sample();
            f(&mut c);
            let err = c.err();
            assert!(err.contains(want), "want {want:?} in {err}");
        };
        check(
            &|c| c.entries.get_mut(b"a".as_slice()).unwrap().shard_id = 2,
            "shard_id 2 is out of range",
        );
        check(
            &|c| c.entries.get_mut(b"a".as_slice()).unwrap().shard_id = -1,
            "shard_id -1 is out of range",
        );
        check(
            &|c| c.entries.get_mut(b"a".as_slice()).unwrap().offset = 1000,
            "lies past the end of",
        );
        check(
            &|c| c.entries.get_mut(b"a".as_slice()).unwrap().offset = -5,
            "negative data offset",
        );
        check(
            &|c| c.entries.get_mut(b"a".as_slice()).unwrap().offset = i64::MAX,
            "lies past the end of",
        );
        check(
            &|c| c.entries.get_mut(b"a".as_slice()).unwrap().size = 20,
            "the entry says 20 bytes, but 6 float32 elements",
        );
        check(
            &|c| c.entries.get_mut(b"a".as_slice()).unwrap().dtype = 99,
            "invalid or unknown dtype value 99",
        );
        check(
            &|c| c.entries.get_mut(b"a".as_slice()).unwrap().shape = shape(&[-2]),
            "negative dimension",
        );
        check(
            &|c| c.entries.get_mut(b"a".as_slice()).unwrap().shape = shape(&[1 << 40, 1 << 40]),
            "more elements than fit",
        );
        check(
            &|c| c.entries.get_mut(b"s".as_slice()).unwrap().size = 7,
            "too few for 4 strings",
        );
        check(
            &|c| c.entries.get_mut(b"s".as_slice()).unwrap().shape = shape(&[1 << 40]),
            "too few for",
        );
        let rows = |c: &mut Ckpt| {
            c.entries
                .get_mut(b"rows".as_slice())
                .unwrap()
                .slices
                .clone()
        };
        check(
            &|c| {
                let mut s = rows(c);
                s.pop();
                c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
            },
            "the slices hold 21 elements but the tensor has 30",
        );
        check(
            &|c| {
                let mut s = rows(c);
                s.push(s[0].clone());
                c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
            },
            "slices `0,4:0,3` and `0,4:0,3` overlap",
        );
        check(
            &|c| {
                let mut s = rows(c);
                s[0] = slice_proto(&[(0, Some(4))]);
                c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
            },
            "has 1 dimensions but the tensor has 2",
        );
        check(
            &|c| {
                let mut s = rows(c);
                s[2] = slice_proto(&[(7, Some(4)), (0, None)]);
                c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
            },
            "lies outside the tensor's size 10",
        );
        check(
            &|c| {
                let mut s = rows(c);
                // Same rows, spelled differently: the stored key does not match.
                s[2] = slice_proto(&[(7, Some(3)), (0, Some(3))]);
                c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
            },
            "slice `7,3:0,3`: no entry under its key",
        );
        let key0 = encode_tensor_name_slice(
            b"rows",
            &TensorSlice::from_proto(&slice_proto(&[(0, Some(4)), (0, Some(3))])),
        );
        let k = key0.clone();
        check(
            &move |c| c.entries.get_mut(&k).unwrap().shape = shape(&[3, 4]),
            "stored with shape [3, 4], but the slice has shape [4, 3]",
        );
        let k = key0.clone();
        check(
            &move |c| c.entries.get_mut(&k).unwrap().dtype = DataType::Int16.code(),
            "stored as int16, but the tensor is uint16",
        );
        let k = key0.clone();
        check(
            &move |c| c.entries.get_mut(&k).unwrap().size = 2,
            "slice `0,4:0,3`: the entry says 2 bytes",
        );
        let k = key0.clone();
        check(
            &move |c| {
                c.entries.get_mut(&k).unwrap().slices = vec![slice_proto(&[(0, None), (0, None)])]
            },
            "itself partitioned",
        );
    }

    #[test]
    fn rejects_missing_shard_naming_it() {
        let c = sample();
        c.write();
        std::fs::remove_file(data_filename(&c.prefix(), 1, 2)).unwrap();
        let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
        let Error::Io { path, err: io_err } = &err else {
            panic!("{err}")
        };
        assert!(path.ends_with("model.ckpt.data-00001-of-00002"));
        assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().contains("data file is missing (tensor `"),
            "{err}"
        );
    }

    #[test]
    fn finds_renumbered_shards() {
        let c = sample();
        c.write();
        let from = data_filename(&c.prefix(), 1, 2);
        std::fs::rename(&from, data_filename(&c.prefix(), 1, 3)).unwrap();
        let b = Bundle::open(&c.prefix(), &c.prefix()).unwrap();
        assert_eq!(strings(&b, "s", true).unwrap().1.len(), 4);
    }

    /// Flips one bit of shard `shard` at `offset`.
    fn flip(c: &Ckpt, shard: i32, offset: u64) {
        let p = data_filename(&c.prefix(), shard, c.data.len() as i32);
        let mut d = std::fs::read(&p).unwrap();
        d[offset as usize] ^= 0x10;
        std::fs::write(&p, d).unwrap();
    }

    #[test]
    fn rejects_checksum_mismatches() {
        let c = sample();
        c.write();
        let a = c.entries[b"a".as_slice()].clone();
        flip(&c, 0, a.offset as u64 + 5);
        let b = Bundle::open(&c.prefix(), &c.prefix()).unwrap();
        let err = fixed_bytes(&b, "a", true).unwrap_err().to_string();
        assert!(
            err.contains("model.ckpt.data-00000-of-00002: tensor `a`: checksum mismatch"),
            "{err}"
        );
        assert!(
            err.contains("use --no-verify only to recover data"),
            "{err}"
        );
        assert_eq!(fixed_bytes(&b, "a", false).unwrap().len(), 24);

        // A slice's checksum.
        let key0 = encode_tensor_name_slice(
            b"rows",
            &TensorSlice::from_proto(&slice_proto(&[(4, Some(3)), (0, Some(3))])),
        );
        let e = c.entries[&key0].clone();
        flip(&c, e.shard_id, e.offset as u64);
        let err = fixed_bytes(&b, "rows", true).unwrap_err().to_string();
        assert!(
            err.contains("tensor `rows`: slice `4,3:0,3`: checksum mismatch"),
            "{err}"
        );
        assert_eq!(fixed_bytes(&b, "rows", false).unwrap().len(), 60);

        // String bytes, then string lengths.
        let s = c.entries[b"s".as_slice()].clone();
        let sb = |c: &Ckpt| Bundle::open(&c.prefix(), &c.prefix()).unwrap();
        flip(&c, 1, s.offset as u64 + 10);
        let err = strings(&sb(&c), "s", true).unwrap_err().to_string();
        assert!(err.contains("tensor `s`: checksum mismatch"), "{err}");
        assert!(strings(&sb(&c), "s", false).is_ok());
        flip(&c, 1, s.offset as u64 + 10);
        flip(&c, 1, s.offset as u64 + 6);
        let err = strings(&sb(&c), "s", true).unwrap_err().to_string();
        assert!(err.contains("string length checksum mismatch"), "{err}");
    }

    #[test]
    fn rejects_bad_string_layouts() {
        let check = |payload: Vec<u8>, n: i64, want: &str| {
            let mut c = Ckpt::new(1);
            c.add(b"s", DataType::String, &[n], &payload, 0);
            let b = c.open().unwrap();
            let err = strings(&b, "s", false).unwrap_err().to_string();
            assert!(err.contains(want), "want {want:?} in {err}");
        };
        // Lengths claim more bytes than follow.
        let mut p = string_payload(&[b"abc", b"de"]);
        p.truncate(p.len() - 1);
        check(p, 2, "add up to 5 bytes, but only 4 bytes follow");
        // A varint running past the data.
        check(
            vec![0x80, 0x80, 0x80, 0x80, 0x80],
            1,
            "is malformed or runs past",
        );
        // A length as large as u64 allows.
        let mut p = vec![0xff; 9];
        p.extend_from_slice(&[0x01, 0, 0, 0, 0]);
        check(p, 1, "add up to 18446744073709551615 bytes");
        // Lengths that overflow when summed.
        let mut p = vec![0xff; 9];
        p.push(0x01);
        p.extend_from_slice(&[0xff; 9]);
        p.push(0x01);
        p.extend_from_slice(&[0, 0, 0, 0]);
        check(p, 2, "overflow");
        // The length checksum cut off.
        check(
            vec![0x80, 0x00, 0x80, 0x00, 0x00, 0x00],
            2,
            "checksum is missing",
        );
    }

    #[test]
    fn accepts_full_slices_from_the_full_entry() {
        let mut c = Ckpt::new(1);
        c.add("f".as_bytes(), DataType::Uint16, &[3], &iota_u16(3), 0)
            .slices = vec![slice_proto(&[(0, None)])];
        let b = c.open().unwrap();
        assert_eq!(b.entries()[0].location, "1 slice in 1 shard");
        assert_eq!(fixed_bytes(&b, "f", true).unwrap(), iota_u16(3));
    }
}
