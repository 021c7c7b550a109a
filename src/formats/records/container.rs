//! The [`Container`] over TFRecord shards: the record loop (framing, skip/take, the
//! sink of the record kind) and streaming the arrays from the spill.

use super::columns::ExampleSink;
use super::compression::{open_stream, open_stream_ahead, Compression};
use super::dataset::DatasetSink;
use super::events::EventSink;
use super::example::{looks, Looks};
use super::framing::RecordReader;
use super::inputs::Shard;
use super::sequence::SequenceSink;
use super::sink::{Cols, Layout, Origin, Place, Sink, Source};
use super::spill::{Spill, SpillWriter};
use super::tensors::TensorSink;
use super::{RecordKind, RecordOptions};
use crate::error::{Error, Result};
use crate::source::{Container, Entry, RawTensor, StringRead};
use crate::stream::ByteStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// TFRecord shards, read once, their arrays streaming from a spill.
pub struct RecordsContainer {
    path: PathBuf,
    shards: Vec<Shard>,
    opts: RecordOptions,
    record_kind: RecordKind,
    entries: Vec<Entry>,
    sources: Vec<Source>,
    spill: OnceLock<Spill>,
    /// Each entry's feature (or tag) name, where it differs from the entry's.
    features: Vec<Option<String>>,
    /// A saved dataset's component names (each element is one record per component).
    components: Option<Vec<String>>,
}

/// A reader of `shard`'s records; `whole`: every record will be read (the stream is
/// read ahead on a thread of its own).
fn reader(shard: &Shard, verify: bool, whole: bool) -> Result<RecordReader> {
    let stream = if whole {
        open_stream_ahead(&shard.path, shard.compression)?
    } else {
        open_stream(&shard.path, shard.compression)?
    };
    let file_len = (shard.compression == Compression::None).then_some(shard.len);
    Ok(RecordReader::new(
        stream,
        &shard.path,
        shard.compression,
        file_len,
        verify,
    ))
}

/// Decides the record kind from the first records (up to 8) of the first shard that
/// has any.
fn detect_kind(shards: &[Shard], verify: bool) -> Result<RecordKind> {
    let mut buf = Vec::new();
    for s in shards {
        let mut r = reader(s, verify, false)?;
        let mut seen = Vec::new();
        while seen.len() < 8 && r.next_into(&mut buf)? {
            seen.push(looks(&buf));
        }
        let Some(&first) = seen.first() else {
            continue;
        };
        if seen.contains(&Looks::Sequence) && first != Looks::Tensor && first != Looks::Event {
            return Ok(RecordKind::Sequence);
        }
        return match first {
            Looks::Example | Looks::Sequence => Ok(RecordKind::Example),
            Looks::Tensor => Ok(RecordKind::Tensor),
            Looks::Event => Ok(RecordKind::Event),
            Looks::Unknown => Err(r.error_at(
                0,
                0,
                "not a tf.train.Example, SequenceExample, TensorProto or Event (use --records \
                 to say which)",
            )),
        };
    }
    Ok(RecordKind::Example)
}

fn stem(path: &Path, shards: &[Shard]) -> String {
    let p = if path.is_file() {
        path.file_stem()
    } else if path.is_dir() {
        path.file_name()
    } else {
        shards
            .first()
            .and_then(|s| s.path.parent())
            .and_then(|p| p.file_name())
    };
    p.map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "records".to_string())
}

impl RecordsContainer {
    /// Reads every record of `shards` (the input `path`), spilling the columns to
    /// `opts.spill_dir` if set.
    pub fn open(path: &Path, shards: Vec<Shard>, opts: &RecordOptions) -> Result<Self> {
        Self::open_with(path, shards, opts, None)
    }

    /// Reads a `Dataset.save` folder's shards, whose elements have `components`.
    pub fn open_dataset(
        path: &Path,
        shards: Vec<Shard>,
        opts: &RecordOptions,
        components: Vec<String>,
    ) -> Result<Self> {
        Self::open_with(path, shards, opts, Some(components))
    }

