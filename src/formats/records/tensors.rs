//! Records that are serialized `TensorProto`s (`tf.io.serialize_tensor`;
//! docs/formats/tfrecord.md §6): one `[N, *shape]` array when every record has one dtype
//! and shape, else one array per record.

use super::sink::{Cols, Layout, Place, Sink, Source};
use crate::dtype::DataType;
use crate::error::Ctx;
use crate::formats::proto::TensorProto;
use crate::formats::tensor::tensorproto::{describe, open_tensor};
use crate::source::{Entry, RawTensor};
use prost::Message;

struct Rec {
    dtype: DataType,
    shape: Vec<u64>,
    data_start: u64,
    data_len: u64,
    first: u64,
    count: u64,
    max_len: u64,
}

/// The records of one tensor stream (a file of `TensorProto` records, or one component
/// of a saved dataset's elements), spilled to shared columns.
pub struct TensorColumn {
    stem: String,
    data: usize,
    lens: usize,
    data_len: u64,
    strings: u64,
    /// Records seen.
    n: u64,
    /// The first record (dtype and shape every record must share to stack).
    first: Option<Rec>,
    /// Every record so far has the first one's dtype and shape: nothing is kept per
    /// record, except `(data_start, max_len)` for string records.
    uniform: bool,
    string_prefix: Vec<(u64, u64)>,
    max_len: u64,
    /// Once not uniform: every record.
    recs: Vec<Rec>,
}

/// Collects `TensorProto` records.
pub struct TensorSink {
    cols: Cols,
    column: TensorColumn,
    buf: Vec<u8>,
}

impl TensorSink {
    /// Arrays are named `stem` (stacked) or `stem/<index>`.
    pub fn new(mut cols: Cols, stem: String) -> Self {
        let column = TensorColumn::new(&mut cols, stem);
        TensorSink {
            cols,
            column,
            buf: vec![0u8; 256 << 10],
        }
    }
}

impl Sink for TensorSink {
    fn record(&mut self, rec: &[u8], at: &Place) -> Result<(), String> {
        self.cols.begin_record(rec, at);
        self.column.add(&mut self.cols, &mut self.buf, rec, at)
    }

    fn finish(self: Box<Self>) -> Result<Layout, String> {
        let records = self.column.records();
        Ok(Layout {
            records,
            entries: self.column.entries(),
            cols: self.cols,
        })
    }
}

impl TensorColumn {
    /// Arrays are named `stem` (stacked) or `stem/<index>`.
    pub fn new(cols: &mut Cols, stem: String) -> Self {
        let data = cols.add_column();
        let lens = cols.add_column();
        TensorColumn {
            stem,
            data,
            lens,
            data_len: 0,
            strings: 0,
            n: 0,
            first: None,
            uniform: true,
            string_prefix: Vec::new(),
            max_len: 0,
            recs: Vec::new(),
        }
    }

    fn push(&mut self, r: Rec) {
        self.n += 1;
        self.max_len = self.max_len.max(r.max_len);
        let Some(r0) = &self.first else {
            if r.dtype == DataType::String {
                self.string_prefix.push((r.data_start, r.max_len));
            }
            self.first = Some(r);
            return;
        };
        if self.uniform && r.dtype == r0.dtype && r.shape == r0.shape {
            if r.dtype == DataType::String {
                self.string_prefix.push((r.data_start, r.max_len));
            }
            return;
        }
        if self.uniform {
            // The first record that differs: rebuild the records before it, which all
            // had the first one's dtype, shape and (for fixed dtypes) size.
            self.uniform = false;
            let k = self.n - 1;
            let strings = r0.dtype == DataType::String;
            let mut recs = Vec::with_capacity(k as usize + 1);
            for j in 0..k {
                let (data_start, data_len, max_len) = if strings {
                    let (st, ml) = self.string_prefix[j as usize];
                    let next = self
                        .string_prefix
                        .get(j as usize + 1)
                        .map_or(r.data_start, |x| x.0);
                    (st, next - st, ml)
                } else {
                    (j * r0.data_len, r0.data_len, 0)
                };
                recs.push(Rec {
                    dtype: r0.dtype,
                    shape: r0.shape.clone(),
                    data_start,
                    data_len,
                    first: if strings { j * r0.count } else { 0 },
                    count: r0.count,
                    max_len,
                });
            }
            self.recs = recs;
            self.string_prefix = Vec::new();
        }
        self.recs.push(r);
    }

    /// Records added.
    pub fn records(&self) -> u64 {
        self.n
    }

