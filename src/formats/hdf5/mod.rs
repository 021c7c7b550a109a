//! HDF5 files as Keras and h5py write them: Keras 3 `.weights.h5` (and the
//! `model.weights.h5` inside a `.keras` archive), `tf_keras` legacy `.h5` models and
//! weight files, and plain h5py files (docs/formats/hdf5.md).
//!
//! The HDF5 structures are parsed by the pure-Rust `hdf5-reader` crate over bytes
//! read through `formats::io` ([`storage::Window`]); this module decides what is
//! listed, refuses anything that would reach outside the file (external links, external
//! storage, virtual datasets), checks every declared size against the stored bytes
//! before anything is allocated, and streams the data.

#[cfg(test)]
mod damaged;
pub mod data;
pub mod keras;
pub mod names;
pub mod sharded;
pub mod storage;
pub mod vlen;
pub mod walk;

use crate::dtype::DataType;
use crate::error::{Ctx, Error, Result};
use crate::formats::io::InputFile;
use crate::source::{num_elements, Container, Entry, RawTensor, VecStrings};
use data::{ChunkStream, Elem, OwnedStream, RangeStream};
use hdf5_reader::messages::dataspace::DataspaceType;
use hdf5_reader::messages::layout::DataLayout;
use hdf5_reader::messages::HdfMessage;
use hdf5_reader::{Dataset, Hdf5File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The HDF5 signature (spec II.A, "Format Signature").
pub const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Where the superblock of the HDF5 file in `file`'s window `[base, base + len)` is:
/// at 0, 512, 1024, 2048, ... (spec II.A: a user block of a power-of-two size of at
/// least 512 bytes may precede it). `None` if there is no signature.
pub fn find_signature(file: &InputFile, base: u64, len: u64) -> Result<Option<u64>> {
    let mut at = 0u64;
    while at.checked_add(8).is_some_and(|end| end <= len) {
        let mut sig = [0u8; 8];
        file.read_exact_at(base + at, &mut sig)?;
        if &sig == SIGNATURE {
            return Ok(Some(at));
        }
        at = if at == 0 { 512 } else { at * 2 };
    }
    Ok(None)
}

/// Where one dataset's bytes are.
enum Stored {
    /// Nothing to read (no elements).
    Empty,
    /// `[offset, offset + len)` of the input file.
    Range(u64, u64),
    /// Compact data, from the object header.
    Compact(Vec<u8>),
    /// Chunked: band-by-band through hdf5-reader's chunk iterator.
    Chunked(Vec<u64>),
}

/// A dataset tf2npy lists.
struct Item {
    dataset: Dataset,
    elem: Elem,
    stored: Stored,
    keras_name: Option<String>,
    /// The Keras 3 `vars` group holding the dataset (`layers/dense/vars/`).
    vars_group: Option<String>,
}

/// An opened HDF5 file (or `.keras` archive).
pub struct Hdf5Container {
    path: PathBuf,
    kind: &'static str,
    file: Arc<InputFile>,
    entries: Vec<Entry>,
    items: Vec<Item>,
    vars_names: std::collections::HashMap<String, String>,
    /// A `.keras` archive's `config.json` (for naming Keras 3 variables).
    config: Option<Vec<u8>>,
    /// Address sizes and bounds, for variable-length strings' heap references.
    layout: vlen::Layout,
}

/// Opens the HDF5 file in `file`'s bytes `[base, base + len)`. `path` is what the user
/// named; `archive` is true for a `.keras` archive's weights.
pub fn open_window(
    path: &Path,
    file: Arc<InputFile>,
    base: u64,
    len: u64,
    archive: bool,
) -> Result<Hdf5Container> {
    let ctx = Ctx::file(path);
    let window = Arc::new(storage::Window::new(file.clone(), base, len));
    let guard = Arc::new(walk::ExternalLinkGuard::default());
    let options = OpenOptions {
        // No chunk is kept after it is streamed: memory stays one band.
        chunk_cache_bytes: 0,
        external_link_resolver: Some(guard.clone()),
        // External raw data files are never resolved (refused below).
        external_file_resolver: None,
        max_chunk_bytes: data::MAX_BAND_BYTES as usize,
        ..OpenOptions::default()
    };
    let h5 = Hdf5File::from_storage_with_options(window.clone(), options)
        .map_err(|e| ctx.corrupt(format!("not a readable HDF5 file: {e}")))?;
    // hdf5-reader addresses relative to the superblock's base address.
    let data_base = base
        .checked_add(h5.superblock().base_address)
        .ok_or_else(|| ctx.corrupt("base address overflows"))?;
    let walked = walk::walk(&h5, &guard, &ctx)?;
    let layout = vlen::Layout {
        offset_size: h5.superblock().offset_size,
        length_size: h5.superblock().length_size,
        base: data_base,
        end: base + len,
    };
    let kind = keras::kind(archive, &walked);
    let vars_names = walked.vars_names;
    let mut entries = Vec::new();
    let mut items = Vec::new();
    for found in walked.datasets {
        let (entry, item) = describe(&h5, found, &file, &layout, &ctx)?;
        entries.push(entry);
        items.push(item);
    }
    Ok(Hdf5Container {
        path: path.to_path_buf(),
        kind,
        file,
        entries,
        items,
        vars_names,
        config: None,
        layout,
    })
}

/// Lists one dataset: its dtype, shape and storage, every size checked.
fn describe(
    h5: &Hdf5File,
    found: walk::Found,
    file: &InputFile,
    bounds: &vlen::Layout,
    ctx: &Ctx,
) -> Result<(Entry, Item)> {
    let (data_base, window_end) = (bounds.base, bounds.end);
    let name = found.path;
    let ds = found.dataset;
    let tctx = ctx.tensor(&name);
    let header = h5
        .get_or_parse_header(ds.address())
        .map_err(|e| walk::reader_error(ctx, &name, e))?;
    let mut layout = None;
    let mut null_space = false;
    for m in &header.messages {
        match m {
            HdfMessage::ExternalFiles(_) => {
                return Err(tctx.unsupported(
                    "the dataset's data is in external files (HDF5 External Data Files \
                     message); tf2npy never opens other files",
                ))
            }
            HdfMessage::DataLayout(l) => layout = Some(&l.layout),
            HdfMessage::Dataspace(d) if d.dataspace_type == DataspaceType::Null => {
                null_space = true
            }
            _ => {}
        }
    }
    let Some(layout) = layout else {
        return Err(tctx.corrupt("the dataset has no Data Layout message"));
    };
    let shape = ds.shape().to_vec();
    let n = num_elements(&shape).ok_or_else(|| {
        tctx.corrupt(format!(
            "shape {shape:?} has more elements than fit 64 bits"
        ))
    })?;
    let keras_dtype = ds
        .attributes()
        .into_iter()
        .find(|a| a.name == "dtype")
        .and_then(|a| a.read_string().ok());
    let elem = if null_space {
        // h5py.Empty: no elements and no shape, not even a scalar's.
        Elem::Unsupported("null dataspace (h5py.Empty)".into())
    } else {
        data::classify(ds.dtype(), keras_dtype.as_deref())
    };
    let (dtype, size) = match &elem {
        Elem::Fixed { dtype, size, .. } => (*dtype, *size as u64),
        Elem::FixedString(s) => (DataType::String, *s as u64),
        // One heap reference per element (vlen.rs).
        Elem::VlenString => (DataType::String, bounds.ref_size() as u64),
        // Listed, then skipped by the plan with a warning (or refused by name).
        Elem::Unsupported(_) => (DataType::Variant, 0),
    };
    let logical = n.checked_mul(size).ok_or_else(|| {
        tctx.corrupt(format!("shape {shape:?} holds more bytes than fit 64 bits"))
    })?;
    let mut location = String::new();
    let stored = if matches!(elem, Elem::Unsupported(_)) || n == 0 {
        Stored::Empty
    } else {
        match layout {
            DataLayout::Contiguous { address, size: len } => {
                if hdf5_reader::io::Cursor::is_undefined_offset(
                    *address,
                    h5.superblock().offset_size,
                ) {
                    return Err(tctx.unsupported(
                        "no data is stored for this dataset (never written: only fill values)",
                    ));
                }
                if *len != logical {
                    return Err(tctx.corrupt(format!(
                        "shape {shape:?} of {size}-byte elements needs {logical} bytes but the \
                         dataset stores {len}"
                    )));
                }
                let off = data_base
                    .checked_add(*address)
                    .filter(|o| o.checked_add(*len).is_some_and(|e| e <= window_end))
                    .ok_or_else(|| {
                        tctx.corrupt(format!(
                            "data at address {address} + {len} bytes lies outside the file"
                        ))
                    })?;
                file.check_range(off, *len, "dataset data")?;
                location = format!("@ {off}");
                Stored::Range(off, *len)
            }
            DataLayout::Compact { data } => {
                if data.len() as u64 != logical {
                    return Err(tctx.corrupt(format!(
                        "shape {shape:?} of {size}-byte elements needs {logical} bytes but the \
                         compact data holds {}",
                        data.len()
                    )));
                }
                location = "compact".into();
                Stored::Compact(data.clone())
            }
            DataLayout::Chunked { dims, .. } => {
                let mut chunk: Vec<u64> = dims.iter().map(|&d| u64::from(d)).collect();
                // Layout messages v3/v4 end the chunk dimensions with the element size
                // (spec IV.A.2.i); hdf5-reader keeps it for v4.
                if chunk.len() == shape.len() + 1 {
                    chunk.pop();
                }
                if chunk.len() != shape.len() || chunk.contains(&0) {
                    return Err(tctx.corrupt(format!(
                        "chunk shape {chunk:?} does not fit the dataset's shape {shape:?}"
                    )));
                }
                let band = data::band_bytes(&shape, &chunk, size.max(1));
                if band.is_none_or(|b| b > data::MAX_BAND_BYTES) {
                    return Err(tctx.unsupported(format!(
                        "chunks of shape {chunk:?} over shape {shape:?} need more than {} MiB \
                         in memory to reassemble in row-major order",
                        data::MAX_BAND_BYTES >> 20
                    )));
                }
                location = format!("chunked {chunk:?}");
                Stored::Chunked(chunk)
            }
        }
    };
    let stored_bytes = match &stored {
        Stored::Range(_, len) => *len,
        Stored::Compact(d) => d.len() as u64,
        _ => logical,
    };
    if let Elem::Unsupported(why) = &elem {
        location = format!("HDF5 {why}");
    }
    let entry = Entry {
        name,
        dtype,
        shape,
        stored_bytes,
        location: location.into(),
        hidden: false,
    };
    let item = Item {
        dataset: ds,
        elem,
        stored,
        keras_name: found.keras_name,
        vars_group: found.vars_group,
    };
    Ok((entry, item))
}

impl Hdf5Container {
    /// Keras 3 `vars` groups' names by group path (for sharded saves).
    pub fn vars_names(&self) -> &std::collections::HashMap<String, String> {
        &self.vars_names
    }

    /// Sets the `config.json` of the `.keras` archive the weights came from.
    fn set_config(&mut self, config: Vec<u8>) {
        self.config = Some(config);
    }

    /// The Keras 3 `vars` groups holding datasets, with the datasets' leaf names.
    pub fn vars_groups(&self) -> Vec<names::VarsGroup> {
        let mut groups: Vec<names::VarsGroup> = Vec::new();
        for (e, item) in self.entries.iter().zip(&self.items) {
            let Some(path) = &item.vars_group else {
                continue;
            };
            let leaf = e.name.strip_prefix(path.as_str()).unwrap_or(&e.name);
            match groups.iter_mut().find(|g| &g.path == path) {
                Some(g) => g.leaves.push(leaf.to_string()),
                None => groups.push(names::VarsGroup {
                    path: path.clone(),
                    name: self.vars_names.get(path).cloned().unwrap_or_default(),
                    leaves: vec![leaf.to_string()],
                }),
            }
        }
        groups
    }

    /// Keras 3 variable names from the archive's `config.json` (docs/formats/hdf5.md §7).
    fn keras3_names(&self) -> names::Named {
        let groups = self.vars_groups();
        match &self.config {
            None => names::name(None, &groups, &self.vars_names),
            Some(bytes) => match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(config) => names::name(Some(&config), &groups, &self.vars_names),
                Err(_) if groups.is_empty() => names::Named::default(),
                Err(e) => names::Named {
                    notes: vec![format!(
                        "the archive's config.json is not readable JSON ({e}): Keras 3 \
                         layers keep `layer/index` names"
                    )],
                    ..Default::default()
                },
            },
        }
    }

    /// All the bytes of a dataset of `size`-byte elements (fixed-length strings only:
    /// bounded by the stored size, checked at listing).
    fn fixed_bytes(&self, item: &Item, size: usize, ctx: &Ctx) -> Result<Vec<u8>> {
        match &item.stored {
            Stored::Empty => Ok(Vec::new()),
            Stored::Range(off, len) => self.file.read_range(*off, *len, "dataset data"),
            Stored::Compact(d) => Ok(d.clone()),
            Stored::Chunked(_) => {
                let mut s = self.chunk_stream(item, size, false, ctx)?;
                let mut out = Vec::new();
                crate::stream::read_to_end(&mut s, &mut out)?;
                Ok(out)
            }
        }
    }

    fn chunk_stream(&self, item: &Item, size: usize, swap: bool, ctx: &Ctx) -> Result<ChunkStream> {
        let Stored::Chunked(chunk) = &item.stored else {
            return Err(ctx.corrupt("not chunked"));
        };
        let chunks = item
            .dataset
            .iter_chunks()
            .map_err(|e| ctx.corrupt(format!("reading the chunk index: {e}")))?;
        ChunkStream::new(
            chunks,
            item.dataset.shape().to_vec(),
            chunk.clone(),
            size,
            swap,
            ctx.clone(),
        )
    }
}