    fn open_with(
        path: &Path,
        shards: Vec<Shard>,
        opts: &RecordOptions,
        components: Option<Vec<String>>,
    ) -> Result<Self> {
        let verify = !opts.no_verify;
        let record_kind = match (opts.kind, &components) {
            (_, Some(_)) => RecordKind::Tensor,
            (Some(k), None) => k,
            (None, None) => detect_kind(&shards, verify)?,
        };
        let mut c = RecordsContainer {
            path: path.to_path_buf(),
            shards,
            opts: opts.clone(),
            record_kind,
            entries: Vec::new(),
            sources: Vec::new(),
            spill: OnceLock::new(),
            features: Vec::new(),
            components,
        };
        let writer = match &opts.spill_dir {
            Some(dir) => Some(SpillWriter::new(dir, c.input_paths())?),
            None => None,
        };
        let mut layout = c.scan(writer)?;
        let features: std::collections::HashMap<String, String> =
            layout.cols.take_features().into_iter().collect();
        for (e, s) in layout.entries {
            c.features.push(features.get(&e.name).cloned());
            c.entries.push(e);
            c.sources.push(s);
        }
        if let Some(w) = layout.cols.into_writer() {
            let _ = c.spill.set(w.finish()?);
        }
        Ok(c)
    }

    fn input_paths(&self) -> Vec<PathBuf> {
        self.shards.iter().map(|s| s.path.clone()).collect()
    }

    fn sink(&self, cols: Cols) -> Box<dyn Sink> {
        if let Some(c) = &self.components {
            return Box::new(DatasetSink::new(cols, c, &stem(&self.path, &self.shards)));
        }
        match self.record_kind {
            RecordKind::Tensor => Box::new(TensorSink::new(cols, stem(&self.path, &self.shards))),
            RecordKind::Sequence => {
                Box::new(SequenceSink::new(cols, self.opts.ragged).strings(self.opts.strings))
            }
            RecordKind::Event => {
                let root = if self.path.is_dir() {
                    self.path.clone()
                } else {
                    self.shards
                        .first()
                        .and_then(|s| s.path.parent())
                        .map(Path::to_path_buf)
                        .unwrap_or_default()
                };
                Box::new(EventSink::new(cols, root))
            }
            _ => Box::new(ExampleSink::new(cols, self.opts.ragged).strings(self.opts.strings)),
        }
    }

    /// One pass over the records.
    fn scan(&self, writer: Option<SpillWriter>) -> Result<Layout> {
        let mut sink = self.sink(Cols::new(writer));
        let mut global = 0u64;
        // --skip / --take count elements: one record per component in a saved dataset.
        let per = self.components.as_ref().map_or(1, |c| c.len() as u64);
        let skip = self.opts.skip.saturating_mul(per);
        let end = self
            .opts
            .take
            .map(|t| skip.saturating_add(t.saturating_mul(per)));
        let mut buf = Vec::new();
        'shards: for (shard, s) in self.shards.iter().enumerate() {
            let file = Arc::new(s.path.clone());
            // Values can be referenced where the stream's offsets are the file's.
            let referable = s.compression == Compression::None;
            let mut r = reader(s, !self.opts.no_verify, true)?;
            loop {
                if end.is_some_and(|e| global >= e) {
                    break 'shards;
                }
                let (index, offset) = (r.index(), r.offset());
                let Some((rec, crc)) = r.next_record(&mut buf)? else {
                    break;
                };
                global += 1;
                if global <= skip {
                    continue;
                }
                let at = Place {
                    file: file.clone(),
                    index,
                    origin: u32::try_from(shard)
                        .ok()
                        .filter(|_| referable)
                        .map(|i| Origin {
                            shard: i,
                            offset: offset + super::framing::HEADER,
                            crc,
                        }),
                };
                let done = sink.record(rec, &at);
                done.map_err(|e| r.error_at(index, offset, e))?;
            }
        }
        sink.finish().map_err(|e| Error::corrupt(&self.path, e))
    }

    fn spill(&self) -> Result<&Spill> {
        if let Some(s) = self.spill.get() {
            return Ok(s);
        }
        let writer = SpillWriter::new(&std::env::temp_dir(), self.input_paths())?;
        let layout = self.scan(Some(writer))?;
        let same =
            layout.entries.len() == self.entries.len()
                && layout.entries.iter().zip(&self.entries).all(|((a, _), b)| {
                    a.name == b.name && a.shape == b.shape && a.dtype == b.dtype
                });
        if !same {
            return Err(Error::corrupt(
                &self.path,
                "the records changed while they were being read",
            ));
        }
        let Some(w) = layout.cols.into_writer() else {
            return Err(Error::usage("internal error: no spill"));
        };
        let _ = self.spill.set(w.finish()?);
        self.spill
            .get()
            .ok_or_else(|| Error::usage("internal error: no spill"))
    }
}

