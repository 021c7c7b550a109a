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
//! and bytes); sliced tensors are reassembled by [`crate::formats::checkpoint::slice_key`]
//! from slice streams opened on first read.
//!
//! Files: `index.rs` reads and validates the index, `read.rs` streams byte ranges,
//! `strings.rs` string tensors, `tests.rs` the unit tests on hand-built bundles.

mod index;
mod read;
mod strings;
#[cfg(test)]
mod tests;

use crate::dtype::DataType;
use crate::error::{Ctx, Error, Result};
use crate::formats::checkpoint::slice_key::{AssembledBytes, AssembledStrings, SliceBox};
use crate::formats::io::InputFile;
use crate::source::{num_elements, Container, Entry, RawTensor, StringRead};
use crate::stream::ByteStream;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use read::SpanStream;
pub use strings::BundleStrings;

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
/// Largest read buffer of one slice of a partitioned tensor.
const SLICE_BUFFER: usize = 64 << 10;
/// What the read buffers of one partitioned tensor's slices may take together, when
/// every slice is being read at once (slices side by side on every line).
const SLICE_BUDGET: usize = 16 << 20;
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
    shard: u32,
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
    recent: std::sync::Mutex<Option<(u32, Arc<InputFile>)>>,
}

/// The dims of a box.
fn box_shape(b: &[(u64, u64)]) -> Vec<u64> {
    b.iter().map(|&(_, l)| l).collect()
}

impl Bundle {
    /// The `.index` file.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    /// Opens shard `shard` for one tensor, reusing an already open file.
    fn shard_file(&self, shard: u32, cache: &mut OpenFiles) -> Result<Arc<InputFile>> {
        if let Some(f) = cache.get(&shard) {
            return Ok(f.clone());
        }
        let (path, _) = self
            .shards
            .get(shard as usize)
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
type OpenFiles = BTreeMap<u32, Arc<InputFile>>;

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
                let cap = read::slice_buffer(parts.len());
                if entry.dtype == DataType::String {
                    let mut streams: Vec<Box<dyn StringRead>> = Vec::with_capacity(parts.len());
                    for p in parts {
                        streams.push(Box::new(strings::LazyStrings {
                            file: self.shard_file(p.span.shard, &mut files)?,
                            span: &p.span,
                            n: num_elements(&box_shape(&p.bx)).unwrap_or(0),
                            tensor: name,
                            text: &p.text,
                            verify,
                            cap,
                            open: None,
                            max_len: None,
                            done: false,
                        }));
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
                        streams.push(Box::new(read::LazySpan {
                            file: self.shard_file(p.span.shard, &mut files)?,
                            span: &p.span,
                            tensor: name,
                            text: &p.text,
                            verify,
                            cap,
                            open: None,
                            done: false,
                        }));
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
