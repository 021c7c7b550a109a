//! Walking an HDF5 file's groups to find its datasets, safely (docs/formats/hdf5.md §3,
//! §6): each group is entered once (hard-link cycles terminate), soft links are followed
//! only inside the file, and any link that would lead to another file is refused.

use crate::error::{Ctx, Result};
use hdf5_reader::group::Group;
use hdf5_reader::{Dataset, ExternalLinkResolver, Hdf5File};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Groups deeper than this are refused (a path longer than any real file's).
const MAX_DEPTH: usize = 64;

/// Records every external link hdf5-reader meets and resolves none: no other file is
/// ever opened. Registered with the reader so that links reached through soft links are
/// seen too.
#[derive(Default)]
pub struct ExternalLinkGuard {
    seen: Mutex<Vec<String>>,
}

impl ExternalLinkGuard {
    fn take(&self) -> Vec<String> {
        match self.seen.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

impl ExternalLinkResolver for ExternalLinkGuard {
    fn resolve_external_link(
        &self,
        filename: &str,
    ) -> hdf5_reader::error::Result<Option<Hdf5File>> {
        match self.seen.lock() {
            Ok(mut v) => v.push(filename.to_string()),
            Err(p) => p.into_inner().push(filename.to_string()),
        }
        Ok(None)
    }
}

/// One dataset found by the walk, with its group's `name` attribute when that group is
/// a Keras 3 `vars` group, or the Keras name a legacy `weight_names` attribute gives it.
pub struct Found {
    /// Path without the leading `/`.
    pub path: String,
    /// The dataset.
    pub dataset: Dataset,
    /// The Keras name (`dense/0`, `dense/kernel`), if the file records one.
    pub keras_name: Option<String>,
    /// The Keras 3 `vars` group the dataset is in (`layers/dense/vars/`), if it is in one.
    pub vars_group: Option<String>,
}

/// What the walk found.
pub struct Walked {
    /// Every dataset by every path, in path order.
    pub datasets: Vec<Found>,
    /// Names of the groups at the root (for telling Keras layouts apart).
    pub root_groups: Vec<String>,
    /// Names of the root group's attributes.
    pub root_attrs: Vec<String>,
    /// Keras 3 `vars` groups' `name` attributes, by group path (`layers/dense/vars/`).
    /// A sharded save records a layer's name in the shard where its group was made,
    /// which may not hold its datasets.
    pub vars_names: std::collections::HashMap<String, String>,
}

/// Walks `file` from the root. `guard` must be the resolver registered with `file`.
pub fn walk(file: &Hdf5File, guard: &Arc<ExternalLinkGuard>, ctx: &Ctx) -> Result<Walked> {
    let root = file.root_group().map_err(|e| reader_error(ctx, "/", e))?;
    let root_attrs = root
        .attributes()
        .map_err(|e| reader_error(ctx, "/", e))?
        .into_iter()
        .map(|a| a.name)
        .collect();
    let mut w = Walker {
        seen: HashSet::new(),
        out: Vec::new(),
        weight_names: Vec::new(),
        vars_names: Default::default(),
        guard,
        ctx,
    };
    let (groups, _) = w.members(&root, "")?;
    let root_groups = groups.iter().map(|g| leaf(g.name()).to_string()).collect();
    w.group(&root, "", 0)?;
    let vars_names = std::mem::take(&mut w.vars_names);
    let legacy: std::collections::HashMap<String, String> = w.weight_names.into_iter().collect();
    let mut datasets = w.out;
    for d in &mut datasets {
        if d.keras_name.is_none() {
            d.keras_name = legacy.get(&d.path).cloned();
        }
    }
    datasets.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Walked {
        datasets,
        root_groups,
        root_attrs,
        vars_names,
    })
}

fn leaf(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// An hdf5-reader error as a `Corrupt` error naming the object it was reading.
pub fn reader_error(ctx: &Ctx, object: &str, e: hdf5_reader::error::Error) -> crate::error::Error {
    if is_virtual_layout(&e) {
        return ctx.unsupported(format!(
            "`{object}` holds a virtual dataset (VDS), whose data lives in other files; tf2npy \
             never opens other files ({e})"
        ));
    }
    ctx.corrupt(format!("HDF5 object `{object}`: {e}"))
}

/// Layout class 3 is a virtual dataset (HDF5 spec IV.A.2.i); hdf5-reader refuses it.
fn is_virtual_layout(e: &hdf5_reader::error::Error) -> bool {
    match e {
        hdf5_reader::error::Error::UnsupportedLayoutClass(3) => true,
        hdf5_reader::error::Error::Context { source, .. } => is_virtual_layout(source),
        _ => false,
    }
}

struct Walker<'a> {
    seen: HashSet<u64>,
    out: Vec<Found>,
    /// (dataset path, Keras name) from legacy `weight_names` attributes.
    weight_names: Vec<(String, String)>,
    vars_names: std::collections::HashMap<String, String>,
    guard: &'a Arc<ExternalLinkGuard>,
    ctx: &'a Ctx,
}

impl Walker<'_> {
    /// The group's members, refusing it if listing them met an external link.
    fn members(&self, g: &Group, path: &str) -> Result<(Vec<Group>, Vec<Dataset>)> {
        let shown = if path.is_empty() { "/" } else { path };
        let members = g.members().map_err(|e| reader_error(self.ctx, shown, e));
        let external = self.guard.take();
        if let Some(target) = external.first() {
            return Err(self.ctx.unsupported(format!(
                "group `{shown}` holds an external link (or a soft link through one) to file \
                 `{target}`; tf2npy never opens other files"
            )));
        }
        members
    }

    fn group(&mut self, g: &Group, path: &str, depth: usize) -> Result<()> {
        if !self.seen.insert(g.address()) {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(self.ctx.unsupported(format!(
                "group `{path}` is nested more than {MAX_DEPTH} groups deep"
            )));
        }
        let (groups, datasets) = self.members(g, path)?;
        let keras = keras_names(g, path, self.ctx)?;
        if let KerasNames::Vars(layer) = &keras {
            self.vars_names.insert(path.to_string(), layer.clone());
        }
        for d in datasets {
            let child = format!("{path}{}", leaf(d.name()));
            let (keras_name, vars_group) = match &keras {
                KerasNames::Vars(layer) => (
                    Some(format!("{layer}/{}", leaf(d.name()))),
                    Some(path.to_string()),
                ),
                _ => (None, None),
            };
            self.out.push(Found {
                path: child,
                dataset: d,
                keras_name,
                vars_group,
            });
        }
        if let KerasNames::Weights(names) = &keras {
            for w in names {
                let full = format!("{path}{w}");
                let short = w.strip_suffix(":0").unwrap_or(w);
                // Applied after the walk: the dataset sits in a subgroup.
                self.weight_names.push((full, short.to_string()));
            }
        }
        for sub in groups {
            let child = format!("{path}{}/", leaf(sub.name()));
            self.group(&sub, &child, depth + 1)?;
        }
        Ok(())
    }
}

enum KerasNames {
    None,
    /// A Keras 3 `vars` group: its `name` attribute is the layer's name.
    Vars(String),
    /// A legacy `weight_names` attribute: paths relative to the group.
    Weights(Vec<String>),
}

fn keras_names(g: &Group, path: &str, ctx: &Ctx) -> Result<KerasNames> {
    let shown = if path.is_empty() { "/" } else { path };
    let attrs = g.attributes().map_err(|e| reader_error(ctx, shown, e))?;
    let find = |name: &str| attrs.iter().find(|a| a.name == name);
    // tf_keras splits a `weight_names` list over 64 KiB into `weight_names0`,
    // `weight_names1`, ... (hdf5_format.py, save_attributes_to_hdf5_group).
    let mut parts = Vec::new();
    if let Some(a) = find("weight_names") {
        parts.push(a);
    } else {
        while let Some(a) = find(&format!("weight_names{}", parts.len())) {
            parts.push(a);
        }
    }
    if !parts.is_empty() {
        let mut names = Vec::new();
        for a in parts {
            // h5py stores an empty list as an empty float64 array: no names.
            if a.num_elements().is_ok_and(|n| n == 0) {
                continue;
            }
            names.extend(a.read_strings().map_err(|e| reader_error(ctx, shown, e))?);
        }
        return Ok(KerasNames::Weights(names));
    }
    let is_vars = leaf(path.trim_end_matches('/')) == "vars";
    if let (true, Some(a)) = (is_vars, find("name")) {
        let name = a.read_string().map_err(|e| reader_error(ctx, shown, e))?;
        return Ok(KerasNames::Vars(name));
    }
    Ok(KerasNames::None)
}
