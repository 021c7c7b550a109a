//! Sharded Keras 3 saves (`model.save_weights("m.weights.json", max_shard_size=...)`):
//! a JSON map `{"metadata": ..., "weight_map": {"/layers/dense/vars": ["m_00000.weights.h5"],
//! ...}}` and the shard files beside it, each an ordinary `.weights.h5`
//! [src: keras:src/saving/saving_lib.py `ShardedH5IOStore`] (docs/formats/hdf5.md §7).
//! The shards must be plain file names in the JSON's folder: nothing else is opened.

use super::{find_signature, open_window, Hdf5Container};
use crate::error::{Ctx, Error, Result};
use crate::formats::io::InputFile;
use crate::source::{Container, Entry, RawTensor};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest sharding map read (real ones list one line per layer).
const MAX_JSON_BYTES: u64 = 64 << 20;

/// A sharded save, its shards opened.
pub struct ShardedKeras {
    path: PathBuf,
    json_len: u64,
    shards: Vec<(PathBuf, Hdf5Container)>,
    /// (shard, entry index in the shard), by merged entry.
    index: Vec<(usize, usize)>,
    entries: Vec<Entry>,
}

/// Opens `path` if it is a Keras sharding map; `Ok(None)` if it is not one (not JSON, or
/// no `weight_map`).
pub fn try_open(path: &Path) -> Result<Option<ShardedKeras>> {
    let file = InputFile::open(path)?;
    if file.len() > MAX_JSON_BYTES || file.is_empty() {
        return Ok(None);
    }
    let mut first = [0u8; 1];
    file.read_exact_at(0, &mut first)?;
    // JSON, not a protobuf (which may well start with `\n`): `{`, or a `.json` name.
    let json_name = path.extension().is_some_and(|e| e == "json");
    if first[0] != b'{' && !(json_name && first[0].is_ascii_whitespace()) {
        return Ok(None);
    }
    let text = file.read_range(0, file.len(), "sharding map")?;
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return Ok(None);
    };
    let Some(map) = json.get("weight_map").and_then(|m| m.as_object()) else {
        return Ok(None);
    };
    let ctx = Ctx::file(path);
    let mut names = BTreeSet::new();
    for (group, files) in map {
        let list: Vec<&serde_json::Value> = match files {
            serde_json::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for f in list {
            let Some(name) = f.as_str() else {
                return Err(ctx.corrupt(format!("weight_map[`{group}`] is not a file name")));
            };
            let plain = Path::new(name);
            if name.is_empty()
                || plain.components().count() != 1
                || plain.file_name().is_none_or(|n| n != name)
            {
                return Err(ctx.unsupported(format!(
                    "shard `{name}` is not a plain file name in the map's folder; tf2npy opens \
                     no other files"
                )));
            }
            names.insert(name.to_string());
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut shards = Vec::new();
    for name in names {
        let p = dir.join(&name);
        let f = Arc::new(InputFile::open(&p)?);
        let len = f.len();
        if find_signature(&f, 0, len)?.is_none() {
            return Err(Error::corrupt(&p, "a shard that is not an HDF5 file"));
        }
        shards.push((p.clone(), open_window(&p, f, 0, len, false)?));
    }
    let mut merged: Vec<(String, usize, usize)> = Vec::new();
    for (s, (_, c)) in shards.iter().enumerate() {
        for (i, e) in c.entries().iter().enumerate() {
            merged.push((e.name.clone(), s, i));
        }
    }
    merged.sort();
    for w in merged.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(ctx.corrupt(format!(
                "dataset `{}` is in two shards, `{}` and `{}`",
                w[0].0,
                shards[w[0].1].0.display(),
                shards[w[1].1].0.display()
            )));
        }
    }
    let entries = merged
        .iter()
        .map(|(_, s, i)| {
            let mut e = shards[*s].1.entries()[*i].clone();
            let shard = shards[*s]
                .0
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            e.location = format!("{} {}", shard.unwrap_or_default(), e.location).into();
            e
        })
        .collect();
    Ok(Some(ShardedKeras {
        path: path.to_path_buf(),
        json_len: file.len(),
        index: merged.iter().map(|(_, s, i)| (*s, *i)).collect(),
        shards,
        entries,
    }))
}

impl Container for ShardedKeras {
    /// Keras layer names can coincide for distinct datasets (equal data included).
    fn identical_copies_are_one_variable(&self) -> bool {
        false
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> &'static str {
        "Keras sharded .weights.json"
    }

    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn open(&self, index: usize, verify: bool) -> Result<RawTensor<'_>> {
        let Some(&(s, i)) = self.index.get(index) else {
            return Err(Error::usage(format!("no entry {index}")));
        };
        self.shards[s].1.open(i, verify)
    }

    fn input_files(&self) -> Vec<(PathBuf, u64)> {
        let mut v = vec![(self.path.clone(), self.json_len)];
        v.extend(self.shards.iter().flat_map(|(_, c)| c.input_files()));
        v
    }

    fn variable_name_notes(&self) -> Vec<String> {
        // Shards hold no config.json: one note for all the layers, whichever shard.
        let mut vars_names = HashMap::new();
        let mut groups: Vec<super::names::VarsGroup> = Vec::new();
        for (_, c) in &self.shards {
            vars_names.extend(c.vars_names().iter().map(|(k, v)| (k.clone(), v.clone())));
            groups.extend(c.vars_groups());
        }
        for g in &mut groups {
            if g.name.is_empty() {
                g.name = vars_names.get(&g.path).cloned().unwrap_or_default();
            }
        }
        super::names::name(None, &groups, &vars_names).notes
    }

    fn variable_names(&self) -> Result<Vec<Option<String>>> {
        // A layer's `vars` group may carry its name in another shard than its data.
        let mut layer: HashMap<&str, &str> = HashMap::new();
        let mut per_shard = Vec::new();
        for (_, c) in &self.shards {
            for (g, n) in c.vars_names() {
                layer.insert(g, n);
            }
            per_shard.push(c.variable_names()?);
        }
        Ok(self
            .index
            .iter()
            .zip(&self.entries)
            .map(|(&(s, i), e)| {
                per_shard[s][i].clone().or_else(|| {
                    let (group, leaf) = e.name.rsplit_once('/')?;
                    let name = layer.get(format!("{group}/").as_str())?;
                    Some(format!("{name}/{leaf}"))
                })
            })
            .collect())
    }
}
