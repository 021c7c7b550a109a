//! `tf.train.SequenceExample` records (docs/formats/tfrecord.md §5b): the context as
//! `context/K` with the `Example` rules, each feature list as `feature_lists/K/...`,
//! ragged over records (sequences) and steps.

use super::columns::ExampleSink;
use super::example::{
    bytes_values, feature_kind, float_values, int64_values, packed_floats, parse_features,
    FeatureRef, Kind,
};
use super::sink::{Cols, Layout, Place, Sink, Source};
use super::wire::{Fields, Value};
use crate::dtype::DataType;
use crate::source::Entry;
use std::collections::HashMap;

struct List {
    name: String,
    kind: Option<(Kind, Place)>,
    present: u64,
    steps: u64,
    values: u64,
    bytes: u64,
    min_steps: u64,
    max_steps: u64,
    last: Option<u64>,
    rows_written: u64,
    values_col: usize,
    value_ends_col: usize,
    step_ends_col: usize,
    row_ends_col: usize,
}

/// Collects `SequenceExample` records.
pub struct SequenceSink {
    context: ExampleSink,
    lists: Vec<List>,
    index: HashMap<Box<[u8]>, usize>,
    n: u64,
    scratch: Vec<u8>,
}

/// `(key, serialized FeatureList)` of each `FeatureLists` entry, in file order.
fn parse_feature_lists<'a>(
    buf: &'a [u8],
    out: &mut Vec<(&'a [u8], &'a [u8])>,
) -> Result<(), String> {
    for f in Fields::new(buf) {
        match f? {
            (1, Value::Len(entry)) => {
                let (mut key, mut list): (&[u8], &[u8]) = (&[], &[]);
                for g in Fields::new(entry) {
                    match g? {
                        (1, Value::Len(k)) => key = k,
                        (2, Value::Len(v)) => list = v,
                        (1 | 2, _) => {
                            return Err("a feature_lists entry is not length-delimited".into())
                        }
                        _ => {}
                    }
                }
                out.push((key, list));
            }
            (1, _) => return Err("a FeatureLists map entry is not length-delimited".into()),
            _ => {}
        }
    }
    Ok(())
}

impl SequenceSink {
    /// A sink spilling to `cols`; `ragged` is `--ragged` (for the context).
    pub fn new(cols: Cols, ragged: bool) -> Self {
        SequenceSink {
            context: ExampleSink::with_prefix(cols, ragged, "context/"),
            lists: Vec::new(),
            index: HashMap::new(),
            n: 0,
            scratch: Vec::new(),
        }
    }

    /// Context bytes features as `|S<n>` arrays (`--bytes-as-strings`); feature lists
    /// keep the exact bytes layout.
    pub fn strings(mut self, on: bool) -> Self {
        self.context = self.context.strings(on);
        self
    }

    fn list_id(&mut self, key: &[u8]) -> Result<usize, String> {
        if let Some(&i) = self.index.get(key) {
            return Ok(i);
        }
        let name = std::str::from_utf8(key)
            .map_err(|_| format!("feature list key {key:?} is not UTF-8"))?;
        let cols = self.context.cols_mut();
        let l = List {
            name: format!("feature_lists/{name}"),
            kind: None,
            present: 0,
            steps: 0,
            values: 0,
            bytes: 0,
            min_steps: u64::MAX,
            max_steps: 0,
            last: None,
            rows_written: 0,
            values_col: cols.add_column(),
            value_ends_col: cols.add_column(),
            step_ends_col: cols.add_column(),
            row_ends_col: cols.add_column(),
        };
        self.lists.push(l);
        self.index.insert(key.into(), self.lists.len() - 1);
        Ok(self.lists.len() - 1)
    }

    fn backfill(&mut self, i: usize, upto: u64) -> Result<(), String> {
        let l = &mut self.lists[i];
        let end = l.steps.to_le_bytes();
        while l.rows_written < upto {
            self.context.cols_mut().push(l.row_ends_col, &end)?;
            l.rows_written += 1;
        }
        Ok(())
    }

