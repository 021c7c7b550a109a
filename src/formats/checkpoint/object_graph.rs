//! Variable names from a TF2 checkpoint's object graph (`--var-names`).
//!
//! A TF2 object-based checkpoint stores, in the hidden scalar string tensor
//! `_CHECKPOINTABLE_OBJECT_GRAPH`, a serialized `TrackableObjectGraph`
//! (tensorflow/core/protobuf/trackable_object_graph.proto). Each object lists its
//! attributes as `SerializedTensor { name, full_name, checkpoint_key }`, where
//! `full_name` is the variable's own name (`dense/kernel`, `adam/iteration`), the one
//! people know from the model, while the checkpoint key is the first object path that
//! reached it (`optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE` in Keras 3).
//! Checkpoints written by TF1 savers have no object graph: their keys are already the
//! variable names.

use crate::dtype::DataType;
use crate::error::{Ctx, Result};
use crate::formats::checkpoint::bundle::OBJECT_GRAPH_KEY;
use crate::formats::proto::TrackableObjectGraph;
use crate::source::{Container, RawTensor};
use prost::Message;
use std::collections::HashMap;

/// The `checkpoint_key -> full_name` pairs of a serialized `TrackableObjectGraph`,
/// leaving out attributes whose `full_name` is empty. A key listed twice with two
/// different names is refused (TensorFlow writes each key once).
pub fn full_names(bytes: &[u8]) -> std::result::Result<HashMap<String, String>, String> {
    let graph = TrackableObjectGraph::decode(bytes)
        .map_err(|e| format!("not a TrackableObjectGraph: {e}"))?;
    let mut names = HashMap::new();
    for attr in graph.nodes.iter().flat_map(|n| &n.attributes) {
        if attr.full_name.is_empty() || attr.checkpoint_key.is_empty() {
            continue;
        }
        match names.insert(attr.checkpoint_key.clone(), attr.full_name.clone()) {
            Some(old) if old != attr.full_name => {
                return Err(format!(
                    "checkpoint key `{}` is named both `{old}` and `{}`",
                    attr.checkpoint_key, attr.full_name
                ));
            }
            _ => {}
        }
    }
    Ok(names)
}

/// The variable name of each entry of `container` (a V2 bundle, by index), read from
/// its object graph entry; all `None` when it has none. The object graph is read with
/// its checksum verified; a damaged one is an error naming it.
pub fn variable_names(container: &dyn Container, ctx: &Ctx) -> Result<Vec<Option<String>>> {
    let entries = container.entries();
    let Some(index) = entries
        .iter()
        .position(|e| e.hidden && e.name == OBJECT_GRAPH_KEY)
    else {
        return Ok(vec![None; entries.len()]);
    };
    let gctx = ctx.tensor(OBJECT_GRAPH_KEY);
    let entry = &entries[index];
    if entry.dtype != DataType::String || !entry.shape.is_empty() {
        return Err(gctx.corrupt(format!(
            "expected a string scalar, found {} {:?}",
            entry.dtype, entry.shape
        )));
    }
    // A string scalar's payload is bounded by the stored bytes the reader already
    // checked against the data file's length.
    let RawTensor::Strings(mut strings) = container.open(index, true)? else {
        return Err(gctx.corrupt("expected a string tensor"));
    };
    let mut bytes = Vec::new();
    let mut extra = Vec::new();
    if !strings.next_into(&mut bytes)? || strings.next_into(&mut extra)? {
        return Err(gctx.corrupt("a scalar must hold exactly one string"));
    }
    let names = full_names(&bytes).map_err(|m| gctx.corrupt(m))?;
    Ok(entries
        .iter()
        .map(|e| names.get(&e.name).cloned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::proto::trackable_object_graph::{trackable_object, TrackableObject};

    fn attr(full: &str, key: &str) -> trackable_object::SerializedTensor {
        trackable_object::SerializedTensor {
            name: "VARIABLE_VALUE".into(),
            full_name: full.into(),
            checkpoint_key: key.into(),
        }
    }

    fn graph(attrs: Vec<trackable_object::SerializedTensor>) -> Vec<u8> {
        TrackableObjectGraph {
            nodes: vec![
                TrackableObject::default(),
                TrackableObject {
                    attributes: attrs,
                    ..Default::default()
                },
            ],
        }
        .encode_to_vec()
    }

    #[test]
    fn maps_keys_to_full_names_skipping_empty_ones() {
        let names = full_names(&graph(vec![
            attr(
                "dense/kernel",
                "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE",
            ),
            attr("", "x/.ATTRIBUTES/VARIABLE_VALUE"),
        ]))
        .unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!(
            names["optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"],
            "dense/kernel"
        );
    }

    #[test]
    fn refuses_garbage_and_contradictions() {
        assert!(full_names(b"\x0a\xff\xff\xff\xff\x0f").is_err());
        let err = full_names(&graph(vec![attr("a", "k"), attr("b", "k")])).unwrap_err();
        assert!(err.contains("`k`"), "{err}");
        // The same pair twice is fine.
        assert_eq!(
            full_names(&graph(vec![attr("a", "k"), attr("a", "k")]))
                .unwrap()
                .len(),
            1
        );
    }
}
