//! The columns of `Example` records (docs/formats/tfrecord.md §5): per-feature statistics
//! for the listing and the layout decision, and the spilled values, value ends and row
//! ends from which the arrays stream.

use super::example::{
    bytes_values, float_values, int64_values, packed_floats, parse_example, FeatureRef, Kind,
};
use super::sink::{Cols, Layout, Place, Sink, Source};
use crate::dtype::DataType;
use crate::source::Entry;
use std::collections::HashMap;

/// One feature's statistics and spill columns.
struct Feature {
    name: String,
    kind: Option<(Kind, Place)>,
    /// Records holding the key (even with an empty list).
    present: u64,
    min_present: u64,
    max_present: u64,
    values: u64,
    bytes: u64,
    /// The longest bytes value.
    max_len: u64,
    /// Local record number (from 0) that last held the key.
    last: Option<u64>,
    rows_written: u64,
    values_col: usize,
    value_ends_col: usize,
    row_ends_col: usize,
}

/// Collects the features of `Example` records.
pub struct ExampleSink {
    feats: Vec<Feature>,
    index: HashMap<Box<[u8]>, usize>,
    cols: Cols,
    n: u64,
    ragged: bool,
    /// `--bytes-as-strings`: bytes features as `|S<n>` arrays; their value-ends column
    /// then holds each value's length.
    strings: bool,
    scratch: Vec<u8>,
    refs_cap: usize,
    prefix: &'static str,
}

impl ExampleSink {
    /// A sink spilling to `cols`; `ragged` is `--ragged`.
    pub fn new(cols: Cols, ragged: bool) -> Self {
        Self::with_prefix(cols, ragged, "")
    }

    /// A sink naming its arrays `prefix` + feature key (`context/` for a
    /// `SequenceExample`'s context).
    pub fn with_prefix(cols: Cols, ragged: bool, prefix: &'static str) -> Self {
        ExampleSink {
            prefix,
            feats: Vec::new(),
            index: HashMap::new(),
            cols,
            n: 0,
            ragged,
            strings: false,
            scratch: Vec::new(),
            refs_cap: 0,
        }
    }

    /// Bytes features as NumPy `|S<n>` string arrays (`--bytes-as-strings`).
    pub fn strings(mut self, on: bool) -> Self {
        self.strings = on;
        self
    }

    fn feature_id(&mut self, key: &[u8]) -> Result<usize, String> {
        if let Some(&i) = self.index.get(key) {
            return Ok(i);
        }
        let name =
            std::str::from_utf8(key).map_err(|_| format!("feature key {key:?} is not UTF-8"))?;
        let name = format!("{}{name}", self.prefix);
        let f = Feature {
            name,
            kind: None,
            present: 0,
            min_present: u64::MAX,
            max_present: 0,
            values: 0,
            bytes: 0,
            max_len: 0,
            last: None,
            rows_written: 0,
            values_col: self.cols.add_column(),
            value_ends_col: self.cols.add_column(),
            row_ends_col: self.cols.add_column(),
        };
        self.feats.push(f);
        self.index.insert(key.into(), self.feats.len() - 1);
        Ok(self.feats.len() - 1)
    }

    /// Writes row ends for the records before `upto` that did not hold feature `i`.
    fn backfill(&mut self, i: usize, upto: u64) -> Result<(), String> {
        let f = &mut self.feats[i];
        let end = f.values.to_le_bytes();
        while f.rows_written < upto {
            self.cols.push(f.row_ends_col, &end)?;
            f.rows_written += 1;
        }
        Ok(())
    }

    fn add(&mut self, i: usize, kind: Option<(Kind, &[u8])>, at: &Place) -> Result<(), String> {
        let r = self.n;
        self.backfill(i, r)?;
        let f = &mut self.feats[i];
        f.last = Some(r);
        f.present += 1;
        let mut count = 0;
        if let Some((k, list)) = kind {
            match &f.kind {
                Some((k0, _)) if *k0 != k => {
                    return Err(format!(
                        "feature `{}` is a {} here but a {} in {}",
                        f.name,
                        k.name(),
                        k0.name(),
                        self_place(&f.kind)
                    ))
                }
                Some(_) => {}
                None => f.kind = Some((k, at.clone())),
            }
            let f = &mut self.feats[i];
            let err = |e: String| format!("feature `{}`: {e}", f.name);
            self.scratch.clear();
            match k {
                Kind::Float => match packed_floats(list) {
                    // Borrowed from the record, so a long run can be referenced.
                    Some(run) => {
                        count = run.len() as u64 / 4;
                        self.cols.push_value(f.values_col, run)?;
                    }
                    None => count = float_values(list, &mut self.scratch).map_err(err)?,
                },
                Kind::Int64 => count = int64_values(list, &mut self.scratch).map_err(err)?,
                Kind::Bytes => {
                    let cols = &mut self.cols;
                    let mut total = f.bytes;
                    let mut failed = None;
                    let strings = self.strings;
                    let max_len = &mut f.max_len;
                    count = bytes_values(list, |v| {
                        total += v.len() as u64;
                        *max_len = (*max_len).max(v.len() as u64);
                        if let Err(e) = cols.push_value(f.values_col, v) {
                            failed.get_or_insert(e);
                        }
                        let end = if strings { v.len() as u64 } else { total };
                        self.scratch.extend_from_slice(&end.to_le_bytes());
                    })
                    .map_err(err)?;
                    if let Some(e) = failed {
                        return Err(e);
                    }
                    f.bytes = total;
                    self.cols.push(f.value_ends_col, &self.scratch)?;
                    self.scratch.clear();
                }
            }
            if k != Kind::Bytes && !self.scratch.is_empty() {
                self.cols.push(f.values_col, &self.scratch)?;
            }
        }
        let f = &mut self.feats[i];
        f.values += count;
        f.min_present = f.min_present.min(count);
        f.max_present = f.max_present.max(count);
        self.cols.push(f.row_ends_col, &f.values.to_le_bytes())?;
        f.rows_written = r + 1;
        Ok(())
    }
}

