//! Input detection and the readers, one module per TensorFlow container format.
//!
//! [`open`] decides what a path is by its layout and content, not by its name alone:
//! a checkpoint (prefix, `.index`, `.data-*`, or a folder), or a protobuf file
//! (TensorProto, GraphDef, SavedModel), and returns a validated [`Container`].

pub mod checkpoint;
pub mod graph;
pub mod hdf5;
pub mod io;
pub mod proto;
pub mod records;
pub mod sniff;
pub mod tensor;

use checkpoint::locate;
use graph::{graphdef, savedmodel};
use tensor::{serialized_sparse, tensorproto};

use crate::densify::SparseMode;
use crate::error::{Error, Result};
use crate::source::Container;
use std::path::Path;

/// Checks a `VersionDef` the way TensorFlow's `CheckVersions` does: the producer must
/// be at least `min_producer`, the file must not need a newer reader than `version`, and
/// `version` must not be listed as a bad consumer. `what` names the format in messages.
pub(crate) fn check_versions(
    v: Option<&proto::VersionDef>,
    what: &str,
    version: i32,
    min_producer: i32,
    ctx: &crate::error::Ctx,
) -> Result<()> {
    let Some(v) = v else {
        return Ok(());
    };
    if v.producer < min_producer {
        return Err(ctx.unsupported(format!(
            "{what} format version {} is older than the oldest supported ({min_producer})",
            v.producer
        )));
    }
    if v.min_consumer > version {
        return Err(ctx.unsupported(format!(
            "{what} needs a reader of format version {} or newer; tf2npy reads version {version}",
            v.min_consumer
        )));
    }
    if v.bad_consumers.contains(&version) {
        return Err(ctx.unsupported(format!(
            "{what} disallows readers of format version {version}, which tf2npy is"
        )));
    }
    Ok(())
}

/// Largest protobuf file tf2npy will read whole (protobuf's own limit is 2 GiB).
pub const MAX_PROTO_FILE_BYTES: u64 = 2 << 30;

/// How inputs are read: options that change which entries a container lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// SavedModel: also list the `Const` tensors of every meta graph and its functions
    /// (`--constants`).
    pub constants: bool,
    /// A serialized sparse tensor is listed as its dense tensor (`Densify`) or as its
    /// three parts (`Keep`) (`--sparse`).
    pub sparse: SparseMode,
    /// TFRecord inputs: compression, record kind, layout, part, spill folder.
    pub records: records::RecordOptions,
}

/// Opens `path` as whatever TensorFlow container it is.
///
/// A folder holding `saved_model.pb` is a SavedModel; other folders, prefixes and the
/// files of a checkpoint go to the checkpoint reader; any other file is a protobuf
/// whose kind is decided by parsing (SavedModel, GraphDef, then TensorProto, which may
/// hold a serialized sparse tensor).
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Box<dyn Container>> {
    if path.is_dir() {
        let pb = path.join(savedmodel::SAVED_MODEL_PB);
        if pb.is_file() {
            let bytes = read_proto_file(&pb)?;
            let model = savedmodel::decode(&bytes)
                .map_err(|why| Error::corrupt(&pb, format!("not a SavedModel: {why}")))?;
            let sm = savedmodel::SavedModelDir::new(path, &pb, bytes.len() as u64, model, opts)?;
            return Ok(Box::new(sm));
        }
        for (file, form) in savedmodel::UNSUPPORTED_GRAPH_FILES {
            let graph = path.join(file);
            if graph.is_file() {
                return Err(Error::unsupported(
                    &graph,
                    format!(
                        "{form} SavedModels are not supported; the variables can be \
                         converted with `tf2npy {}`",
                        path.join("variables").join("variables").display()
                    ),
                ));
            }
        }
    }
    if path.is_file() {
        if let Some(h5) = hdf5::keras::try_open(path)? {
            return Ok(Box::new(h5));
        }
        if let Some(sharded) = hdf5::sharded::try_open(path)? {
            return Ok(Box::new(sharded));
        }
    }
    if let Some(c) = records::try_open(path, &opts.records)? {
        return Ok(c);
    }
    if path.is_file() && !locate::is_checkpoint_file(path)? {
        return open_protobuf_file(path, opts);
    }
    locate::open_checkpoint(path)
}

