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

/// Values of one tag: `simple_value` floats, `TensorProto`s, or the TF1 messages.
enum Values {
    Simple(usize),
    Tensor(TensorColumn),
    Tf1(Tf1Kind, Tf1Cols),
}

/// The TF1 summary messages (tensorflow/core/framework/summary.proto): `histo`
/// (`HistogramProto`), `image` (`Summary.Image`), `audio` (`Summary.Audio`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tf1Kind {
    Histo,
    Image,
    Audio,
}

impl Tf1Kind {
    fn name(self) -> &'static str {
        match self {
            Tf1Kind::Histo => "histo",
            Tf1Kind::Image => "image",
            Tf1Kind::Audio => "audio",
        }
    }

    /// The message's fields, in field-number order: (number, array name, kind).
    fn fields(self) -> &'static [(u32, &'static str, Tf1Field)] {
        use Tf1Field::*;
        match self {
            Tf1Kind::Histo => &[
                (1, "min", F64),
                (2, "max", F64),
                (3, "num", F64),
                (4, "sum", F64),
                (5, "sum_squares", F64),
                (6, "bucket_limit", F64s),
                (7, "bucket", F64s),
            ],
            Tf1Kind::Image => &[
                (1, "height", I32),
                (2, "width", I32),
                (3, "colorspace", I32),
                (4, "encoded", Bytes),
            ],
            Tf1Kind::Audio => &[
                (1, "sample_rate", F32),
                (2, "num_channels", I64),
                (3, "length_frames", I64),
                (4, "encoded", Bytes),
                (5, "content_type", Bytes),
            ],
        }
    }
}

/// How a TF1 summary field is stored and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tf1Field {
    /// `double`: `<f8`, one per event.
    F64,
    /// `float`: `<f4`, one per event.
    F32,
    /// `int32`: `<i4`, one per event.
    I32,
    /// `int64`: `<i8`, one per event.
    I64,
    /// `repeated double`: `<f8`, ragged over events (`NAME` values, `row_splits`).
    F64s,
    /// `bytes` / `string`: `NAME/bytes` + `NAME/value_splits`, one value per event.
    Bytes,
}

/// Spill columns of a TF1 summary tag: per field a values column (and for bytes a
/// value-ends column, for doubles a row-ends column), with running totals.
struct Tf1Cols {
    values: Vec<usize>,
    ends: Vec<usize>,
    totals: Vec<u64>,
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