fn self_place(kind: &Option<(Kind, Place)>) -> String {
    match kind {
        Some((_, p)) => p.to_string(),
        None => String::new(),
    }
}

impl ExampleSink {
    /// The spill columns (shared with a `SequenceExample`'s feature lists).
    pub fn cols_mut(&mut self) -> &mut Cols {
        &mut self.cols
    }

    /// Adds one record holding the features `refs` (in file order).
    pub fn add_record(&mut self, refs: &[FeatureRef<'_>], at: &Place) -> Result<(), String> {
        // Walk backwards: the last entry of a repeated key wins.
        for &(key, kind) in refs.iter().rev() {
            let i = self.feature_id(key)?;
            if self.feats[i].last == Some(self.n) {
                continue;
            }
            self.add(i, kind, at)?;
        }
        self.n += 1;
        Ok(())
    }
}

impl Sink for ExampleSink {
    fn record(&mut self, rec: &[u8], at: &Place) -> Result<(), String> {
        let mut refs: Vec<FeatureRef<'_>> = Vec::with_capacity(self.refs_cap);
        parse_example(rec, &mut refs).map_err(|e| format!("not a valid tf.train.Example: {e}"))?;
        self.refs_cap = refs.len();
        self.cols.begin_record(rec, at);
        self.add_record(&refs, at)
    }

    fn finish(mut self: Box<Self>) -> Result<Layout, String> {
        let n = self.n;
        let mut entries = Vec::new();
        for i in 0..self.feats.len() {
            self.backfill(i, n)?;
        }
        for f in &self.feats {
            let Some((kind, _)) = f.kind else {
                continue;
            };
            let first = entries.len();
            let min = if f.present < n { 0 } else { f.min_present };
            let max = f.max_present;
            let uniform = min == max && min >= 1 && !self.ragged;
            let stats = format!(
                "{} in {}/{n} records, {min}..{max} values per record",
                kind.name(),
                f.present
            );
            let splits = |name: String, col, len: u64, what: &str| {
                (
                    entry(
                        &name,
                        DataType::Int64,
                        vec![len + 1],
                        format!("{stats}, {what}"),
                    ),
                    Source::column(col, true),
                )
            };
            match kind {
                Kind::Float | Kind::Int64 => {
                    let dtype = if kind == Kind::Float {
                        DataType::Float
                    } else {
                        DataType::Int64
                    };
                    if uniform {
                        let shape = if min == 1 { vec![n] } else { vec![n, min] };
                        entries.push((
                            entry(&f.name, dtype, shape, format!("{stats}, fixed")),
                            Source::column(f.values_col, false),
                        ));
                    } else {
                        entries.push((
                            entry(
                                &format!("{}/values", f.name),
                                dtype,
                                vec![f.values],
                                format!("{stats}, ragged"),
                            ),
                            Source::column(f.values_col, false),
                        ));
                        entries.push(splits(
                            format!("{}/row_splits", f.name),
                            f.row_ends_col,
                            n,
                            "ragged",
                        ));
                    }
                }
                Kind::Bytes if self.strings => {
                    let one_each = min == 1 && max == 1 && !self.ragged;
                    let (name, form) = if one_each {
                        (f.name.clone(), "one value per record, |S")
                    } else {
                        (format!("{}/values", f.name), "ragged, |S")
                    };
                    let mut e = entry(
                        &name,
                        DataType::String,
                        vec![f.values],
                        format!("{stats}, {form}"),
                    );
                    e.stored_bytes = f.bytes;
                    entries.push((
                        e,
                        Source::Strings {
                            lens: f.value_ends_col,
                            data: f.values_col,
                            first: 0,
                            data_start: 0,
                            count: f.values,
                            max_len: f.max_len,
                        },
                    ));
                    if !one_each {
                        entries.push(splits(
                            format!("{}/row_splits", f.name),
                            f.row_ends_col,
                            n,
                            "ragged",
                        ));
                    }
                }
                Kind::Bytes => {
                    let one_each = min == 1 && max == 1 && !self.ragged;
                    let form = if one_each {
                        "one value per record"
                    } else {
                        "ragged"
                    };
                    entries.push((
                        entry(
                            &format!("{}/bytes", f.name),
                            DataType::Uint8,
                            vec![f.bytes],
                            format!("{stats}, {form}"),
                        ),
                        Source::column(f.values_col, false),
                    ));
                    entries.push(splits(
                        format!("{}/value_splits", f.name),
                        f.value_ends_col,
                        f.values,
                        form,
                    ));
                    if !one_each {
                        entries.push(splits(
                            format!("{}/row_splits", f.name),
                            f.row_ends_col,
                            n,
                            form,
                        ));
                    }
                }
            }
            let key = f.name.get(self.prefix.len()..).unwrap_or(&f.name);
            self.cols.name_feature(&entries, first, key);
        }
        entries.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(Layout {
            records: n,
            entries,
            cols: self.cols,
        })
    }
}

fn entry(name: &str, dtype: DataType, shape: Vec<u64>, location: String) -> Entry {
    let item = dtype.storage_bytes().unwrap_or(1);
    let stored = shape.iter().product::<u64>().saturating_mul(item);
    Entry {
        name: name.to_string(),
        dtype,
        shape,
        stored_bytes: stored,
        location: location.into(),
        hidden: false,
    }
}
