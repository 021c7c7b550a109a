//! `tf.data.Dataset.save` folders (docs/formats/tfrecord.md §6b): `dataset_spec.pb` (the
//! element structure, a `StructuredValue`), `snapshot.metadata` (a
//! `SnapshotMetadataRecord`) and `RUN/SHARD.shard/N.snapshot` TFRecord files whose records
//! are one `TensorProto` per component of each element, in flattened order.

use super::inputs::{sniff, Shard};
use super::sink::{Cols, Layout, Place, Sink};
use super::tensors::TensorColumn;
use super::wire::{Fields, Value};
use super::{RecordKind, RecordOptions};
use crate::error::{Error, Result};
use crate::formats::proto::{structured_value::Kind, StructuredValue};
use prost::Message;
use std::path::{Path, PathBuf};

/// The element structure file of a saved dataset.
pub const SPEC: &str = "dataset_spec.pb";
/// The metadata file of a saved dataset.
pub const METADATA: &str = "snapshot.metadata";

/// True if `dir` is a `Dataset.save` folder.
pub fn is_saved_dataset(dir: &Path) -> bool {
    dir.join(SPEC).is_file() && dir.join(METADATA).is_file()
}

/// The component names of `v`, in `tf.nest.flatten` order (dict keys sorted), as
/// slash-joined paths (tuple and list indices as numbers).
fn flatten(v: &StructuredValue, path: &str, out: &mut Vec<String>, file: &Path) -> Result<()> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}/{k}")
        }
    };
    match &v.kind {
        Some(Kind::TensorSpecValue(_)) => out.push(path.to_string()),
        Some(Kind::TupleValue(t)) => {
            for (i, x) in t.values.iter().enumerate() {
                flatten(x, &join(&i.to_string()), out, file)?;
            }
        }
        Some(Kind::ListValue(t)) => {
            for (i, x) in t.values.iter().enumerate() {
                flatten(x, &join(&i.to_string()), out, file)?;
            }
        }
        Some(Kind::DictValue(d)) => {
            let mut keys: Vec<&String> = d.fields.keys().collect();
            keys.sort();
            for k in keys {
                flatten(&d.fields[k], &join(k), out, file)?;
            }
        }
        Some(Kind::NamedTupleValue(t)) => {
            for p in &t.values {
                if let Some(x) = &p.value {
                    flatten(x, &join(&p.key), out, file)?;
                }
            }
        }
        Some(Kind::NoneValue(_)) => {}
        Some(Kind::TypeSpecValue(t)) => {
            return Err(Error::unsupported(
                file,
                format!(
                    "the dataset element holds a {} at `{path}`; only dense tensors are supported",
                    if t.type_spec_class_name.is_empty() {
                        "composite tensor"
                    } else {
                        &t.type_spec_class_name
                    }
                ),
            ))
        }
        None => {
            return Err(Error::corrupt(
                file,
                format!("an element structure value at `{path}` is empty"),
            ))
        }
    }
    Ok(())
}

/// `run_id` (field 2) of a `SnapshotMetadataRecord`
/// (tensorflow/core/protobuf/snapshot.proto).
fn run_id(meta: &[u8], file: &Path) -> Result<String> {
    let mut id = None;
    for f in Fields::new(meta) {
        match f.map_err(|e| Error::corrupt(file, format!("not a SnapshotMetadataRecord: {e}")))? {
            (2, Value::Len(v)) => id = Some(String::from_utf8_lossy(v).into_owned()),
            (2, _) => return Err(Error::corrupt(file, "run_id is not a string")),
            _ => {}
        }
    }
    id.filter(|s| !s.is_empty() && !s.contains(['/', '\\']) && s != "." && s != "..")
        .ok_or_else(|| {
            Error::corrupt(
                file,
                "no valid run_id: cannot tell which run folder holds the data",
            )
        })
}

/// The components and shards of the saved dataset `dir`.
pub fn resolve(dir: &Path, opts: &RecordOptions) -> Result<(Vec<String>, Vec<Shard>)> {
    let spec_path = dir.join(SPEC);
    let spec = super::super::read_proto_file(&spec_path)?;
    let spec = StructuredValue::decode(&spec[..])
        .map_err(|e| Error::corrupt(&spec_path, format!("not a StructuredValue: {e}")))?;
    let mut comps = Vec::new();
    flatten(&spec, "", &mut comps, &spec_path)?;
    if comps.is_empty() {
        return Err(Error::unsupported(
            &spec_path,
            "the dataset elements hold no tensor",
        ));
    }
    let meta_path = dir.join(METADATA);
    let run = dir.join(run_id(
        &super::super::read_proto_file(&meta_path)?,
        &meta_path,
    )?);
    let mut shard_dirs: Vec<PathBuf> = read_dir_sorted(&run)?
        .into_iter()
        .filter(|p| p.is_dir() && p.extension().is_some_and(|e| e == "shard"))
        .collect();
    shard_dirs.sort();
    let tensor_opts = RecordOptions {
        kind: Some(RecordKind::Tensor),
        ..opts.clone()
    };
    let mut shards = Vec::new();
    for d in shard_dirs {
        for f in read_dir_sorted(&d)? {
            if f.extension().is_none_or(|e| e != "snapshot") {
                continue;
            }
            let (compression, len) = sniff(&f, &tensor_opts)?
                .ok_or_else(|| Error::corrupt(&f, "not a TFRecord file under any compression"))?;
            shards.push(Shard {
                path: f,
                len,
                compression,
            });
        }
    }
    Ok((comps, shards))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        v.push(e.map_err(|e| Error::io(dir, e))?.path());
    }
    v.sort();
    Ok(v)
}

/// Collects the records of a saved dataset: record `j` is component `j % C`.
pub struct DatasetSink {
    cols: Cols,
    comps: Vec<TensorColumn>,
    next: usize,
    buf: Vec<u8>,
}

impl DatasetSink {
    /// One column per component, named by `names` (the folder name `stem` for a bare
    /// tensor element).
    pub fn new(mut cols: Cols, names: &[String], stem: &str) -> Self {
        let comps = names
            .iter()
            .map(|n| {
                TensorColumn::new(
                    &mut cols,
                    if n.is_empty() {
                        stem.to_string()
                    } else {
                        n.clone()
                    },
                )
            })
            .collect();
        DatasetSink {
            cols,
            comps,
            next: 0,
            buf: vec![0u8; 256 << 10],
        }
    }
}

impl Sink for DatasetSink {
    fn record(&mut self, rec: &[u8], at: &Place) -> Result<(), String> {
        self.cols.begin_record(rec, at);
        let c = &mut self.comps[self.next];
        c.add(&mut self.cols, &mut self.buf, rec, at)?;
        self.next = (self.next + 1) % self.comps.len();
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Layout, String> {
        if self.next != 0 {
            return Err(format!(
                "the records end inside an element ({} of its {} components)",
                self.next,
                self.comps.len()
            ));
        }
        let records = self.comps.first().map_or(0, |c| c.records());
        let mut entries = Vec::new();
        for c in self.comps {
            entries.extend(c.entries());
        }
        entries.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(Layout {
            records,
            entries,
            cols: self.cols,
        })
    }
}
