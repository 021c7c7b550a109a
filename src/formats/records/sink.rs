//! What the record loop feeds: a [`Sink`] per record kind, which collects statistics and
//! spills columns through [`Cols`], and the [`Layout`] it ends with.

use super::spill::SpillWriter;
use crate::source::Entry;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a record is: its file and its index there.
#[derive(Clone, Debug)]
pub struct Place {
    /// The shard.
    pub file: Arc<PathBuf>,
    /// Index of the record in that file (from 0).
    pub index: u64,
    /// For an uncompressed shard: where the record's data is in the input (a value
    /// found in the record can be referenced, not copied).
    pub origin: Option<Origin>,
}

/// Where a record of an uncompressed shard lies.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    /// The shard's index among the inputs.
    pub shard: u32,
    /// File offset of the record's data.
    pub offset: u64,
    /// The data's CRC32C, as verified (`None` with `--no-verify`).
    pub crc: Option<u32>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} of {}", self.index, self.file.display())
    }
}

/// Values at least this long that lie verbatim in an uncompressed input are spilled as
/// references (`spill/`), so their bytes are written once.
const REF_MIN: usize = 512;

/// Spill columns, or counting only (listing: nothing is spilled).
pub struct Cols {
    writer: Option<SpillWriter>,
    n: usize,
    /// The current record: its address range in memory and where it is in the input.
    record: Option<(std::ops::Range<usize>, Origin)>,
    /// (array name, the feature or tag it belongs to) where the two differ.
    features: Vec<(String, String)>,
}

impl Cols {
    /// Spilling through `writer`, or counting only.
    pub fn new(writer: Option<SpillWriter>) -> Self {
        Cols {
            writer,
            n: 0,
            record: None,
            features: Vec::new(),
        }
    }

    /// Records that the arrays `entries` (from the `first`-th on) hold feature (or tag)
    /// `feature`, so that `--select` / `--exclude` can name them by it.
    pub fn name_feature(&mut self, entries: &[(Entry, Source)], first: usize, feature: &str) {
        for (e, _) in entries.iter().skip(first) {
            if e.name != feature {
                self.features.push((e.name.clone(), feature.to_string()));
            }
        }
    }

    /// The arrays' feature names (see [`Cols::name_feature`]).
    pub fn take_features(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.features)
    }

    /// Starts record `rec` (at `at`): values that are slices of it may be referenced.
    pub fn begin_record(&mut self, rec: &[u8], at: &Place) {
        self.record = at.origin.map(|o| {
            let r = rec.as_ptr_range();
            (r.start as usize..r.end as usize, o)
        });
    }

    /// Appends a value to column `col`: a slice of the current record is referenced
    /// when it is long enough (see [`Cols::begin_record`]), other bytes are copied.
    pub fn push_value(&mut self, col: usize, v: &[u8]) -> Result<(), String> {
        if let (Some(w), Some((range, o))) = (&mut self.writer, &self.record) {
            let start = v.as_ptr() as usize;
            if v.len() >= REF_MIN && range.start <= start && start + v.len() <= range.end {
                let at = o.offset + (start - range.start) as u64;
                let record = o.crc.map(|c| (o.offset, range.len() as u64, c));
                return w
                    .push_ref(col, o.shard, record, at, v)
                    .map_err(|e| e.to_string());
            }
        }
        self.push(col, v)
    }

    /// A new column's id.
    pub fn add_column(&mut self) -> usize {
        self.n += 1;
        match &mut self.writer {
            Some(w) => w.add_column(),
            None => self.n - 1,
        }
    }

    /// Appends to column `col` (nothing when counting only).
    pub fn push(&mut self, col: usize, bytes: &[u8]) -> Result<(), String> {
        match &mut self.writer {
            Some(w) => w.push(col, bytes).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// The spill writer, if spilling.
    pub fn into_writer(self) -> Option<SpillWriter> {
        self.writer
    }
}

impl Source {
    /// A whole column, optionally after a leading `<i8` zero.
    pub fn column(col: usize, zero_prefix: bool) -> Self {
        Source::Column {
            col,
            start: 0,
            len: u64::MAX,
            zero_prefix,
        }
    }
}

/// Where an entry's bytes stream from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// `len` bytes of a spilled column from byte `start` (`u64::MAX`: to its end),
    /// after eight zero bytes when `zero_prefix` (a splits array's leading 0).
    Column {
        /// Column id.
        col: usize,
        /// First byte.
        start: u64,
        /// Bytes (`u64::MAX`: all).
        len: u64,
        /// Prepend one `<i8` zero.
        zero_prefix: bool,
    },
    /// `count` string elements: little-endian `u64` lengths in column `lens` from
    /// element `first`, their bytes in column `data` from byte `data_start`.
    Strings {
        /// Lengths column.
        lens: usize,
        /// Bytes column.
        data: usize,
        /// First element.
        first: u64,
        /// First byte in `data`.
        data_start: u64,
        /// Elements.
        count: u64,
        /// The longest element.
        max_len: u64,
    },
}

/// What a sink ends with: the record count, the entries (name order) with their
/// sources, and the columns.
pub struct Layout {
    /// Records seen.
    pub records: u64,
    /// Entries and where their bytes are.
    pub entries: Vec<(Entry, Source)>,
    /// The columns.
    pub cols: Cols,
}

/// Consumes records of one kind.
pub trait Sink {
    /// One record; errors say what is wrong (the caller adds file, record and offset).
    fn record(&mut self, rec: &[u8], at: &Place) -> Result<(), String>;
    /// After the last record.
    fn finish(self: Box<Self>) -> Result<Layout, String>;
}
