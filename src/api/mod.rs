//! The library API for Rust programs: open any input tf2npy converts, list its tensors,
//! and read each as an [`ndarray::ArrayD`] of the Rust type its NumPy dtype maps to,
//! or stream it in bounded chunks when it is larger than memory.
//!
//! This is the same pipeline as the command line: [`crate::formats::open`] detects and
//! reads the input, [`crate::plan::build`] names and selects the tensors (with the
//! CLI's `--short-names`, `--var-names`, `--sparse` and `--constants` choices), and
//! [`crate::plan::convert::to_numpy`] applies the one dtype table of [`crate::dtype`]
//! (bfloat16, float8 and float4 widened to `f32` exactly, sub-byte integers extended
//! to a byte). What [`Reader::read`] returns holds the same values, bit for bit, as
//! the `.npy` the CLI writes for that tensor; string tensors read as `Vec<u8>` per
//! element with their exact bytes (the `.npy` form pads them to `|S<n>`).
//!
//! Checksums are verified as the tensor is read (unless [`Options::verify`] turns them
//! off): [`Reader::read`] returns an array only after every check passed. The
//! visitors ([`Reader::for_each`], [`Reader::for_each_chunk`]) hand out data before
//! the checks at the tensor's end; when they return an error, discard what they gave.

mod element;

pub use crate::densify::SparseMode;
pub use element::{Element, ElementType};

use crate::densify::read_dense_shape;
use crate::dtype::DataType;
use crate::error::{Ctx, Error, Result};
use crate::formats::{self, OpenOptions};
use crate::plan::convert::{fixed_descr, to_numpy, ConvertOptions};
use crate::plan::sparse::group_name;
use crate::plan::{self, SelectOptions, Source};
use crate::source::{Container, Entry, RawTensor};
use crate::stream::{pump, with_prefetch, ByteStream, PREFETCH_CHUNK};
use element::Payload;
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;
use std::path::Path;

/// Payloads at least this long are read ahead on a second thread.
const PREFETCH_MIN_BYTES: u64 = PREFETCH_CHUNK as u64;
/// Elements [`Reader::read`] reserves before the data arrives: the buffer grows with
/// the bytes actually read, never by a size a file merely claims.
const RESERVE_MAX_ELEMENTS: usize = 1 << 20;

/// Opens `path` (a checkpoint prefix, folder, SavedModel, GraphDef or TensorProto file:
/// whatever the `tf2npy` command reads) with the default [`Options`].
pub fn open(path: impl AsRef<Path>) -> Result<Reader> {
    Options::new().open(path)
}

