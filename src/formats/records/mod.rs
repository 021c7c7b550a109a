//! TFRecord files (docs/formats/tfrecord.md): one file, a folder of shards or a glob,
//! optionally compressed, of `tf.train.Example` or serialized `TensorProto` records.
//!
//! [`try_open`] recognises them by content; the records are read once when the input is
//! opened (statistics for the listing and the layout, and the column spill when
//! converting), then each array streams from the spill.

pub mod columns;
pub mod compression;
pub mod container;
pub mod dataset;
pub mod events;
pub mod example;
pub mod framing;
pub mod inputs;
pub mod sequence;
pub mod sink;
pub mod spill;
pub mod tensors;
pub mod wire;

pub use compression::Compression;
pub use container::RecordsContainer;

use crate::error::Result;
use crate::source::Container;
use std::path::{Path, PathBuf};

/// What the records are (`--records`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// `tf.train.Example`.
    Example,
    /// `tf.train.SequenceExample`.
    Sequence,
    /// `TensorProto` (`tf.io.serialize_tensor`).
    Tensor,
    /// TensorBoard `Event`.
    Event,
}

impl RecordKind {
    /// Parses a `--records` value.
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "example" => Some(RecordKind::Example),
            "sequence" => Some(RecordKind::Sequence),
            "tensor" => Some(RecordKind::Tensor),
            "event" => Some(RecordKind::Event),
            _ => None,
        }
    }
}

/// How TFRecord inputs are read (`--compression`, `--records`, `--ragged`, `--skip`,
/// `--take`) and where columns spill.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordOptions {
    /// Compression of every file, instead of detecting it.
    pub compression: Option<Compression>,
    /// Record kind, instead of detecting it.
    pub kind: Option<RecordKind>,
    /// Every `Example` feature in the ragged layout.
    pub ragged: bool,
    /// `bytes_list` features as NumPy `|S<n>` arrays (`--bytes-as-strings`).
    pub strings: bool,
    /// Records to skip first.
    pub skip: u64,
    /// Records to convert at most.
    pub take: Option<u64>,
    /// Skip the data CRCs (`--no-verify`).
    pub no_verify: bool,
    /// Folder for the column spill (beside the output); `None`: nothing is spilled
    /// when the input is opened (a listing) and the first array read spills to the
    /// system temporary folder.
    pub spill_dir: Option<PathBuf>,
}

/// Opens `path` as TFRecords if it is a TFRecord file, a folder of them, a glob matching
/// them or a `tf.data.Dataset.save` folder; `Ok(None)` if it is none of these.
pub fn try_open(path: &Path, opts: &RecordOptions) -> Result<Option<Box<dyn Container>>> {
    if path.is_dir() && dataset::is_saved_dataset(path) {
        let (components, shards) = dataset::resolve(path, opts)?;
        return Ok(Some(Box::new(RecordsContainer::open_dataset(
            path, shards, opts, components,
        )?)));
    }
    if path.is_dir() {
        let logs = inputs::event_files(path)?;
        if !logs.is_empty() {
            let opts = RecordOptions {
                kind: Some(RecordKind::Event),
                ..opts.clone()
            };
            let shards = inputs::shards(logs, &opts)?;
            return Ok(Some(Box::new(RecordsContainer::open(path, shards, &opts)?)));
        }
    }
    let Some(files) = inputs::resolve(path, opts)? else {
        return Ok(None);
    };
    Ok(Some(Box::new(RecordsContainer::open(path, files, opts)?)))
}