impl Container for RecordsContainer {
    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> &'static str {
        let c = self
            .shards
            .first()
            .map_or(Compression::None, |s| s.compression);
        if self.components.is_some() {
            return match c {
                Compression::None => "tf.data.Dataset.save folder",
                Compression::Gzip => "tf.data.Dataset.save folder (GZIP)",
                Compression::Zlib => "tf.data.Dataset.save folder (ZLIB)",
                Compression::Snappy => "tf.data.Dataset.save folder (SNAPPY)",
            };
        }
        match (self.record_kind, c) {
            (RecordKind::Event, _) => "TensorBoard event file(s)",
            (RecordKind::Tensor, Compression::None) => "TFRecord of TensorProto records",
            (RecordKind::Tensor, Compression::Gzip) => "TFRecord (GZIP) of TensorProto records",
            (RecordKind::Tensor, Compression::Zlib) => "TFRecord (ZLIB) of TensorProto records",
            (RecordKind::Tensor, Compression::Snappy) => "TFRecord (SNAPPY) of TensorProto records",
            (RecordKind::Sequence, Compression::None) => {
                "TFRecord of tf.train.SequenceExample records"
            }
            (RecordKind::Sequence, Compression::Gzip) => {
                "TFRecord (GZIP) of tf.train.SequenceExample records"
            }
            (RecordKind::Sequence, Compression::Zlib) => {
                "TFRecord (ZLIB) of tf.train.SequenceExample records"
            }
            (RecordKind::Sequence, Compression::Snappy) => {
                "TFRecord (SNAPPY) of tf.train.SequenceExample records"
            }
            (_, Compression::None) => "TFRecord of tf.train.Example records",
            (_, Compression::Gzip) => "TFRecord (GZIP) of tf.train.Example records",
            (_, Compression::Zlib) => "TFRecord (ZLIB) of tf.train.Example records",
            (_, Compression::Snappy) => "TFRecord (SNAPPY) of tf.train.Example records",
        }
    }

    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn open(&self, index: usize, _verify: bool) -> Result<RawTensor<'_>> {
        let spill = self.spill()?;
        Ok(match self.sources[index] {
            Source::Column {
                col,
                start,
                len,
                zero_prefix,
            } => {
                let prefix: &[u8] = if zero_prefix { &[0u8; 8] } else { &[] };
                RawTensor::Fixed(Box::new(spill.stream_range(col, start, len, prefix)))
            }
            Source::Strings {
                lens,
                data,
                first,
                data_start,
                count,
                max_len,
            } => RawTensor::Strings(Box::new(SpillStrings {
                lens: spill.stream_range(lens, first * 8, count * 8, &[]),
                data: spill.stream_range(data, data_start, u64::MAX, &[]),
                left: count,
                max_len,
                path: self.path.clone(),
            })),
        })
    }

    fn feature_name(&self, index: usize) -> Option<&str> {
        self.features.get(index)?.as_deref()
    }

    fn input_files(&self) -> Vec<(PathBuf, u64)> {
        self.shards
            .iter()
            .map(|s| (s.path.clone(), s.len))
            .collect()
    }
}

/// String elements from the spill: lengths, then bytes.
struct SpillStrings<'a> {
    lens: super::spill::SpillStream<'a>,
    data: super::spill::SpillStream<'a>,
    left: u64,
    max_len: u64,
    path: PathBuf,
}

impl StringRead for SpillStrings<'_> {
    fn max_len(&mut self) -> Result<u64> {
        Ok(self.max_len)
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        if self.left == 0 {
            return Ok(false);
        }
        let mut l = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            let n = self.lens.read(&mut l[got..])?;
            if n == 0 {
                return Err(Error::corrupt(&self.path, "the column spill is short"));
            }
            got += n;
        }
        let len = usize::try_from(u64::from_le_bytes(l))
            .map_err(|_| Error::corrupt(&self.path, "the column spill is damaged"))?;
        out.resize(len, 0);
        let mut got = 0;
        while got < len {
            let n = self.data.read(&mut out[got..])?;
            if n == 0 {
                return Err(Error::corrupt(&self.path, "the column spill is short"));
            }
            got += n;
        }
        self.left -= 1;
        Ok(true)
    }
}
