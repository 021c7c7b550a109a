//! `.safetensors` output, byte-identical to `safetensors.numpy.save_file` (safetensors
//! 0.8) of the same arrays: an 8-byte little-endian header length, a compact JSON header
//! padded with spaces to a multiple of 8, then every tensor's bytes back to back, in the
//! reference writer's order (safetensors dtype descending, then name). See
//! `docs/formats/safetensors.md` for the rules and their sources.
//!
//! The reference writer holds every tensor in memory; this one is told every tensor's
//! name, safetensors dtype and shape up front ([`Layout`]), writes the header first and
//! then streams each payload as it is added, in [`Layout::names`] order. Like every
//! writer it knows nothing of TensorFlow: the caller maps dtypes (`DataType::safetensors`).

use super::atomic::AtomicFile;
use super::{copy_exact, ArrayHeader, ArrayWriter, CHUNK_BYTES};
use crate::error::{Error, Result};
use crate::stream::ByteStream;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// safetensors' `Dtype` enum in declaration order (`safetensors/src/tensor.rs`, 0.8),
/// which its derived `Ord` follows and its writer sorts by (descending).
pub const DTYPE_ORDER: &[&str] = &[
    "BOOL",
    "F4",
    "F6_E2M3",
    "F6_E3M2",
    "U8",
    "I8",
    "F8_E5M2",
    "F8_E4M3",
    "F8_E8M0",
    "F8_E4M3FNUZ",
    "F8_E5M2FNUZ",
    "I16",
    "U16",
    "F16",
    "BF16",
    "I32",
    "U32",
    "F32",
    "C64",
    "F64",
    "I64",
    "U64",
];

/// `MAX_HEADER_SIZE` in safetensors: readers refuse a longer header.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The key safetensors reserves for the metadata map.
const METADATA_KEY: &str = "__metadata__";

/// One tensor of a safetensors file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Its name (the header key).
    pub name: String,
    /// The safetensors dtype (`F32`, `BF16`, ...), one of [`DTYPE_ORDER`].
    pub dtype: &'static str,
    /// Its shape, outermost first.
    pub shape: Vec<u64>,
    /// Its payload length in bytes.
    pub len: u64,
}

/// Every tensor of a file in file order, with the header bytes that describe them.
#[derive(Clone, Debug)]
pub struct Layout {
    tensors: Vec<TensorSpec>,
    /// The 8-byte length followed by the padded JSON.
    header: Vec<u8>,
}

fn dtype_rank(dtype: &str) -> Option<usize> {
    DTYPE_ORDER.iter().position(|d| *d == dtype)
}

impl Layout {
    /// Orders `tensors` as safetensors' writer does and builds the header. `path` names
    /// the output for errors: duplicate names, the reserved `__metadata__` name, a
    /// header over [`MAX_HEADER_BYTES`], a total size that overflows.
    pub fn new(mut tensors: Vec<TensorSpec>, path: &Path) -> Result<Self> {
        let out = path.display();
        let mut seen = HashSet::new();
        for t in &tensors {
            if dtype_rank(t.dtype).is_none() {
                return Err(Error::usage(format!(
                    "internal error: `{}` is not a safetensors dtype (tensor `{}`)",
                    t.dtype, t.name
                )));
            }
            if t.name == METADATA_KEY {
                return Err(Error::usage(format!(
                    "a tensor cannot be called `{METADATA_KEY}` in {out}: safetensors \
                     reserves that key for metadata (rename it or use --exclude)"
                )));
            }
            if !seen.insert(t.name.as_str()) {
                return Err(Error::usage(format!(
                    "two tensors would be stored as `{}` in {out}",
                    t.name
                )));
            }
        }
        tensors.sort_by(|a, b| {
            dtype_rank(b.dtype)
                .cmp(&dtype_rank(a.dtype))
                .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
        });
        let mut json = String::from("{");
        let mut offset: u64 = 0;
        for (i, t) in tensors.iter().enumerate() {
            let end = offset
                .checked_add(t.len)
                .ok_or_else(|| Error::usage(format!("{out}: the tensors' total size overflows")))?;
            if i > 0 {
                json.push(',');
            }
            let key = serde_json::to_string(&t.name)
                .map_err(|e| Error::usage(format!("internal error: {e}")))?;
            let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
            json.push_str(&format!(
                "{key}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
                t.dtype,
                shape.join(",")
            ));
            offset = end;
        }
        json.push('}');
        let padded = json.len().next_multiple_of(8);
        if padded as u64 > MAX_HEADER_BYTES {
            return Err(Error::usage(format!(
                "{out}: the safetensors header would be {padded} bytes, more than the \
                 {MAX_HEADER_BYTES} readers accept; write fewer tensors (--select) or use .npz"
            )));
        }
        let mut header = Vec::with_capacity(8 + padded);
        header.extend_from_slice(&(padded as u64).to_le_bytes());
        header.extend_from_slice(json.as_bytes());
        header.resize(8 + padded, b' ');
        Ok(Layout { tensors, header })
    }