    /// Adds one `TensorProto` record (`buf` is scratch space).
    pub fn add(
        &mut self,
        cols: &mut Cols,
        buf: &mut [u8],
        rec: &[u8],
        at: &Place,
    ) -> Result<(), String> {
        let tp = TensorProto::decode(rec).map_err(|e| format!("not a valid TensorProto: {e}"))?;
        let ctx = Ctx::file(at.file.as_path());
        let strip = |e: crate::error::Error| match e {
            crate::error::Error::Corrupt { detail, .. }
            | crate::error::Error::Unsupported { detail, .. } => detail,
            other => other.to_string(),
        };
        let e = describe(&tp, "record", &ctx).map_err(strip)?;
        let (data_start, first) = (self.data_len, self.strings);
        let mut max_len = 0;
        let count;
        match open_tensor(&tp, e.dtype, &e.shape, &ctx).map_err(strip)? {
            RawTensor::Fixed(_) if !tp.tensor_content.is_empty() => {
                // The stream is `tensor_content` verbatim (open_tensor checked its
                // length): push the record's own bytes, so a large one is referenced.
                let content = content_of(rec)
                    .filter(|c| c.len() == tp.tensor_content.len())
                    .unwrap_or(&tp.tensor_content);
                cols.push_value(self.data, content)?;
                self.data_len += content.len() as u64;
                count = e.num_elements();
            }
            RawTensor::Fixed(mut s) => {
                loop {
                    let n = s.read(buf).map_err(strip)?;
                    if n == 0 {
                        break;
                    }
                    cols.push(self.data, &buf[..n])?;
                    self.data_len += n as u64;
                }
                count = e.num_elements();
            }
            RawTensor::Strings(mut s) => {
                let mut el = Vec::new();
                let mut k = 0;
                while s.next_into(&mut el).map_err(strip)? {
                    cols.push(self.data, &el)?;
                    cols.push(self.lens, &(el.len() as u64).to_le_bytes())?;
                    self.data_len += el.len() as u64;
                    max_len = max_len.max(el.len() as u64);
                    k += 1;
                }
                count = k;
                self.strings += k;
            }
        }
        self.push(Rec {
            dtype: e.dtype,
            shape: e.shape,
            data_start,
            data_len: self.data_len - data_start,
            first,
            count,
            max_len,
        });
        Ok(())
    }

    /// The arrays: one stacked `[N, *shape]` if every record has one dtype and shape,
    /// else one per record.
    pub fn entries(self) -> Vec<(Entry, Source)> {
        let n = self.n;
        let mut entries = Vec::new();
        let uniform = self.uniform && self.first.is_some();
        let source = |r: &Rec, whole: bool| {
            if r.dtype == DataType::String {
                Source::Strings {
                    lens: self.lens,
                    data: self.data,
                    first: if whole { 0 } else { r.first },
                    data_start: if whole { 0 } else { r.data_start },
                    count: if whole { self.strings } else { r.count },
                    max_len: if whole { self.max_len } else { r.max_len },
                }
            } else if whole {
                Source::column(self.data, false)
            } else {
                Source::Column {
                    col: self.data,
                    start: r.data_start,
                    len: r.data_len,
                    zero_prefix: false,
                }
            }
        };
        if uniform {
            let Some(r0) = &self.first else {
                return entries;
            };
            let mut shape = vec![n];
            shape.extend_from_slice(&r0.shape);
            let e = Entry {
                name: self.stem.clone(),
                dtype: r0.dtype,
                shape,
                stored_bytes: self.data_len,
                location: format!("{n} TensorProto records of one dtype and shape, stacked").into(),
                hidden: false,
            };
            entries.push((e, source(r0, true)));
        } else {
            let width = n.saturating_sub(1).to_string().len();
            for (i, r) in self.recs.iter().enumerate() {
                let e = Entry {
                    name: format!("{}/{i:0width$}", self.stem),
                    dtype: r.dtype,
                    shape: r.shape.clone(),
                    stored_bytes: r.data_len,
                    location: format!("TensorProto record {i} of {n}").into(),
                    hidden: false,
                };
                entries.push((e, source(r, false)));
            }
        }
        entries
    }
}

/// The bytes of a serialized `TensorProto`'s `tensor_content` (field 4; the last one,
/// as protobuf decodes a repeated scalar field), borrowed from `rec`.
fn content_of(rec: &[u8]) -> Option<&[u8]> {
    let mut content = None;
    for f in super::wire::Fields::new(rec) {
        if let (4, super::wire::Value::Len(b)) = f.ok()? {
            content = Some(b);
        }
    }
    content
}
