//! SavedModel folders (`saved_model.pb` + `variables/variables.{index,data-*}`,
//! tf-formats.md §8.1–§8.3): the variables are the V2 bundle's entries, named and
//! hidden exactly as in the bundle. With `--constants`, the `Const` tensors of every
//! meta graph's `graph_def` and function library are listed too, named as in a frozen
//! GraphDef (`<node>` or `<function>/<node>`; see [`crate::formats::graph::graphdef`]).
//!
//! A SavedModel without variables (no `variables/` folder, or one without
//! `variables.index`) is valid: it has only constants.

use crate::error::{Ctx, Error, Result};
use crate::formats::checkpoint::locate;
use crate::formats::graph::graphdef::{self, ConstTensors};
use crate::formats::proto::SavedModel;
use crate::formats::OpenOptions;
use crate::source::{Container, Entry, RawTensor};
use prost::Message;
use std::path::{Path, PathBuf};

/// The file name of a SavedModel's graph inside its folder.
pub const SAVED_MODEL_PB: &str = "saved_model.pb";
/// Other forms TensorFlow writes a SavedModel's graph in, which tf2npy does not
/// read: the text form, and the chunked "image format" of the proto splitter
/// (`SaveOptions(experimental_image_format=True)`, for graphs over 2 GiB). The
/// variables of such a model are an ordinary bundle under `variables/`.
pub const UNSUPPORTED_GRAPH_FILES: [(&str, &str); 2] = [
    ("saved_model.pbtxt", "text-format"),
    ("saved_model.cpb", "chunked (proto splitter image format)"),
];

/// Decodes `bytes` as a `SavedModel` if it is one: the first field must be field 1
/// (varint `saved_model_schema_version`) or field 2 (`meta_graphs`), the message must
/// decode, and some meta graph must hold a graph with a named node. `Err` says why not.
pub fn decode(bytes: &[u8]) -> std::result::Result<SavedModel, String> {
    match bytes.first() {
        Some(0x08) | Some(0x12) => {}
        Some(b) => {
            return Err(format!(
                "starts with byte {b:#04x}, not field 1 (varint) or field 2"
            ))
        }
        None => return Err("empty".to_string()),
    }
    crate::formats::graph::prescan::check(bytes, &crate::formats::graph::prescan::SAVED_MODEL)?;
    let model = SavedModel::decode(bytes).map_err(|e| e.to_string())?;
    if model.meta_graphs.is_empty() {
        return Err("no meta graphs".to_string());
    }
    let has_graph = model
        .meta_graphs
        .iter()
        .any(|m| m.graph_def.as_ref().is_some_and(graphdef::has_any_nodes));
    if !has_graph {
        return Err("no meta graph holds a graph with nodes".to_string());
    }
    Ok(model)
}

/// Where an entry of a SavedModel comes from.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// An entry of the variables bundle.
    Variable(usize),
    /// A constant of the graph.
    Const(usize),
}

/// An opened SavedModel.
pub struct SavedModelDir {
    path: PathBuf,
    pb_path: PathBuf,
    pb_len: u64,
    variables: Option<Box<dyn Container>>,
    consts: ConstTensors,
    slots: Vec<Slot>,
    entries: Vec<Entry>,
}

impl SavedModelDir {
    /// Opens the SavedModel whose graph file `pb_path` (`pb_len` bytes) decoded as
    /// `model`; `path` is what the user typed (the folder or the `.pb` file). The
    /// variables are read from `variables/variables` next to `pb_path`.
    pub fn new(
        path: &Path,
        pb_path: &Path,
        pb_len: u64,
        model: SavedModel,
        opts: &OpenOptions,
    ) -> Result<Self> {
        let dir = match pb_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let variables = open_variables(&dir)?;
        let mut consts = ConstTensors::new();
        if opts.constants {
            let ctx = Ctx::file(pb_path);
            for (i, mg) in model.meta_graphs.into_iter().enumerate() {
                if let Some(g) = mg.graph_def {
                    consts.add_graph(g, Some(&format!("meta_graph_{i}/")), &ctx)?;
                }
            }
        }
        let mut items: Vec<(Slot, Entry)> = Vec::new();
        if let Some(v) = &variables {
            items.extend(
                v.entries()
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (Slot::Variable(i), e.clone())),
            );
        }
        items.extend(
            consts
                .entries()
                .iter()
                .enumerate()
                .map(|(i, e)| (Slot::Const(i), e.clone())),
        );
        items.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        let (slots, entries) = items.into_iter().unzip();
        Ok(SavedModelDir {
            path: path.to_path_buf(),
            pb_path: pb_path.to_path_buf(),
            pb_len,
            variables,
            consts,
            slots,
            entries,
        })
    }
}

/// Opens `dir/variables/variables` if the SavedModel has variables.
fn open_variables(dir: &Path) -> Result<Option<Box<dyn Container>>> {
    let vars = dir.join("variables");
    let index = vars.join("variables.index");
    if index.is_file() {
        return locate::open_checkpoint(&vars.join("variables")).map(Some);
    }
    if let Ok(list) = std::fs::read_dir(&vars) {
        let has_data = list.filter_map(|e| e.ok()).any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("variables.data-")
        });
        if has_data {
            return Err(Error::corrupt(
                &index,
                "missing, but the SavedModel's variables folder holds data files",
            ));
        }
    }
    Ok(None)
}

impl Container for SavedModelDir {
    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> &'static str {
        "TensorFlow SavedModel"
    }

    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn open(&self, index: usize, verify: bool) -> Result<RawTensor<'_>> {
        match self.slots[index] {
            Slot::Variable(i) => match &self.variables {
                Some(v) => v.open(i, verify),
                None => Err(Error::usage("internal error: SavedModel has no variables")),
            },
            Slot::Const(i) => self.consts.open(i, &Ctx::file(&self.pb_path)),
        }
    }

    fn variable_names(&self) -> Result<Vec<Option<String>>> {
        let names = match &self.variables {
            Some(v) => v.variable_names()?,
            None => Vec::new(),
        };
        Ok(self
            .slots
            .iter()
            .map(|slot| match slot {
                Slot::Variable(i) => names.get(*i).cloned().flatten(),
                Slot::Const(_) => None,
            })
            .collect())
    }

    fn input_files(&self) -> Vec<(PathBuf, u64)> {
        let mut files = vec![(self.pb_path.clone(), self.pb_len)];
        if let Some(v) = &self.variables {
            files.extend(v.input_files());
        }
        files
    }
}
