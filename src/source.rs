//! What a reader hands the plan: a list of [`Entry`]s and, for each, a streamed
//! [`RawTensor`] in TensorFlow's storage layout (little-endian elements, row-major).
//!
//! Readers know nothing of NumPy: conversion to `.npy` payloads happens in `plan`.

use crate::dtype::DataType;
use crate::error::Result;
use crate::stream::ByteStream;

/// One tensor a container holds, as listed by `--list`.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The tensor's name in the container (checkpoint key, node name, file stem).
    pub name: String,
    /// TensorFlow element type.
    pub dtype: DataType,
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<u64>,
    /// Bytes the tensor occupies in the input (payload only).
    pub stored_bytes: u64,
    /// Where the bytes live, for humans: `shard 0 @ 1234`, `3 slices in 2 shards`, ...
    /// (any `String` converts: `location: text.into()`).
    pub location: Location,
    /// Left out of whole-container conversions unless asked for (`--all`); e.g. the TF2
    /// `_CHECKPOINTABLE_OBJECT_GRAPH`.
    pub hidden: bool,
}

/// Where an entry's bytes live, for humans (`--list`). The common forms are kept as
/// numbers and become text only when shown, so listing a huge index costs no string
/// per entry for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Location {
    /// Nothing to say (shown empty).
    #[default]
    None,
    /// Any text, e.g. `sparse, 12 values`.
    Text(Box<str>),
    /// `shard SHARD @ OFFSET`: one range of a checkpoint's data file.
    Shard {
        /// The data file's shard number.
        shard: i32,
        /// The byte offset in it.
        offset: u64,
    },
    /// `N slices in M UNITs`, e.g. `3 slices in 2 shards`.
    Slices {
        /// Number of slices.
        slices: u32,
        /// Number of files they are in.
        files: u32,
        /// What those files are called.
        unit: FileUnit,
    },
}

/// What [`Location::Slices`] calls the files slices are in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileUnit {
    /// `shard`: a V2 checkpoint's data files.
    Shard,
    /// `file`: a V1 checkpoint's files.
    File,
}

impl From<String> for Location {
    fn from(s: String) -> Self {
        Location::Text(s.into_boxed_str())
    }
}

impl From<&str> for Location {
    fn from(s: &str) -> Self {
        Location::Text(s.into())
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: u32| if n == 1 { "" } else { "s" };
        match self {
            Location::None => Ok(()),
            Location::Text(s) => f.write_str(s),
            Location::Shard { shard, offset } => write!(f, "shard {shard} @ {offset}"),
            Location::Slices {
                slices,
                files,
                unit,
            } => {
                let unit = match unit {
                    FileUnit::Shard => "shard",
                    FileUnit::File => "file",
                };
                write!(
                    f,
                    "{slices} slice{} in {files} {unit}{}",
                    plural(*slices),
                    plural(*files)
                )
            }
        }
    }
}

/// Compares text written to it with a string, without allocating.
struct Matches<'a>(&'a str);

impl std::fmt::Write for Matches<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 = self.0.strip_prefix(s).ok_or(std::fmt::Error)?;
        Ok(())
    }
}

impl PartialEq<str> for Location {
    fn eq(&self, other: &str) -> bool {
        let mut m = Matches(other);
        std::fmt::Write::write_fmt(&mut m, format_args!("{self}")).is_ok() && m.0.is_empty()
    }
}

