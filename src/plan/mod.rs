//! The plan: which tensors to write and under what names, decided and validated before a
//! byte of output is written. Selection (`--tensor`, `--select`, `--exclude`, `--all`),
//! renaming (`--short-names`), refusal of name clashes, and skipping of tensors no NumPy
//! array can hold (with a warning, or an error when the tensor was asked for by name).

pub mod convert;
pub mod names;

use crate::error::{Error, Result};
use crate::source::Container;
use globset::{Glob, GlobSet, GlobSetBuilder};

/// How to choose and name tensors.
#[derive(Clone, Debug, Default)]
pub struct SelectOptions {
    /// Write only this tensor (exact name, or short name with `short_names`).
    pub tensor: Option<String>,
    /// Keep only names matching one of these globs (all names when empty).
    pub select: Vec<String>,
    /// Drop names matching any of these globs.
    pub exclude: Vec<String>,
    /// Include hidden entries such as `_CHECKPOINTABLE_OBJECT_GRAPH`.
    pub all: bool,
    /// Name outputs by their readable TF2 object path (see [`names::short_name`]).
    pub short_names: bool,
}

/// Where a planned output's data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// One entry of the container, by index.
    Entry(usize),
}

/// One array to write.
#[derive(Clone, Debug)]
pub struct PlannedTensor {
    /// The output name (`.npz` member or file name without `.npy`).
    pub name: String,
    /// Where the data comes from.
    pub source: Source,
}

/// The validated list of arrays to write, sorted by output name.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Arrays to write, in output order.
    pub tensors: Vec<PlannedTensor>,
    /// Things the user should know (skipped tensors).
    pub warnings: Vec<String>,
}

fn globset(patterns: &[String], flag: &str) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = Glob::new(p).map_err(|e| Error::usage(format!("bad {flag} pattern `{p}`: {e}")))?;
        b.add(g);
    }
    b.build()
        .map_err(|e| Error::usage(format!("bad {flag} patterns: {e}")))
}

/// Builds the plan for `container`.
pub fn build(container: &dyn Container, opts: &SelectOptions) -> Result<Plan> {
    let select = globset(&opts.select, "--select")?;
    let exclude = globset(&opts.exclude, "--exclude")?;
    let mut plan = Plan::default();
    let entries = container.entries();
    for (i, e) in entries.iter().enumerate() {
        let out_name = if opts.short_names {
            names::short_name(&e.name)
        } else {
            e.name.clone()
        };
        let named = |want: &str| want == e.name || want == out_name;
        if let Some(want) = &opts.tensor {
            if !named(want) {
                continue;
            }
        } else {
            if e.hidden && !opts.all {
                continue;
            }
            if !opts.select.is_empty() && !select.is_match(&e.name) && !select.is_match(&out_name) {
                continue;
            }
            if exclude.is_match(&e.name) || exclude.is_match(&out_name) {
                continue;
            }
        }
        if !e.dtype.is_convertible() {
            let msg = format!(
                "`{}` is a {} tensor, which no NumPy array can hold",
                e.name, e.dtype
            );
            if opts.tensor.is_some() {
                return Err(Error::Unsupported {
                    file: container.path().to_path_buf(),
                    tensor: Some(e.name.clone()),
                    detail: format!("{} tensors have no NumPy equivalent", e.dtype),
                });
            }
            plan.warnings.push(format!("skipping {msg}"));
            continue;
        }
        plan.tensors.push(PlannedTensor {
            name: out_name,
            source: Source::Entry(i),
        });
    }
    if let Some(want) = &opts.tensor {
        if plan.tensors.is_empty() {
            return Err(Error::usage(format!(
                "no tensor named `{want}` in {}{}",
                container.path().display(),
                suggestions(container, want)
            )));
        }
    }
    plan.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in plan.tensors.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(Error::usage(format!(
                "two tensors would both be written as `{}`; drop --short-names or use --exclude",
                pair[0].name
            )));
        }
    }
    Ok(plan)
}

/// "; did you mean ..." text listing up to five entry names containing `want`'s last
/// path segment, or the first five names.
fn suggestions(container: &dyn Container, want: &str) -> String {
    let tail = want.rsplit('/').next().unwrap_or(want).to_lowercase();
    let names: Vec<&str> = container
        .entries()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let mut close: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !tail.is_empty() && n.to_lowercase().contains(&tail))
        .take(5)
        .collect();
    if close.is_empty() {
        close = names.iter().copied().take(5).collect();
    }
    if close.is_empty() {
        return String::new();
    }
    format!("; did you mean: {}", close.join(", "))
}
