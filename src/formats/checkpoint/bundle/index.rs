//! Reading and validating a bundle's index: the header, every entry, the data shards they name, and the slices of partitioned tensors.

use super::*;
use crate::formats::checkpoint::slice_key::{check_cover, encode_tensor_name_slice, TensorSlice};
use crate::formats::checkpoint::table::{show_key, Table};
use crate::formats::proto::{bundle_header_proto::Endianness, BundleEntryProto, BundleHeaderProto};
use crate::formats::tensor::tensorproto::{parse_dtype, parse_shape};
use crate::source::{FileUnit, Location};
use prost::Message;
use std::collections::BTreeMap;
use std::io;

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
        let mut shards = Shards {
            prefix,
            num_shards: header.num_shards,
            files: Vec::new(),
            slot: BTreeMap::new(),
        };
        // One pass over the index. A plain entry is described as it is read and its
        // proto dropped, so memory per listed tensor is its `Entry` and `Source`. Only
        // partitioned entries and possible slice entries (their keys start with 0x00,
        // §3.3) are kept for the second step, in key order for the lookups.
        let mut entries: Vec<Entry> = Vec::new();
        let mut sources: Vec<Source> = Vec::new();
        let mut deferred: Vec<(Vec<u8>, Kept)> = Vec::new();
        for kv in scan {
            let (key, value) = kv?;
            let entry = BundleEntryProto::decode(value.as_slice()).map_err(|e| {
                ctx.tensor(&String::from_utf8_lossy(&key))
                    .corrupt(format!("the index entry is not a BundleEntryProto: {e}"))
            })?;
            if entry.slices.is_empty() && key.first() != Some(&0) {
                let name = String::from_utf8_lossy(&key).into_owned();
                let tctx = ctx.tensor(&name);
                let (e, src) = describe(&key, name, &entry, &[], &mut shards, &tctx)?;
                entries.push(e);
                sources.push(src);
            } else if entry.slices.is_empty() {
                // Most likely a slice: its 20-odd encoded bytes take less than the proto.
                drop(entry);
                deferred.push((key, Kept::Encoded(value)));
            } else {
                deferred.push((key, Kept::Decoded(Box::new(entry))));
            }
        }
        // Slice entries are hidden from the listing as TF does (§3.5): a flag per kept
        // entry, found by looking up every slice's key (no set of keys is built).
        let mut hidden = vec![false; deferred.len()];
        for (key, e) in &deferred {
            let Kept::Decoded(e) = e else { continue };
            for sp in &e.slices {
                let skey = encode_tensor_name_slice(key, &TensorSlice::from_proto(sp));
                if let Ok(i) = deferred.binary_search_by(|(k, _)| k.as_slice().cmp(&skey)) {
                    hidden[i] = true;
                }
            }
        }
        for ((key, e), hidden) in deferred.iter().zip(hidden) {
            if hidden {
                continue;
            }
            let name = String::from_utf8_lossy(key).into_owned();
            let tctx = ctx.tensor(&name);
            let e = e.decode(&tctx)?;
            let (e, src) = describe(key, name, &e, &deferred, &mut shards, &tctx)?;
            entries.push(e);
            sources.push(src);
        }
        drop(deferred);
        if !entries.is_sorted_by(|a, b| a.name <= b.name) {
            let mut listed: Vec<(Entry, Source)> = entries.into_iter().zip(sources).collect();
            listed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            (entries, sources) = listed.into_iter().unzip();
        }
        entries.shrink_to_fit();
        sources.shrink_to_fit();
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
}

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
        shard: u32::try_from(shard).map_err(|_| ctx.corrupt("too many data files"))?,
        offset,
        size,
        masked_crc: e.crc32c,
    })
}

/// An index entry kept for the second step of [`Bundle::open`].
enum Kept {
    /// An unpartitioned entry (most likely a slice), as stored.
    Encoded(Vec<u8>),
    /// A partitioned entry.
    Decoded(Box<BundleEntryProto>),
}

impl Kept {
    fn decode(&self, ctx: &Ctx) -> Result<std::borrow::Cow<'_, BundleEntryProto>> {
        match self {
            Kept::Decoded(e) => Ok(std::borrow::Cow::Borrowed(e)),
            Kept::Encoded(v) => BundleEntryProto::decode(v.as_slice())
                .map(std::borrow::Cow::Owned)
                .map_err(|e| {
                    ctx.corrupt(format!("the index entry is not a BundleEntryProto: {e}"))
                }),
        }
    }
}

/// Validates the listed entry `key` and describes it.
fn describe(
    key: &[u8],
    name: String,
    e: &BundleEntryProto,
    raw: &[(Vec<u8>, Kept)],
    shards: &mut Shards<'_>,
    ctx: &Ctx,
) -> Result<(Entry, Source)> {
    let dtype = parse_dtype(e.dtype, ctx)?;
    let shape = parse_shape(e.shape.as_ref(), ctx)?;
    let readable = dtype.is_convertible();
    let mut entry = Entry {
        hidden: name == OBJECT_GRAPH_KEY,
        name,
        dtype,
        shape: shape.clone(),
        stored_bytes: 0,
        location: Location::None,
    };
    if e.slices.is_empty() {
        let span = plain_span(e, dtype, &shape, shards, ctx)?;
        entry.stored_bytes = span.size;
        entry.location = Location::Shard {
            shard: e.shard_id,
            offset: span.offset,
        };
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
            let se = raw[i].1.decode(ctx)?;
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
            plain_span(&se, dtype, &want, shards, ctx)
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
    entry.location = Location::Slices {
        slices: u32::try_from(parts.len()).unwrap_or(u32::MAX),
        files: u32::try_from(shard_ids.len()).unwrap_or(u32::MAX),
        unit: FileUnit::Shard,
    };
    let source = if readable {
        Source::Sliced(parts)
    } else {
        Source::Unreadable
    };
    Ok((entry, source))
}
