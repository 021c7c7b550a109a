//! TensorBoard event files (docs/formats/tfrecord.md §6c): TFRecord files of `Event`
//! records (tensorflow/core/util/event.proto); per summary tag, the steps, wall times and
//! values in file order.

use super::sink::{Cols, Layout, Place, Sink, Source};
use super::tensors::TensorColumn;
use super::wire::{Fields, Value};
use crate::dtype::DataType;
use crate::source::Entry;
use std::collections::HashMap;
use std::path::PathBuf;

/// Values of one tag: `simple_value` floats, or `TensorProto`s.
enum Values {
    Simple(usize),
    Tensor(TensorColumn),
}

struct Tag {
    name: String,
    count: u64,
    step_col: usize,
    wall_col: usize,
    values: Option<Values>,
}

/// Collects `Event` records; tags are prefixed by the run (the event file's folder
/// relative to `root`).
pub struct EventSink {
    cols: Cols,
    root: PathBuf,
    tags: Vec<Tag>,
    index: HashMap<String, usize>,
    buf: Vec<u8>,
}

impl EventSink {
    /// Event files under `root` (a log folder, or the folder of one event file).
    pub fn new(cols: Cols, root: PathBuf) -> Self {
        EventSink {
            cols,
            root,
            tags: Vec::new(),
            index: HashMap::new(),
            buf: vec![0u8; 256 << 10],
        }
    }

    fn tag(&mut self, name: String) -> usize {
        if let Some(&i) = self.index.get(&name) {
            return i;
        }
        let t = Tag {
            name: name.clone(),
            count: 0,
            step_col: self.cols.add_column(),
            wall_col: self.cols.add_column(),
            values: None,
        };
        self.tags.push(t);
        self.index.insert(name, self.tags.len() - 1);
        self.tags.len() - 1
    }

    fn run_prefix(&self, at: &Place) -> String {
        let dir = at.file.parent().unwrap_or(&self.root);
        match dir.strip_prefix(&self.root) {
            Ok(rel) if !rel.as_os_str().is_empty() => format!("{}/", rel.to_string_lossy()),
            _ => String::new(),
        }
    }
}

impl Sink for EventSink {
    fn record(&mut self, rec: &[u8], at: &Place) -> Result<(), String> {
        let bad = |e: &str| format!("not a valid TensorBoard Event: {e}");
        let (mut wall, mut step) = (0f64, 0i64);
        let mut summaries = Vec::new();
        for f in Fields::new(rec) {
            match f.map_err(bad)? {
                (1, Value::Fixed64(b)) => wall = f64::from_le_bytes(b),
                (2, Value::Varint(v)) => step = v as i64,
                (5, Value::Len(s)) => summaries.push(s),
                (1 | 2 | 5, _) => {
                    return Err(bad("wall_time, step or summary has the wrong wire type"))
                }
                _ => {}
            }
        }
        let prefix = self.run_prefix(at);
        for s in summaries {
            for f in Fields::new(s) {
                let value = match f.map_err(bad)? {
                    (1, Value::Len(v)) => v,
                    (1, _) => return Err(bad("a Summary value is not length-delimited")),
                    _ => continue,
                };
                let (mut tag, mut simple, mut tensor, mut other) = (None, None, None, None);
                for g in Fields::new(value) {
                    match g.map_err(bad)? {
                        (1, Value::Len(t)) => tag = Some(String::from_utf8_lossy(t).into_owned()),
                        (2, Value::Fixed32(b)) => simple = Some(b),
                        (8, Value::Len(t)) => tensor = Some(t),
                        (3, _) => other = Some("a TF1 old-style histogram"),
                        (4, _) => other = Some("an image"),
                        (5, _) => other = Some("a TF1 histogram"),
                        (6, _) => other = Some("an audio clip"),
                        _ => {}
                    }
                }
                let tag = tag.unwrap_or_default();
                if let Some(what) = other {
                    return Err(format!(
                        "summary `{tag}` holds {what}, which tf2npy cannot convert (TF2 \
                         summaries, written as tensors, can)"
                    ));
                }
                let i = self.tag(format!("{prefix}{tag}"));
                let t = &mut self.tags[i];
                match (&mut t.values, simple, tensor) {
                    (None, Some(_), None) => {
                        t.values = Some(Values::Simple(self.cols.add_column()))
                    }
                    (None, None, Some(_)) => {
                        t.values = Some(Values::Tensor(TensorColumn::new(
                            &mut self.cols,
                            format!("{}/value", t.name),
                        )))
                    }
                    (None, _, _) => continue,
                    _ => {}
                }
                match (&mut t.values, simple, tensor) {
                    (Some(Values::Simple(c)), Some(b), None) => self.cols.push(*c, &b)?,
                    (Some(Values::Tensor(tc)), None, Some(tp)) => {
                        tc.add(&mut self.cols, &mut self.buf, tp, at)?
                    }
                    _ => {
                        return Err(format!(
                            "summary `{}` mixes simple_value and tensor values",
                            t.name
                        ))
                    }
                }
                self.cols.push(t.step_col, &step.to_le_bytes())?;
                self.cols.push(t.wall_col, &wall.to_le_bytes())?;
                t.count += 1;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Layout, String> {
        let mut entries = Vec::new();
        let mut events = 0;
        for t in self.tags {
            let m = t.count;
            events += m;
            let first = entries.len();
            let e = |suffix: &str, dtype: DataType| Entry {
                name: format!("{}/{suffix}", t.name),
                dtype,
                shape: vec![m],
                stored_bytes: m * dtype.storage_bytes().unwrap_or(1),
                location: format!("{m} summary values").into(),
                hidden: false,
            };
            entries.push((
                e("step", DataType::Int64),
                Source::column(t.step_col, false),
            ));
            entries.push((
                e("wall_time", DataType::Double),
                Source::column(t.wall_col, false),
            ));
            match t.values {
                Some(Values::Simple(c)) => {
                    entries.push((e("value", DataType::Float), Source::column(c, false)))
                }
                Some(Values::Tensor(tc)) => entries.extend(tc.entries()),
                None => {}
            }
            self.cols.name_feature(&entries, first, &t.name);
        }
        entries.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(Layout {
            records: events,
            entries,
            cols: self.cols,
        })
    }
}