/// How to open an input: the library's counterparts of the CLI's naming, dtype and
/// reading flags. Defaults: checkpoint keys as names, widening on, checksums on,
/// sparse tensors densified, no SavedModel constants.
#[derive(Clone, Debug)]
pub struct Options {
    open: OpenOptions,
    short_names: bool,
    var_names: bool,
    convert: ConvertOptions,
    verify: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            open: OpenOptions::default(),
            short_names: false,
            var_names: false,
            convert: ConvertOptions::default(),
            verify: true,
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Options::default()
    }

    /// Names tensors by their TF2 object path (`--short-names`): `net/kernel` for
    /// `net/kernel/.ATTRIBUTES/VARIABLE_VALUE`.
    pub fn short_names(mut self, on: bool) -> Self {
        self.short_names = on;
        self
    }

    /// Names tensors by the variable names the object graph records (`--var-names`):
    /// `dense/kernel` for a Keras 3 `optimizer/_trainable_variables/0/...` key. Tensors
    /// without one keep their key (or short name). Two tensors under one name make
    /// [`Options::open`] fail with [`Error::Usage`].
    pub fn var_names(mut self, on: bool) -> Self {
        self.var_names = on;
        self
    }

    /// Keeps bfloat16 as `u16` and float8/float4 as `u8` bit patterns instead of
    /// widening them to `f32` (`--raw-bits`).
    pub fn raw_bits(mut self, on: bool) -> Self {
        self.convert.raw_bits = on;
        self
    }

    /// SavedModel: also list the `Const` tensors of the graph and its functions
    /// (`--constants`).
    pub fn constants(mut self, on: bool) -> Self {
        self.open.constants = on;
        self
    }

    /// Densify sparse tensors into one dense array (the default) or list their parts
    /// (`--sparse keep`).
    pub fn sparse(mut self, mode: SparseMode) -> Self {
        self.open.sparse = mode;
        self
    }

    /// Verify checksums while reading (the default); off only to recover data from a
    /// damaged checkpoint (`--no-verify`).
    pub fn verify(mut self, on: bool) -> Self {
        self.verify = on;
        self
    }

    /// Opens `path` with these options: detects its format, lists its tensors and
    /// names them. Reads no tensor data, apart from the object graph for
    /// [`Options::var_names`] and the `dense_shape` of sparse tensors stored as parts.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Reader> {
        let container = formats::open(path.as_ref(), &self.open)?;
        let plan = plan::build(container.as_ref(), &self.select(None))?;
        let mut tensors = Vec::with_capacity(plan.tensors.len());
        let mut sources = Vec::with_capacity(plan.tensors.len());
        for t in plan.tensors {
            tensors.push(self.info(container.as_ref(), t.name, &t.source)?);
            sources.push(t.source);
        }
        let mut by_name = HashMap::with_capacity(tensors.len() * 2);
        // Keys first, so that an output name equal to another tensor's key wins.
        for (i, t) in tensors.iter().enumerate() {
            by_name.insert(t.key.clone(), i);
        }
        for (i, t) in tensors.iter().enumerate() {
            by_name.insert(t.name.clone(), i);
        }
        Ok(Reader {
            container,
            opts: self.clone(),
            tensors,
            sources,
            by_name,
            warnings: plan.warnings,
        })
    }

    fn select(&self, tensor: Option<&str>) -> SelectOptions {
        SelectOptions {
            tensor: tensor.map(String::from),
            all: true,
            short_names: self.short_names,
            var_names: self.var_names,
            sparse: self.open.sparse,
            ..SelectOptions::default()
        }
    }

    /// Describes the planned tensor `name` read from `source`.
    fn info(&self, container: &dyn Container, name: String, source: &Source) -> Result<TensorInfo> {
        let entries = container.entries();
        let (entry, sparse) = match *source {
            Source::Entry(i) => (entries[i].clone(), false),
            Source::Sparse {
                indices,
                values,
                dense_shape,
            } => {
                let key = group_name(&entries[indices].name)
                    .unwrap_or(&entries[indices].name)
                    .to_string();
                let se = &entries[dense_shape];
                let ctx = Ctx::file(container.path()).tensor(&se.name);
                let raw = container
                    .open(dense_shape, self.verify)
                    .map_err(|e| e.in_tensor(&se.name))?;
                let rank = se.shape.first().copied().unwrap_or(0);
                let rank = usize::try_from(rank).map_err(|_| ctx.corrupt("rank too large"))?;
                let shape = read_dense_shape(raw, rank, &ctx)?;
                let v = &entries[values];
                let entry = Entry {
                    name: key,
                    dtype: v.dtype,
                    shape,
                    stored_bytes: source.stored_bytes(container),
                    location: Default::default(),
                    hidden: false,
                };
                (entry, true)
            }
        };
        let element = match fixed_descr(entry.dtype, self.convert) {
            Some((descr, _)) => ElementType::from_descr(descr),
            None if entry.dtype == DataType::String => Some(ElementType::Bytes),
            None => None,
        }
        .ok_or_else(|| {
            Error::usage(format!(
                "internal error: no element type for {} tensor `{}`",
                entry.dtype, entry.name
            ))
        })?;
        Ok(TensorInfo {
            name,
            key: entry.name,
            dtype: entry.dtype,
            shape: entry.shape,
            element,
            stored_bytes: entry.stored_bytes,
            hidden: entry.hidden,
            sparse,
        })
    }
}

/// One tensor an input holds, as [`Reader::tensors`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TensorInfo {
    /// The name under the chosen naming ([`Options::short_names`],
    /// [`Options::var_names`]): what the CLI would name the `.npz` member.
    pub name: String,
    /// The name in the container (checkpoint key, node name, file stem; for a sparse
    /// tensor stored as parts, their common prefix).
    pub key: String,
    /// The TensorFlow dtype.
    pub dtype: DataType,
    /// Dimensions, outermost first; empty for a scalar. For a sparse tensor, the
    /// dense shape.
    pub shape: Vec<u64>,
    /// What [`Reader::read`] returns: the element type after the dtype mapping.
    pub element: ElementType,
    /// Payload bytes the tensor occupies in the input.
    pub stored_bytes: u64,
    /// Left out of the CLI's conversions unless `--all` is given (e.g. the TF2
    /// `_CHECKPOINTABLE_OBJECT_GRAPH`).
    pub hidden: bool,
    /// A sparse tensor, read densified.
    pub sparse: bool,
}

impl TensorInfo {
    /// Number of elements (product of the shape; 1 for a scalar); `None` if it
    /// overflows `u64`.
    pub fn num_elements(&self) -> Option<u64> {
        crate::source::num_elements(&self.shape)
    }
}

