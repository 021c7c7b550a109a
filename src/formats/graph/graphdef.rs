//! Frozen GraphDefs (a bare `GraphDef` in a `.pb`, as written by
//! `convert_variables_to_constants_v2` or TF1's `freeze_graph`): the tensors of the
//! `Const` nodes, named by node name; constants inside the function library are named
//! `<function signature name>/<node name>` (tf-formats.md §8.3).
//!
//! [`ConstTensors`] collects the constants of any `GraphDef` and is shared with the
//! SavedModel reader (`--constants`).

use crate::error::{Ctx, Result};
use crate::formats::proto::{attr_value, GraphDef, NodeDef, TensorProto};
use crate::formats::tensor::tensorproto::{describe, open_tensor};
use crate::source::{Container, Entry, RawTensor};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Ops whose `value` attribute is the tensor they output. `HostConst` is `Const` pinned
/// to host memory; it carries the same attributes.
const CONST_OPS: &[&str] = &["Const", "HostConst"];

/// The `Const` tensors of one or more graphs, moved out of their decoded `GraphDef`s
/// (the rest of each graph is dropped).
#[derive(Default)]
pub struct ConstTensors {
    entries: Vec<Entry>,
    protos: Vec<TensorProto>,
    by_name: HashMap<String, usize>,
}

impl ConstTensors {
    /// No constants yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the `Const` nodes of `graph`: the top-level nodes under their node names,
    /// then each library function's nodes as `<function name>/<node name>`.
    ///
    /// A name already taken by an identical tensor is not added twice. A name taken by a
    /// different tensor is renamed `<clash_prefix><name>` when `clash_prefix` is given
    /// (further meta graphs of a SavedModel) and is an error otherwise.
    pub fn add_graph(
        &mut self,
        graph: GraphDef,
        clash_prefix: Option<&str>,
        ctx: &Ctx,
    ) -> Result<()> {
        let GraphDef { node, library, .. } = graph;
        for n in node {
            self.add_node(n, None, clash_prefix, ctx)?;
        }
        for (i, f) in library.into_iter().flat_map(|l| l.function).enumerate() {
            let fname = f.signature.map(|s| s.name).unwrap_or_default();
            for n in f.node_def {
                if fname.is_empty() && is_const(&n) {
                    return Err(ctx.corrupt(format!(
                        "function {i} of the graph's library has no name but holds Const node `{}`",
                        n.name
                    )));
                }
                self.add_node(n, Some(&fname), clash_prefix, ctx)?;
            }
        }
        Ok(())
    }

    fn add_node(
        &mut self,
        node: NodeDef,
        function: Option<&str>,
        clash_prefix: Option<&str>,
        ctx: &Ctx,
    ) -> Result<()> {
        if !is_const(&node) {
            return Ok(());
        }
        let NodeDef {
            name, op, mut attr, ..
        } = node;
        let full = match function {
            Some(f) => format!("{f}/{name}"),
            None => name,
        };
        if full.is_empty() || full.ends_with('/') {
            return Err(ctx.corrupt(format!("a {op} node has no name")));
        }
        let tensor = match attr.remove("value").and_then(|a| a.value) {
            Some(attr_value::Value::Tensor(t)) => *t,
            _ => {
                return Err(ctx
                    .tensor(&full)
                    .corrupt(format!("{op} node has no tensor `value` attribute")))
            }
        };
        let name = match self.by_name.get(&full) {
            None => full,
            Some(&j) if self.protos[j] == tensor => return Ok(()),
            Some(_) => match clash_prefix {
                Some(p) => format!("{p}{full}"),
                None => {
                    return Err(ctx.tensor(&full).corrupt(
                        "two different constants have this name (node names must be unique)",
                    ))
                }
            },
        };
        if self.by_name.contains_key(&name) {
            return Err(ctx
                .tensor(&name)
                .corrupt("two different constants have this name"));
        }
        let mut entry = describe(&tensor, &name, ctx)?;
        entry.location = format!(
            "{} {op} node, {}",
            if function.is_some() {
                "function"
            } else {
                "graph"
            },
            entry.location
        )
        .into();
        self.by_name.insert(name, self.entries.len());
        self.entries.push(entry);
        self.protos.push(tensor);
        Ok(())
    }

    /// The constants, in the order they were added.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Opens constant `index` for streaming; `ctx` names the file.
    pub fn open(&self, index: usize, ctx: &Ctx) -> Result<RawTensor<'_>> {
        let e = &self.entries[index];
        open_tensor(&self.protos[index], e.dtype, &e.shape, &ctx.tensor(&e.name))
    }
}

fn is_const(node: &NodeDef) -> bool {
    CONST_OPS.contains(&node.op.as_str())
}

/// True for a node with a name and an op name made of the characters TensorFlow allows
/// in op names (`[A-Za-z0-9_>.]`), which other messages decoded as a `NodeDef` lack.
fn plausible(node: &NodeDef) -> bool {
    !node.name.is_empty()
        && !node.op.is_empty()
        && node
            .op
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'>' || b == b'.')
}