    /// One TF1 `histo`, `image` or `audio` message `m` of tag `name`.
    fn add_tf1(
        &mut self,
        name: String,
        kind: Tf1Kind,
        m: &[u8],
        step: i64,
        wall: f64,
    ) -> Result<(), String> {
        let bad = |e: &str| format!("summary `{name}`: not a valid TF1 {}: {e}", kind.name());
        let fields = kind.fields();
        // This event's value of every field: scalars and bytes as their bytes, repeated
        // doubles appended (packed or not).
        let mut got: Vec<Vec<u8>> = vec![Vec::new(); fields.len()];
        let mut counts = vec![0u64; fields.len()];
        for f in Fields::new(m) {
            let (num, v) = f.map_err(&bad)?;
            let Some(i) = fields.iter().position(|(n, _, _)| *n == num) else {
                continue;
            };
            let out = &mut got[i];
            match (fields[i].2, v) {
                (Tf1Field::F64, Value::Fixed64(b)) => *out = b.to_vec(),
                (Tf1Field::F32, Value::Fixed32(b)) => *out = b.to_vec(),
                (Tf1Field::I32, Value::Varint(x)) => *out = (x as i32).to_le_bytes().to_vec(),
                (Tf1Field::I64, Value::Varint(x)) => *out = (x as i64).to_le_bytes().to_vec(),
                (Tf1Field::Bytes, Value::Len(b)) => *out = b.to_vec(),
                (Tf1Field::F64s, Value::Fixed64(b)) => {
                    out.extend_from_slice(&b);
                    counts[i] += 1;
                }
                (Tf1Field::F64s, Value::Len(b)) if b.len() % 8 == 0 => {
                    out.extend_from_slice(b);
                    counts[i] += b.len() as u64 / 8;
                }
                _ => return Err(bad(&format!("field {num} has the wrong wire type"))),
            }
        }
        let i = self.tag(name);
        let t = &mut self.tags[i];
        if t.values.is_none() {
            let mut c = Tf1Cols {
                values: Vec::new(),
                ends: Vec::new(),
                totals: vec![0; fields.len()],
            };
            for _ in fields {
                c.values.push(self.cols.add_column());
                c.ends.push(self.cols.add_column());
            }
            t.values = Some(Values::Tf1(kind, c));
        }
        let Some(Values::Tf1(k, c)) = &mut t.values else {
            return Err(format!(
                "summary `{}` mixes a TF1 {} with other values",
                t.name,
                kind.name()
            ));
        };
        if *k != kind {
            return Err(format!(
                "summary `{}` holds a TF1 {} here and a {} before",
                t.name,
                kind.name(),
                k.name()
            ));
        }
        for (j, (_, _, ty)) in fields.iter().enumerate() {
            let v = &got[j];
            match ty {
                Tf1Field::F64 | Tf1Field::I64 => self.cols.push(c.values[j], pad(v, 8))?,
                Tf1Field::F32 | Tf1Field::I32 => self.cols.push(c.values[j], pad(v, 4))?,
                Tf1Field::F64s => {
                    self.cols.push(c.values[j], v)?;
                    c.totals[j] += counts[j];
                    self.cols.push(c.ends[j], &c.totals[j].to_le_bytes())?;
                }
                Tf1Field::Bytes => {
                    self.cols.push(c.values[j], v)?;
                    c.totals[j] += v.len() as u64;
                    self.cols.push(c.ends[j], &c.totals[j].to_le_bytes())?;
                }
            }
        }
        self.cols.push(t.step_col, &step.to_le_bytes())?;
        self.cols.push(t.wall_col, &wall.to_le_bytes())?;
        t.count += 1;
        Ok(())
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
        self.cols.begin_record(rec, at);
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
                let mut tf1 = None;
                for g in Fields::new(value) {
                    match g.map_err(bad)? {
                        (1, Value::Len(t)) => tag = Some(String::from_utf8_lossy(t).into_owned()),
                        (2, Value::Fixed32(b)) => simple = Some(b),
                        (8, Value::Len(t)) => tensor = Some(t),
                        (3, _) => other = Some("a pre-1.0 old-style histogram"),
                        (4, Value::Len(m)) => tf1 = Some((Tf1Kind::Image, m)),
                        (5, Value::Len(m)) => tf1 = Some((Tf1Kind::Histo, m)),
                        (6, Value::Len(m)) => tf1 = Some((Tf1Kind::Audio, m)),
                        (4..=6, _) => return Err(bad("a Summary value is not length-delimited")),
                        _ => {}
                    }
                }
                let tag = tag.unwrap_or_default();
                if let Some(what) = other {
                    return Err(format!(
                        "summary `{tag}` holds {what}, which tf2npy cannot convert"
                    ));
                }
                if let Some((kind, m)) = tf1 {
                    self.add_tf1(format!("{prefix}{tag}"), kind, m, step, wall)?;
                    continue;
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
                Some(Values::Tf1(kind, c)) => {
                    for (j, (_, field, ty)) in kind.fields().iter().enumerate() {
                        let base = format!("{}/{}", kind.name(), field);
                        let ragged = |len: u64, dtype: DataType| Entry {
                            shape: vec![len],
                            stored_bytes: len * dtype.storage_bytes().unwrap_or(1),
                            ..e(&base, dtype)
                        };
                        let splits = |what: &str| {
                            (
                                Entry {
                                    shape: vec![m + 1],
                                    stored_bytes: (m + 1) * 8,
                                    ..e(&format!("{base}/{what}"), DataType::Int64)
                                },
                                Source::column(c.ends[j], true),
                            )
                        };
                        let col = Source::column(c.values[j], false);
                        match ty {
                            Tf1Field::F64 => entries.push((e(&base, DataType::Double), col)),
                            Tf1Field::F32 => entries.push((e(&base, DataType::Float), col)),
                            Tf1Field::I32 => entries.push((e(&base, DataType::Int32), col)),
                            Tf1Field::I64 => entries.push((e(&base, DataType::Int64), col)),
                            Tf1Field::F64s => {
                                entries.push((ragged(c.totals[j], DataType::Double), col));
                                let (mut s, src) = splits("row_splits");
                                s.name = format!("{}/{}/{field}/row_splits", t.name, kind.name());
                                entries.push((s, src));
                            }
                            Tf1Field::Bytes => {
                                let mut b = ragged(c.totals[j], DataType::Uint8);
                                b.name = format!("{}/{base}/bytes", t.name);
                                entries.push((b, col));
                                entries.push(splits("value_splits"));
                            }
                        }
                    }
                }
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

/// `v` (a scalar's bytes) or, when the field was absent (protobuf's default), `n` zeros.
fn pad(v: &[u8], n: usize) -> &[u8] {
    const ZEROS: [u8; 8] = [0; 8];
    if v.len() == n {
        v
    } else {
        &ZEROS[..n]
    }
}