impl PartialEq<&str> for Location {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Entry {
    /// Number of elements (product of the shape; 1 for a scalar). Readers validate
    /// shapes when they list entries, so this cannot overflow for a listed entry.
    pub fn num_elements(&self) -> u64 {
        num_elements(&self.shape).unwrap_or(u64::MAX)
    }
}

/// The element count of `shape`, or `None` if it overflows `u64`.
pub fn num_elements(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// A tensor's data, streamed in TensorFlow's storage layout.
pub enum RawTensor<'a> {
    /// Fixed-size elements: `num_elements * storage_bytes` bytes, little-endian, row-major.
    /// Checksums are verified before the stream's final `Ok(0)`.
    Fixed(Box<dyn ByteStream + 'a>),
    /// Variable-length byte strings, one per element, row-major.
    Strings(Box<dyn StringRead + 'a>),
}

/// A stream of a string tensor's elements.
pub trait StringRead: Send {
    /// The longest element in bytes. May take a pass over the lengths; must not consume
    /// elements (a later [`StringRead::next_into`] still starts at the first element).
    fn max_len(&mut self) -> Result<u64>;
    /// Replaces `out` with the next element; `Ok(false)` after the last one, once every
    /// integrity check has passed.
    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool>;
}

/// A [`StringRead`] over elements already in memory (the counterpart of
/// [`crate::stream::SliceStream`] for string tensors).
pub struct VecStrings {
    vals: Vec<Vec<u8>>,
    next: usize,
}

impl VecStrings {
    /// Streams `vals`, one element each.
    pub fn new(vals: Vec<Vec<u8>>) -> Self {
        VecStrings { vals, next: 0 }
    }
}

impl StringRead for VecStrings {
    fn max_len(&mut self) -> Result<u64> {
        Ok(self.vals.iter().map(|v| v.len() as u64).max().unwrap_or(0))
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        let Some(v) = self.vals.get(self.next) else {
            return Ok(false);
        };
        out.extend_from_slice(v);
        self.next += 1;
        Ok(true)
    }
}

/// A container: a checkpoint, SavedModel, GraphDef or TensorProto file, opened and
/// validated, listing its tensors.
pub trait Container: Send + Sync {
    /// The input path as the user gave it (a file, prefix or folder).
    fn path(&self) -> &std::path::Path;
    /// What kind of container this is, for `--list` (e.g. `TensorFlow V2 checkpoint`).
    fn kind(&self) -> &'static str;
    /// The tensors, in name order.
    fn entries(&self) -> &[Entry];
    /// Opens entry `index` (an index into [`Container::entries`]) for streaming.
    /// `verify` turns checksum verification on (the default) or off (`--no-verify`).
    fn open(&self, index: usize, verify: bool) -> Result<RawTensor<'_>>;
    /// The files this container was read from, with their sizes in bytes.
    fn input_files(&self) -> Vec<(std::path::PathBuf, u64)>;
    /// The variable name TensorFlow recorded for each entry (by index) apart from the
    /// entry's own name, e.g. a TF2 checkpoint's object-graph `full_name`; `None` where
    /// there is none. Reads the input, so it is called only when asked for
    /// (`--var-names`). The default records none.
    fn variable_names(&self) -> Result<Vec<Option<String>>> {
        Ok(vec![None; self.entries().len()])
    }
    /// Warnings about [`Container::variable_names`]: entries that keep their own name
    /// although the container holds variable names for others, and why (one per group
    /// of entries, e.g. per Keras layer). The default has none.
    fn variable_name_notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether two entries with one [`Container::variable_names`] name and byte-identical
    /// data are copies of one variable, written once (a Keras 3 `model.export()` stores
    /// each variable twice). True where names come from a TF2 object graph; a container
    /// whose recorded names can coincide for distinct variables (HDF5 layer names, where
    /// two zero-initialised biases are equal) says false, so the clash stays an error.
    fn identical_copies_are_one_variable(&self) -> bool {
        true
    }
    /// The name of what entry `index` is one array of, where that differs from the
    /// entry's name: a TFRecord feature (`image` for `image/bytes`,
    /// `image/value_splits`) or TensorBoard tag. `--select` / `--exclude` match it too.
    /// The default: none.
    fn feature_name(&self, index: usize) -> Option<&str> {
        let _ = index;
        None
    }
}

/// Test helpers: read a whole entry of any container by name.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Container, RawTensor};
    use crate::error::Result;
    use crate::stream::read_to_end;

    fn open<'a>(c: &'a dyn Container, name: &str, verify: bool) -> Result<RawTensor<'a>> {
        let i = c.entries().iter().position(|e| e.name == name);
        c.open(i.unwrap_or_else(|| panic!("no entry {name}")), verify)
    }

    /// The stored bytes of fixed-size entry `name`.
    pub fn read_fixed(c: &dyn Container, name: &str, verify: bool) -> Result<Vec<u8>> {
        match open(c, name, verify)? {
            RawTensor::Fixed(mut s) => {
                let mut out = Vec::new();
                read_to_end(&mut s, &mut out)?;
                Ok(out)
            }
            RawTensor::Strings(_) => panic!("{name} is a string tensor"),
        }
    }

    /// The longest element and all elements of string entry `name`.
    pub fn read_strings(
        c: &dyn Container,
        name: &str,
        verify: bool,
    ) -> Result<(u64, Vec<Vec<u8>>)> {
        match open(c, name, verify)? {
            RawTensor::Strings(mut s) => {
                let max = s.max_len()?;
                let mut out = Vec::new();
                let mut e = Vec::new();
                while s.next_into(&mut e)? {
                    out.push(e.clone());
                }
                Ok((max, out))
            }
            RawTensor::Fixed(_) => panic!("{name} is not a string tensor"),
        }
    }
}