impl Container for Hdf5Container {
    /// Keras layer names can coincide for distinct datasets (equal data included).
    fn identical_copies_are_one_variable(&self) -> bool {
        false
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn open(&self, index: usize, _verify: bool) -> Result<RawTensor<'_>> {
        let (Some(entry), Some(item)) = (self.entries.get(index), self.items.get(index)) else {
            return Err(Error::usage(format!("no entry {index}")));
        };
        let ctx = Ctx::file(&self.path).tensor(&entry.name);
        match &item.elem {
            Elem::Fixed { size, swap, .. } => {
                let (size, swap) = (*size, *swap);
                Ok(RawTensor::Fixed(match &item.stored {
                    Stored::Empty => Box::new(OwnedStream::new(Vec::new())),
                    Stored::Range(off, len) => Box::new(RangeStream::new(
                        self.file.clone(),
                        *off,
                        *len,
                        swap.then_some(size),
                    )?),
                    Stored::Compact(d) => {
                        let mut d = d.clone();
                        if swap {
                            data::swap_in_place(&mut d, size);
                        }
                        Box::new(OwnedStream::new(d))
                    }
                    Stored::Chunked(_) => Box::new(self.chunk_stream(item, size, swap, &ctx)?),
                }))
            }
            Elem::FixedString(size) => {
                let raw = self.fixed_bytes(item, *size, &ctx)?;
                let vals = raw
                    .chunks_exact((*size).max(1))
                    .map(|s| {
                        let end = s.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                        s[..end].to_vec()
                    })
                    .collect();
                Ok(RawTensor::Strings(Box::new(VecStrings::new(vals))))
            }
            Elem::VlenString => {
                let size = self.layout.ref_size();
                let open_ctx = ctx.clone();
                let open: vlen::OpenRefs<'_> = Box::new(move || {
                    Ok(match &item.stored {
                        Stored::Empty => Box::new(OwnedStream::new(Vec::new())),
                        Stored::Range(off, len) => {
                            Box::new(RangeStream::new(self.file.clone(), *off, *len, None)?)
                        }
                        Stored::Compact(d) => Box::new(OwnedStream::new(d.clone())),
                        Stored::Chunked(_) => {
                            Box::new(self.chunk_stream(item, size, false, &open_ctx)?)
                        }
                    })
                });
                let count = match item.stored {
                    Stored::Empty => 0,
                    _ => entry.num_elements(),
                };
                Ok(RawTensor::Strings(Box::new(vlen::VlenStrings::new(
                    open,
                    count,
                    self.layout,
                    self.file.clone(),
                    ctx,
                ))))
            }
            Elem::Unsupported(why) => Err(ctx.unsupported(format!("HDF5 {why} is not supported"))),
        }
    }

    fn input_files(&self) -> Vec<(PathBuf, u64)> {
        vec![(self.path.clone(), self.file.len())]
    }

    fn variable_names(&self) -> Result<Vec<Option<String>>> {
        let mut named = self.keras3_names().names;
        Ok(self
            .entries
            .iter()
            .zip(&self.items)
            .map(|(e, i)| named.remove(&e.name).or_else(|| i.keras_name.clone()))
            .collect())
    }

    fn variable_name_notes(&self) -> Vec<String> {
        self.keras3_names().notes
    }
}