/// Reads a whole protobuf file, refusing files over protobuf's 2 GiB limit.
fn read_proto_file(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_PROTO_FILE_BYTES {
        let first = sniff::read_first(path).map_err(|e| Error::io(path, e))?;
        return Err(sniff::not_readable(
            path,
            &first,
            format!(
                "{len} bytes is larger than any protobuf file (2 GiB limit) and not a checkpoint"
            ),
        ));
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// What a protobuf file's bytes are, decided by parsing.
enum Detected {
    SavedModel(proto::SavedModel),
    GraphDef(proto::GraphDef),
    TensorProto(Box<tensorproto::TensorProtoFile>),
}

/// Decides what `bytes` (the content of `path`) hold. protobuf decoding skips unknown
/// fields, so decoding alone accepts almost anything; each kind must also pass
/// structural checks, tried in this order:
///
/// 1. SavedModel: starts with field 1 (varint) or field 2, decodes, and has a meta
///    graph whose graph has a node with a name and a plausible op.
/// 2. GraphDef: decodes and every top-level node has a name and a plausible op (at
///    least one node). A TensorProto or SavedModel starts with field 1 as a varint,
///    which is a wire-type error for `GraphDef.node`, so neither passes.
/// 3. TensorProto: decodes with a valid dtype (1..=33 or a `_REF` value) and a valid
///    shape. A GraphDef's field 1 is length-delimited, a wire-type error for `dtype`.
fn detect(path: &Path, bytes: &[u8]) -> Result<Detected> {
    let saved = match savedmodel::decode(bytes) {
        Ok(m) => return Ok(Detected::SavedModel(m)),
        Err(why) => why,
    };
    let graph = match graphdef::decode(bytes) {
        Ok(g) => return Ok(Detected::GraphDef(g)),
        Err(why) => why,
    };
    match tensorproto::TensorProtoFile::parse(path, bytes) {
        Ok(t) => Ok(Detected::TensorProto(Box::new(t))),
        Err(e) => {
            let tp = match e {
                Error::Corrupt { detail, .. } => detail,
                other => return Err(other),
            };
            let why = if bytes.is_empty() {
                "the file is empty".to_string()
            } else {
                format!("as a TensorProto, {tp}; as a GraphDef, {graph}; as a SavedModel, {saved}")
            };
            let why = format!("not a TensorProto, GraphDef or SavedModel: {why}");
            Err(sniff::not_readable(path, bytes, why))
        }
    }
}

/// Opens a file that is not part of a checkpoint: a serialized `SavedModel` (its
/// variables are read from the `variables/` folder next to it), `GraphDef` or
/// `TensorProto`; a string TensorProto holding a serialized sparse tensor becomes a
/// sparse tensor.
fn open_protobuf_file(path: &Path, opts: &OpenOptions) -> Result<Box<dyn Container>> {
    let bytes = read_proto_file(path)?;
    let len = bytes.len() as u64;
    Ok(match detect(path, &bytes)? {
        Detected::SavedModel(m) => {
            Box::new(savedmodel::SavedModelDir::new(path, path, len, m, opts)?)
        }
        Detected::GraphDef(g) => Box::new(graphdef::GraphDefFile::new(path, len, g)?),
        Detected::TensorProto(t) => {
            match serialized_sparse::detect(&t, opts.sparse == SparseMode::Keep)? {
                Some(sp) => Box::new(sp),
                None => t,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
    }

    fn kind(path: &Path, bytes: &[u8]) -> &'static str {
        match detect(path, bytes) {
            Ok(Detected::SavedModel(_)) => "savedmodel",
            Ok(Detected::GraphDef(_)) => "graphdef",
            Ok(Detected::TensorProto(_)) => "tensorproto",
            Err(_) => "error",
        }
    }

    #[test]
    fn every_tensorproto_fixture_is_a_tensorproto() {
        let mut n = 0;
        for dir in ["tensorproto", "sparse"] {
            for f in std::fs::read_dir(fixtures().join(dir)).unwrap() {
                let p = f.unwrap().path();
                let bytes = std::fs::read(&p).unwrap();
                assert_eq!(kind(&p, &bytes), "tensorproto", "{}", p.display());
                n += 1;
            }
        }
        assert!(n > 130);
    }

    #[test]
    fn graphdef_and_savedmodel_fixtures_detect() {
        let g = fixtures().join("graphdef/frozen.pb");
        assert_eq!(kind(&g, &std::fs::read(&g).unwrap()), "graphdef");
        let s = fixtures().join("savedmodel/module/saved_model.pb");
        let bytes = std::fs::read(&s).unwrap();
        assert_eq!(kind(&s, &bytes), "savedmodel");
        // The bytes are no GraphDef or TensorProto either.
        assert!(graphdef::decode(&bytes).is_err());
        assert!(tensorproto::TensorProtoFile::parse(&s, &bytes).is_err());
        let gbytes = std::fs::read(&g).unwrap();
        assert!(savedmodel::decode(&gbytes).is_err());
        assert!(tensorproto::TensorProtoFile::parse(&g, &gbytes).is_err());
    }

    #[test]
    fn tensorproto_is_not_mistaken_for_graph_or_model() {
        use proto::tensor_shape_proto::Dim;
        // A [0]-shaped tensor decodes as a SavedModel whose meta graph has an empty
        // graph_def (shape -> meta_graphs, dim -> graph_def): it must not pass.
        let tp = proto::TensorProto {
            dtype: 1,
            tensor_shape: Some(proto::TensorShapeProto {
                dim: vec![Dim {
                    size: 0,
                    name: String::new(),
                }],
                unknown_rank: false,
            }),
            ..Default::default()
        };
        let bytes = tp.encode_to_vec();
        assert!(proto::SavedModel::decode(&bytes[..]).is_ok());
        assert_eq!(kind(Path::new("t.pb"), &bytes), "tensorproto");
        // A named dim decodes the name as GraphDef.library: still no nodes.
        let tp = proto::TensorProto {
            dtype: 7,
            tensor_shape: Some(proto::TensorShapeProto {
                dim: vec![Dim {
                    size: 0,
                    name: "\n\0".into(),
                }],
                unknown_rank: false,
            }),
            string_val: vec![b"x".to_vec()],
            ..Default::default()
        };
        assert_eq!(kind(Path::new("t.pb"), &tp.encode_to_vec()), "tensorproto");
    }

    #[test]
    fn graphdef_is_not_mistaken_for_tensorproto() {
        let mut attr = std::collections::HashMap::new();
        attr.insert(
            "value".to_string(),
            proto::AttrValue {
                value: Some(proto::attr_value::Value::Tensor(Box::new(
                    proto::TensorProto {
                        dtype: 1,
                        ..Default::default()
                    },
                ))),
            },
        );
        let g = proto::GraphDef {
            node: vec![proto::NodeDef {
                name: "c".into(),
                op: "Const".into(),
                attr,
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = g.encode_to_vec();
        assert!(proto::TensorProto::decode(&bytes[..]).is_err());
        assert_eq!(kind(Path::new("g.pb"), &bytes), "graphdef");
        // Wrapped in a SavedModel it is a SavedModel, not a GraphDef.
        let sm = proto::SavedModel {
            saved_model_schema_version: 1,
            meta_graphs: vec![proto::MetaGraphDef {
                graph_def: Some(g),
                ..Default::default()
            }],
        };
        assert_eq!(kind(Path::new("s.pb"), &sm.encode_to_vec()), "savedmodel");
    }

    #[test]
    fn garbage_is_corrupt_naming_the_file() {
        for bytes in [&b""[..], b"\xff\xff\xff", b"hello world"] {
            let err = detect(Path::new("junk.bin"), bytes).err().unwrap();
            let msg = err.to_string();
            assert!(matches!(err, Error::Corrupt { .. }), "{msg}");
            assert!(
                msg.starts_with("junk.bin: not a TensorProto, GraphDef or SavedModel: "),
                "{msg}"
            );
        }
    }
}