/// True when `graph` has top-level nodes and each has a name and a plausible op, as in
/// every real `GraphDef`.
pub fn has_top_level_nodes(graph: &GraphDef) -> bool {
    !graph.node.is_empty() && graph.node.iter().all(plausible)
}

/// True when `graph` has a plausible node at the top level or in a function.
pub fn has_any_nodes(graph: &GraphDef) -> bool {
    graph.node.iter().any(plausible)
        || graph
            .library
            .iter()
            .flat_map(|l| &l.function)
            .any(|f| f.node_def.iter().any(plausible))
}

/// Decodes `bytes` as a `GraphDef` if it is one: it must decode and have top-level
/// nodes, each with a name and a plausible op. `Err` says why not.
pub fn decode(bytes: &[u8]) -> std::result::Result<GraphDef, String> {
    crate::formats::graph::prescan::check(bytes, &crate::formats::graph::prescan::GRAPH)?;
    let graph = GraphDef::decode(bytes).map_err(|e| e.to_string())?;
    if !has_top_level_nodes(&graph) {
        return Err("no top-level nodes, or nodes without a name or op".to_string());
    }
    Ok(graph)
}

/// A frozen `GraphDef` file: its `Const` tensors.
pub struct GraphDefFile {
    path: PathBuf,
    file_len: u64,
    consts: ConstTensors,
    /// Indices into `consts`, in name order.
    order: Vec<usize>,
    entries: Vec<Entry>,
}

impl GraphDefFile {
    /// Collects the constants of `graph`, decoded from `path` (`file_len` bytes).
    pub fn new(path: &Path, file_len: u64, graph: GraphDef) -> Result<Self> {
        let mut consts = ConstTensors::new();
        consts.add_graph(graph, None, &Ctx::file(path))?;
        let mut order: Vec<usize> = (0..consts.entries().len()).collect();
        order.sort_by(|&a, &b| consts.entries()[a].name.cmp(&consts.entries()[b].name));
        let entries = order.iter().map(|&i| consts.entries()[i].clone()).collect();
        Ok(GraphDefFile {
            path: path.to_path_buf(),
            file_len,
            consts,
            order,
            entries,
        })
    }
}

impl Container for GraphDefFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> &'static str {
        "TensorFlow GraphDef (frozen graph)"
    }

    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn open(&self, index: usize, _verify: bool) -> Result<RawTensor<'_>> {
        self.consts.open(self.order[index], &Ctx::file(&self.path))
    }

    fn input_files(&self) -> Vec<(PathBuf, u64)> {
        vec![(self.path.clone(), self.file_len)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::proto::{AttrValue, FunctionDef, FunctionDefLibrary, OpDef};

    fn node(name: &str, op: &str, value: Option<TensorProto>) -> NodeDef {
        let mut attr = HashMap::new();
        if let Some(t) = value {
            attr.insert(
                "value".to_string(),
                AttrValue {
                    value: Some(attr_value::Value::Tensor(Box::new(t))),
                },
            );
        }
        NodeDef {
            name: name.into(),
            op: op.into(),
            attr,
            ..Default::default()
        }
    }

    fn scalar(v: f32) -> TensorProto {
        TensorProto {
            dtype: 1,
            float_val: vec![v],
            ..Default::default()
        }
    }

    #[test]
    fn names_function_constants_by_signature() {
        let graph = GraphDef {
            node: vec![
                node("c", "Const", Some(scalar(1.0))),
                node("x", "Placeholder", None),
            ],
            library: Some(FunctionDefLibrary {
                function: vec![FunctionDef {
                    signature: Some(OpDef { name: "f".into() }),
                    node_def: vec![node("c", "Const", Some(scalar(2.0)))],
                }],
            }),
            ..Default::default()
        };
        let mut c = ConstTensors::new();
        c.add_graph(graph, None, &Ctx::file("g.pb")).unwrap();
        let names: Vec<&str> = c.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["c", "f/c"]);
    }

    #[test]
    fn const_without_value_is_corrupt() {
        let graph = GraphDef {
            node: vec![node("c", "Const", None)],
            ..Default::default()
        };
        let err = ConstTensors::new()
            .add_graph(graph, None, &Ctx::file("g.pb"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("g.pb: tensor `c`"), "{err}");
    }

    #[test]
    fn clashing_names_dedupe_or_get_prefixed() {
        let mut c = ConstTensors::new();
        let g = |v| GraphDef {
            node: vec![node("c", "Const", Some(scalar(v)))],
            ..Default::default()
        };
        let ctx = Ctx::file("m.pb");
        c.add_graph(g(1.0), Some("meta_graph_0/"), &ctx).unwrap();
        c.add_graph(g(1.0), Some("meta_graph_1/"), &ctx).unwrap();
        c.add_graph(g(2.0), Some("meta_graph_2/"), &ctx).unwrap();
        let names: Vec<&str> = c.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["c", "meta_graph_2/c"]);
        assert!(ConstTensors::new()
            .add_graph(
                GraphDef {
                    node: vec![
                        node("c", "Const", Some(scalar(1.0))),
                        node("c", "Const", Some(scalar(2.0)))
                    ],
                    ..Default::default()
                },
                None,
                &ctx
            )
            .is_err());
    }
}