    /// Tensor names in file order: the order [`SafetensorsWriter`] must be given them.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }

    /// The tensors in file order.
    pub fn tensors(&self) -> &[TensorSpec] {
        &self.tensors
    }

    /// The header bytes: the 8-byte length, then the padded JSON.
    pub fn header(&self) -> &[u8] {
        &self.header
    }
}

/// Writes a `.safetensors` file: the header at creation, then each payload in layout
/// order.
pub struct SafetensorsWriter {
    path: PathBuf,
    file: AtomicFile,
    out: BufWriter<File>,
    layout: Layout,
    next: usize,
    broken: bool,
}

impl SafetensorsWriter {
    /// Starts `path` (a temporary sibling until `finish`) with `layout`'s header. An
    /// identical existing file is left untouched unless `force`.
    pub fn create(path: &Path, layout: Layout, force: bool) -> Result<Self> {
        let file = AtomicFile::create(path, force)?;
        let mut out = BufWriter::with_capacity(CHUNK_BYTES, file.file()?);
        out.write_all(layout.header())
            .map_err(|e| Error::io(path, e))?;
        Ok(SafetensorsWriter {
            path: path.to_path_buf(),
            file,
            out,
            layout,
            next: 0,
            broken: false,
        })
    }
}

impl ArrayWriter for SafetensorsWriter {
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()> {
        let path = self.path.display();
        if self.broken {
            return Err(Error::usage(format!(
                "internal error: {path} cannot take `{name}` after an earlier failure"
            )));
        }
        let Some(spec) = self.layout.tensors.get(self.next) else {
            return Err(Error::usage(format!(
                "internal error: `{name}` is not in the layout of {path}"
            )));
        };
        let len = header.byte_len();
        if spec.name != name || len != Some(spec.len) || header.shape != spec.shape {
            return Err(Error::usage(format!(
                "internal error: {path} expected `{}` ({:?}, {} bytes) next, got `{name}` \
                 ({:?}, {len:?} bytes)",
                spec.name, spec.shape, spec.len, header.shape
            )));
        }
        self.broken = true;
        copy_exact(data, &mut self.out, spec.len, name, &self.path)?;
        self.broken = false;
        self.next += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let this = *self;
        if this.broken || this.next != this.layout.tensors.len() {
            return Err(Error::usage(format!(
                "internal error: {} got {} of its {} tensors",
                this.path.display(),
                this.next,
                this.layout.tensors.len()
            )));
        }
        let path = this.path;
        this.out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        this.file.commit().map(|_| ())
    }
}

/// A tensor as an existing `.safetensors` file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The safetensors dtype.
    pub dtype: String,
    /// The shape.
    pub shape: Vec<u64>,
    /// Absolute offset of the first payload byte in the file.
    pub offset: u64,
    /// Payload length.
    pub len: u64,
}

/// An existing `.safetensors` file's header, for `--check`.
pub struct Existing {
    /// Its header bytes (length and padded JSON).
    pub header: Vec<u8>,
    /// Its tensors by name.
    pub tensors: HashMap<String, Stored>,
    file: File,
}