    fn add_list(&mut self, i: usize, list: &[u8], at: &Place) -> Result<(), String> {
        let r = self.n;
        self.backfill(i, r)?;
        let mut steps = 0;
        for f in Fields::new(list) {
            let step = match f? {
                (1, Value::Len(step)) => step,
                _ => return Err("a FeatureList holds a field other than feature = 1".into()),
            };
            let kind = feature_kind(step, self.lists[i].name.as_bytes())?;
            let cols = self.context.cols_mut();
            let l = &mut self.lists[i];
            if let Some((k, vals)) = kind {
                match &l.kind {
                    Some((k0, p)) if *k0 != k => {
                        return Err(format!(
                            "feature list `{}` is a {} here but a {} in {p}",
                            l.name,
                            k.name(),
                            k0.name()
                        ))
                    }
                    Some(_) => {}
                    None => l.kind = Some((k, at.clone())),
                }
                self.scratch.clear();
                let name = &l.name;
                let err = |e: String| format!("feature list `{name}`: {e}");
                let count = match k {
                    Kind::Float => match packed_floats(vals) {
                        Some(run) => {
                            cols.push_value(l.values_col, run)?;
                            run.len() as u64 / 4
                        }
                        None => float_values(vals, &mut self.scratch).map_err(err)?,
                    },
                    Kind::Int64 => int64_values(vals, &mut self.scratch).map_err(err)?,
                    Kind::Bytes => {
                        let mut total = l.bytes;
                        let mut failed = None;
                        let scratch = &mut self.scratch;
                        let values_col = l.values_col;
                        let c = bytes_values(vals, |v| {
                            total += v.len() as u64;
                            if let Err(e) = cols.push_value(values_col, v) {
                                failed.get_or_insert(e);
                            }
                            scratch.extend_from_slice(&total.to_le_bytes());
                        })
                        .map_err(err)?;
                        if let Some(e) = failed {
                            return Err(e);
                        }
                        l.bytes = total;
                        cols.push(l.value_ends_col, &self.scratch)?;
                        self.scratch.clear();
                        c
                    }
                };
                if k != Kind::Bytes && !self.scratch.is_empty() {
                    cols.push(l.values_col, &self.scratch)?;
                }
                l.values += count;
            }
            cols.push(l.step_ends_col, &l.values.to_le_bytes())?;
            l.steps += 1;
            steps += 1;
        }
        let l = &mut self.lists[i];
        l.last = Some(r);
        l.present += 1;
        l.min_steps = l.min_steps.min(steps);
        l.max_steps = l.max_steps.max(steps);
        self.context
            .cols_mut()
            .push(l.row_ends_col, &l.steps.to_le_bytes())?;
        l.rows_written = r + 1;
        Ok(())
    }
}

impl Sink for SequenceSink {
    fn record(&mut self, rec: &[u8], at: &Place) -> Result<(), String> {
        let mut ctx: Vec<FeatureRef<'_>> = Vec::new();
        let mut lists = Vec::new();
        let bad = |e: String| format!("not a valid tf.train.SequenceExample: {e}");
        for f in Fields::new(rec) {
            match f.map_err(|e| bad(e.into()))? {
                (1, Value::Len(c)) => parse_features(c, &mut ctx).map_err(bad)?,
                (2, Value::Len(l)) => parse_feature_lists(l, &mut lists).map_err(bad)?,
                (1 | 2, _) => {
                    return Err(bad(
                        "context or feature_lists is not length-delimited".into()
                    ))
                }
                _ => {}
            }
        }
        self.context.cols_mut().begin_record(rec, at);
        self.context.add_record(&ctx, at)?;
        for &(key, list) in lists.iter().rev() {
            let i = self.list_id(key)?;
            if self.lists[i].last == Some(self.n) {
                continue;
            }
            self.add_list(i, list, at)?;
        }
        self.n += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Layout, String> {
        let n = self.n;
        for i in 0..self.lists.len() {
            self.backfill(i, n)?;
        }
        let lists = std::mem::take(&mut self.lists);
        let mut layout = Box::new(self.context).finish()?;
        for l in &lists {
            let Some((kind, _)) = l.kind else {
                continue;
            };
            let min = if l.present < n { 0 } else { l.min_steps };
            let loc = format!(
                "feature list of {} in {}/{n} records, {min}..{} steps per record, {} steps",
                kind.name(),
                l.present,
                l.max_steps,
                l.steps
            );
            let first = layout.entries.len();
            let e = |suffix: &str, dtype, len: u64| Entry {
                name: format!("{}/{suffix}", l.name),
                dtype,
                shape: vec![len],
                stored_bytes: len * dtype.storage_bytes().unwrap_or(1),
                location: loc.clone().into(),
                hidden: false,
            };
            let splits = |suffix: &str, col, count: u64| {
                (
                    e(suffix, DataType::Int64, count + 1),
                    Source::column(col, true),
                )
            };
            match kind {
                Kind::Bytes => {
                    layout.entries.push((
                        e("bytes", DataType::Uint8, l.bytes),
                        Source::column(l.values_col, false),
                    ));
                    layout
                        .entries
                        .push(splits("value_splits", l.value_ends_col, l.values));
                }
                Kind::Float | Kind::Int64 => {
                    let dt = if kind == Kind::Float {
                        DataType::Float
                    } else {
                        DataType::Int64
                    };
                    layout.entries.push((
                        e("values", dt, l.values),
                        Source::column(l.values_col, false),
                    ));
                }
            }
            layout
                .entries
                .push(splits("step_splits", l.step_ends_col, l.steps));
            layout.entries.push(splits("row_splits", l.row_ends_col, n));
            let key = l.name.strip_prefix("feature_lists/").unwrap_or(&l.name);
            layout.cols.name_feature(&layout.entries, first, key);
        }
        layout.entries.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(layout)
    }
}