/// An opened input: its tensors, named and typed, ready to read.
///
/// `Reader` is `Send + Sync`: several threads may read different tensors at once.
pub struct Reader {
    container: Box<dyn Container>,
    opts: Options,
    tensors: Vec<TensorInfo>,
    sources: Vec<Source>,
    by_name: HashMap<String, usize>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.path())
            .field("kind", &self.kind())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Reader {
    /// The input path as given to [`open`].
    pub fn path(&self) -> &Path {
        self.container.path()
    }

    /// What kind of input this is (`TensorFlow V2 checkpoint`, ...).
    pub fn kind(&self) -> &'static str {
        self.container.kind()
    }

    /// The tensors, sorted by name, hidden ones included (see [`TensorInfo::hidden`]).
    /// Tensors no array can hold (variant, resource) are left out, each with a
    /// [`Reader::warnings`] line.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Things to know about the input: tensors left out and why.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The tensor called `name` (its [`TensorInfo::name`] or [`TensorInfo::key`]).
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The underlying container, for what this API does not cover (raw stored bytes).
    pub fn container(&self) -> &dyn Container {
        self.container.as_ref()
    }

    /// Reads tensor `name` whole as an array of `T`, which must be the Rust type of
    /// its [`TensorInfo::element`] (e.g. `f32` for float32 and, widened, for
    /// bfloat16). The array is returned only after every checksum of the tensor
    /// passed.
    ///
    /// `name` may be a listed name or key, or anything the CLI's `--tensor` accepts
    /// (e.g. one part of a sparse tensor). Errors: [`Error::Usage`] for an unknown name
    /// (with suggestions) or the wrong `T`; [`Error::Corrupt`] / [`Error::Unsupported`]
    /// / [`Error::Io`] naming the file and tensor for bad input.
    pub fn read<T: Element>(&self, name: &str) -> Result<ArrayD<T>> {
        let (info, source) = self.resolve::<T>(name)?;
        let n = info.num_elements().and_then(|n| usize::try_from(n).ok());
        let dims: Option<Vec<usize>> = info
            .shape
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect();
        let (Some(n), Some(dims)) = (n, dims) else {
            return Err(self.ctx(&info).unsupported(format!(
                "shape {:?} has more elements than memory can address",
                info.shape
            )));
        };
        let mut out: Vec<T> = Vec::with_capacity(n.min(RESERVE_MAX_ELEMENTS));
        self.decode::<T>(&info, &source, &mut |c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        if out.len() != n {
            return Err(self.ctx(&info).corrupt(format!(
                "read {} elements, the shape {:?} holds {n}",
                out.len(),
                info.shape
            )));
        }
        ArrayD::from_shape_vec(IxDyn(&dims), out).map_err(|e| {
            self.ctx(&info)
                .unsupported(format!("shape {:?}: {e}", info.shape))
        })
    }

    /// Streams tensor `name` as slices of `T` (the Rust type of its
    /// [`TensorInfo::element`]), in row-major order, each slice at most 65,536
    /// elements: for tensors larger than memory. Memory stays bounded whatever the
    /// tensor size. Returns the number of elements.
    ///
    /// `visit` may stop the stream with an error of its own type `E` (any type that
    /// a tf2npy [`Error`] converts into, e.g. `anyhow::Error`), returned as is. Data is
    /// handed out before the checksums at the tensor's end are checked: if this
    /// returns an error, discard what `visit` received.
    pub fn for_each<T, E, F>(&self, name: &str, mut visit: F) -> Result<u64, E>
    where
        T: Element,
        E: From<Error>,
        F: FnMut(&[T]) -> Result<(), E>,
    {
        let (info, source) = self.resolve::<T>(name)?;
        let mut total = 0u64;
        let mut stopped: Option<E> = None;
        let r = self.decode::<T>(&info, &source, &mut |c| {
            total += c.len() as u64;
            visit(c).map_err(|e| {
                stopped = Some(e);
                Error::usage("stopped by the visitor")
            })
        });
        match (r, stopped) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(e.into()),
            (Ok(()), None) => Ok(total),
        }
    }

    /// Streams tensor `name` as the bytes of its `.npy` payload (little-endian
    /// elements after the dtype mapping; strings as NUL-padded `|S<n>` records), in
    /// chunks of at most 1 MiB: for copying a tensor larger than memory into a buffer
    /// of your own. Returns the `.npy` descr (e.g. `<f4`) and the byte count. Same
    /// error and checksum rules as [`Reader::for_each`].
    pub fn for_each_chunk<E, F>(&self, name: &str, mut visit: F) -> Result<(String, u64), E>
    where
        E: From<Error>,
        F: FnMut(&[u8]) -> Result<(), E>,
    {
        let (info, source) = self.lookup(name)?;
        let mut stopped: Option<E> = None;
        let r = self
            .open_numpy(&info, &source)
            .and_then(|(descr, data, len)| {
                let n = self.pull(data, len, &mut |b| {
                    visit(b).map_err(|e| {
                        stopped = Some(e);
                        Error::usage("stopped by the visitor")
                    })
                })?;
                Ok((descr, n))
            });
        match (r, stopped) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(e.in_tensor(&info.key).into()),
            (Ok(v), None) => Ok(v),
        }
    }

    /// The file-and-tensor context for errors about `info`.
    fn ctx(&self, info: &TensorInfo) -> Ctx {
        Ctx::file(self.path()).tensor(&info.key)
    }

    /// The tensor `name` and its source: a listed tensor, or whatever the CLI's
    /// `--tensor NAME` would write (with its errors: suggestions for an unknown name,
    /// `Unsupported` for a variant tensor).
    fn lookup(&self, name: &str) -> Result<(TensorInfo, Source)> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok((self.tensors[i].clone(), self.sources[i].clone()));
        }
        let c = self.container.as_ref();
        let mut plan = plan::build(c, &self.opts.select(Some(name)))?;
        match plan.tensors.len() {
            1 => {
                let t = plan.tensors.remove(0);
                Ok((self.opts.info(c, t.name, &t.source)?, t.source))
            }
            _ => Err(Error::usage(format!(
                "`{name}` names {} tensors of {}; use one of their names: {}",
                plan.tensors.len(),
                self.path().display(),
                plan.tensors
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// [`Reader::lookup`], checking that `T` reads the tensor.
    fn resolve<T: Element>(&self, name: &str) -> Result<(TensorInfo, Source)> {
        let (info, source) = self.lookup(name)?;
        if info.element != T::TYPE {
            return Err(Error::usage(format!(
                "{}: tensor `{}` is {} and reads as {}{}, not as {}",
                self.path().display(),
                info.key,
                info.dtype,
                info.element,
                if info.element != element_without_raw_bits(&info) {
                    " (raw bits)"
                } else {
                    ""
                },
                T::TYPE
            )));
        }
        Ok((info, source))
    }

    /// Opens `source` through the dtype table: the `.npy` descr, payload and length.
    fn open_numpy(
        &self,
        info: &TensorInfo,
        source: &Source,
    ) -> Result<(String, Box<dyn ByteStream + '_>, u64)> {
        let (entry, raw) = source.open(self.container.as_ref(), self.opts.verify)?;
        let ctx = Ctx::file(self.path());
        let arr =
            to_numpy(&entry, raw, self.opts.convert, &ctx).map_err(|e| e.in_tensor(&info.key))?;
        let len = arr.header.byte_len().unwrap_or(u64::MAX);
        Ok((arr.header.descr, arr.data, len))
    }

    /// Passes every byte of `data` (`len` bytes) to `sink`, reading ahead on a second
    /// thread when the payload is large.
    fn pull(
        &self,
        data: Box<dyn ByteStream + '_>,
        len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        const CHUNK: usize = 1 << 20;
        if len >= PREFETCH_MIN_BYTES {
            with_prefetch(data, |s| pump(s, CHUNK, sink))
        } else {
            let mut data = data;
            pump(&mut *data, CHUNK, sink)
        }
    }

    /// Decodes the tensor into slices of `T`, handed to `sink`.
    fn decode<T: Element>(
        &self,
        info: &TensorInfo,
        source: &Source,
        sink: &mut dyn FnMut(&[T]) -> Result<()>,
    ) -> Result<()> {
        let r = if T::TYPE == ElementType::Bytes {
            let (_, raw) = source.open(self.container.as_ref(), self.opts.verify)?;
            match raw {
                RawTensor::Strings(s) => T::decode(Payload::Strings(s), sink),
                RawTensor::Fixed(_) => Err(Error::usage(format!(
                    "internal error: string tensor `{}` read as fixed-size data",
                    info.key
                ))),
            }
        } else {
            let (_, data, len) = self.open_numpy(info, source)?;
            if len >= PREFETCH_MIN_BYTES {
                with_prefetch(data, |s| {
                    // `ChannelStream` is not `'static`; hand the decoder a box of the
                    // borrowed stream.
                    let b: Box<dyn ByteStream + '_> = Box::new(Borrowed(s));
                    T::decode(Payload::Fixed(b), sink)
                })
            } else {
                T::decode(Payload::Fixed(data), sink)
            }
        };
        r.map_err(|e| e.in_tensor(&info.key))
    }
}

/// The element type `info` would have with widening on (to say "raw bits" in errors).
fn element_without_raw_bits(info: &TensorInfo) -> ElementType {
    fixed_descr(info.dtype, ConvertOptions::default())
        .and_then(|(d, _)| ElementType::from_descr(d))
        .unwrap_or(info.element)
}

/// A borrowed stream as a [`ByteStream`].
struct Borrowed<'s>(&'s mut dyn ByteStream);

impl ByteStream for Borrowed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.0.read(buf)
    }

    fn lends(&self) -> bool {
        self.0.lends()
    }

    fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        self.0.read_borrowed(max)
    }
}