impl Existing {
    /// Reads the header of the safetensors file `f`, which is `file_len` bytes long.
    /// `Err` says why it is not a readable safetensors file.
    pub fn read(mut file: File, file_len: u64) -> std::result::Result<Self, String> {
        let mut n = [0u8; 8];
        file.read_exact(&mut n)
            .map_err(|e| format!("no header length: {e}"))?;
        let n = u64::from_le_bytes(n);
        if n > MAX_HEADER_BYTES || n > file_len - 8 {
            return Err(format!("header length {n} is impossible"));
        }
        let mut header = vec![0u8; 8 + n as usize];
        header[..8].copy_from_slice(&n.to_le_bytes());
        file.read_exact(&mut header[8..])
            .map_err(|e| format!("short header: {e}"))?;
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header[8..]).map_err(|e| format!("bad header JSON: {e}"))?;
        let base = 8 + n;
        let mut tensors = HashMap::new();
        for (name, info) in json {
            if name == METADATA_KEY {
                continue;
            }
            let dtype = info["dtype"]
                .as_str()
                .ok_or(format!("`{name}`: no dtype"))?;
            let shape: Option<Vec<u64>> = info["shape"]
                .as_array()
                .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
            let offsets: Option<Vec<u64>> = info["data_offsets"]
                .as_array()
                .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
            let (Some(shape), Some(&[begin, end])) = (shape, offsets.as_deref()) else {
                return Err(format!("`{name}`: bad shape or data_offsets"));
            };
            if end < begin || base.checked_add(end).is_none_or(|e| e > file_len) {
                return Err(format!("`{name}`: data_offsets past the end of the file"));
            }
            let stored = Stored {
                dtype: dtype.to_string(),
                shape,
                offset: base + begin,
                len: end - begin,
            };
            tensors.insert(name, stored);
        }
        Ok(Existing {
            header,
            tensors,
            file,
        })
    }

    /// Whether the stored payload of `stored` equals what `data` yields (all of which
    /// is read, so damaged input is still reported). `path` names the file for errors.
    pub fn same_values(
        &mut self,
        stored: &Stored,
        data: &mut dyn ByteStream,
        path: &Path,
    ) -> Result<bool> {
        self.file
            .seek(SeekFrom::Start(stored.offset))
            .map_err(|e| Error::io(path, e))?;
        let mut old = BufReader::new((&self.file).take(stored.len));
        super::check::same_bytes(data, &mut old, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, dtype: &'static str, shape: &[u64], item: u64) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            len: shape.iter().product::<u64>() * item,
        }
    }

    #[test]
    fn orders_by_dtype_descending_then_name_and_pads_with_spaces() {
        let l = Layout::new(
            vec![
                spec("b", "F32", &[3], 4),
                spec("a", "F32", &[2], 4),
                spec("e", "BOOL", &[0], 1),
                spec("c", "BF16", &[3], 2),
                spec("cc", "C64", &[1], 8),
                spec("z\u{e9}\n\u{1}\"", "I64", &[1, 2], 8),
            ],
            Path::new("o"),
        )
        .unwrap();
        let names: Vec<&str> = l.names().collect();
        assert_eq!(names, ["z\u{e9}\n\u{1}\"", "cc", "a", "b", "c", "e"]);
        let h = l.header();
        let n = u64::from_le_bytes(h[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        assert_eq!(h.len(), 8 + n);
        let text = std::str::from_utf8(&h[8..]).unwrap();
        assert!(text.starts_with(
            "{\"z\u{e9}\\n\\u0001\\\"\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[0,16]},"
        ));
        assert!(text
            .trim_end()
            .ends_with("\"e\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[50,50]}}"));
        assert!(
            text.trim_end().len() > n - 8
                && text[text.trim_end().len()..].bytes().all(|b| b == b' ')
        );
    }

    #[test]
    fn refuses_reserved_and_duplicate_names() {
        let e = Layout::new(vec![spec("__metadata__", "F32", &[1], 4)], Path::new("o"));
        assert!(e.unwrap_err().to_string().contains("reserves"));
        let e = Layout::new(
            vec![spec("a", "F32", &[1], 4), spec("a", "I8", &[1], 1)],
            Path::new("o"),
        );
        assert!(e.unwrap_err().to_string().contains("two tensors"));
    }
}
