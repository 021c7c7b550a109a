//! The plan: which tensors to write and under what names, decided and validated before a
//! byte of output is written. Selection (`--tensor`, `--select`, `--exclude`, `--all`),
//! renaming (`--short-names`, `--var-names`), refusal of name clashes, and skipping of tensors no NumPy
//! array can hold (with a warning, or an error when the tensor was asked for by name),
//! and grouping of sparse parts stored as siblings into one dense output ([`sparse`]).

pub mod convert;
pub mod names;
pub mod safe_names;
pub mod sparse;

use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::source::{Container, Entry, RawTensor};
use globset::{Glob, GlobSet, GlobSetBuilder};
use sparse::SparseMode;
use std::collections::{HashMap, HashSet};

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
    /// Name outputs by the variable names the container records (a TF2 object graph's
    /// `full_name`, e.g. `dense/kernel`; see [`Container::variable_names`]). Tensors
    /// without one keep their key, or their short name with `short_names`.
    pub var_names: bool,
    /// Densify sparse tensors stored as sibling `X/indices`, `X/values`, `X/dense_shape`
    /// into one array `X` (the default), or keep the parts (`--sparse keep`).
    pub sparse: SparseMode,
}

/// Where a planned output's data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// One entry of the container, by index.
    Entry(usize),
    /// A sparse tensor stored as three sibling entries (by index), written dense.
    Sparse {
        /// `X/indices`: int64 `[nnz, rank]`.
        indices: usize,
        /// `X/values`: `[nnz]`.
        values: usize,
        /// `X/dense_shape`: int64 `[rank]`.
        dense_shape: usize,
    },
}

impl Source {
    /// The container entries this output reads.
    pub fn entries(&self) -> Vec<usize> {
        match *self {
            Source::Entry(i) => vec![i],
            Source::Sparse {
                indices,
                values,
                dense_shape,
            } => vec![indices, values, dense_shape],
        }
    }

    /// Payload bytes the source occupies in the input (for progress).
    pub fn stored_bytes(&self, container: &dyn Container) -> u64 {
        let entries = container.entries();
        self.entries()
            .into_iter()
            .map(|i| entries[i].stored_bytes)
            .sum()
    }

    /// Opens the source: the entry it stands for (for a sparse tensor, the dense tensor:
    /// its name, the values' dtype and the dense shape read from `dense_shape`) and its
    /// data stream. Errors name the tensor.
    pub fn open<'a>(
        &self,
        container: &'a dyn Container,
        verify: bool,
    ) -> Result<(Entry, RawTensor<'a>)> {
        match *self {
            Source::Entry(i) => {
                let entry = container.entries()[i].clone();
                let raw = container
                    .open(i, verify)
                    .map_err(|e| e.in_tensor(&entry.name))?;
                Ok((entry, raw))
            }
            Source::Sparse {
                indices,
                values,
                dense_shape,
            } => {
                let entries = container.entries();
                let name = sparse::group_name(&entries[indices].name)
                    .unwrap_or(&entries[indices].name)
                    .to_string();
                let group = sparse::SparseGroup {
                    name,
                    indices,
                    values,
                    dense_shape,
                };
                sparse::open_group(container, &group, verify)
            }
        }
    }
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

/// A tensor the plan may write: an entry, or a sparse tensor made of sibling entries.
struct Candidate {
    /// The name in the container (the common prefix for a sparse group).
    name: String,
    dtype: DataType,
    hidden: bool,
    source: Source,
    /// A part of a sparse group: written on its own only when asked for by `--tensor`.
    part_of_group: bool,
    /// The variable name the container records for it (`--var-names`).
    var_name: Option<String>,
}

/// Builds the plan for `container`.
pub fn build(container: &dyn Container, opts: &SelectOptions) -> Result<Plan> {
    let select = globset(&opts.select, "--select")?;
    let exclude = globset(&opts.exclude, "--exclude")?;
    let mut plan = Plan::default();
    let entries = container.entries();
    let groups = match opts.sparse {
        SparseMode::Densify => sparse::find_groups(entries, &mut plan.warnings),
        SparseMode::Keep => Vec::new(),
    };
    let parts: HashSet<usize> = groups
        .iter()
        .flat_map(|g| [g.indices, g.values, g.dense_shape])
        .collect();
    let mut candidates: Vec<Candidate> = groups
        .into_iter()
        .map(|g| Candidate {
            dtype: entries[g.values].dtype,
            hidden: false,
            source: Source::Sparse {
                indices: g.indices,
                values: g.values,
                dense_shape: g.dense_shape,
            },
            name: g.name,
            part_of_group: false,
            var_name: None,
        })
        .collect();
    let mut var_names = if opts.var_names {
        plan.warnings.extend(container.variable_name_notes());
        container.variable_names()?
    } else {
        Vec::new()
    };
    var_names.resize(entries.len(), None);
    candidates.extend(
        entries
            .iter()
            .zip(var_names)
            .enumerate()
            .map(|(i, (e, var_name))| Candidate {
                name: e.name.clone(),
                dtype: e.dtype,
                hidden: e.hidden,
                source: Source::Entry(i),
                part_of_group: parts.contains(&i),
                var_name,
            }),
    );
    let out_name = |c: &Candidate| output_name(&c.name, c.var_name.as_deref(), opts);
    let feature = |c: &Candidate| match c.source {
        Source::Entry(i) => container.feature_name(i),
        _ => None,
    };
    // `--tensor` names a dense sparse tensor or an ungrouped entry; a part of a group
    // only when nothing else has that name.
    let wanted: Option<Vec<bool>> = opts.tensor.as_ref().map(|want| {
        let named: Vec<bool> = candidates
            .iter()
            .map(|c| *want == c.name || *want == out_name(c))
            .collect();
        let whole = candidates
            .iter()
            .zip(&named)
            .any(|(c, &n)| n && !c.part_of_group);
        candidates
            .iter()
            .zip(named)
            .map(|(c, n)| n && (!c.part_of_group || !whole))
            .collect()
    });
    // Output name -> the candidate it came from, to report clashes.
    let mut taken: HashMap<String, usize> = HashMap::new();
    // Keys that hold the same variable as an earlier one (`--var-names`): (kept, dropped).
    let mut duplicates: Vec<(&str, &str)> = Vec::new();
    for (k, c) in candidates.iter().enumerate() {
        let out = out_name(c);
        if let Some(wanted) = &wanted {
            if !wanted[k] {
                continue;
            }
        } else {
            if c.part_of_group {
                continue;
            }
            if c.hidden && !opts.all {
                continue;
            }
            let by_feature = |g: &GlobSet| feature(c).is_some_and(|f| g.is_match(f));
            if !opts.select.is_empty()
                && !select.is_match(&c.name)
                && !select.is_match(&out)
                && !by_feature(&select)
            {
                continue;
            }
            if exclude.is_match(&c.name) || exclude.is_match(&out) || by_feature(&exclude) {
                continue;
            }
        }
        if !c.dtype.is_convertible() {
            let msg = format!(
                "`{}` is a {} tensor, which no NumPy array can hold",
                c.name, c.dtype
            );
            if opts.tensor.is_some() {
                return Err(Error::Unsupported {
                    file: container.path().to_path_buf(),
                    tensor: Some(c.name.clone()),
                    detail: format!("{} tensors have no NumPy equivalent", c.dtype),
                });
            }
            plan.warnings.push(format!("skipping {msg}"));
            continue;
        }
        if let Some(&first) = taken.get(&out) {
            let other = &candidates[first];
            if c.var_name.is_some()
                && other.var_name == c.var_name
                && container.identical_copies_are_one_variable()
                && same_variable(container, other, c)?
            {
                duplicates.push((&other.name, &c.name));
                continue;
            }
            return Err(Error::usage(format!(
                "`{}` and `{}` would both be written as `{out}`; {}",
                other.name,
                c.name,
                if opts.var_names {
                    "variable names are not unique here: drop --var-names (--short-names names \
                     tensors by their object path), or use --exclude"
                } else if opts.short_names {
                    "drop --short-names, or use --exclude"
                } else {
                    "use --exclude or --sparse keep"
                }
            )));
        }
        taken.insert(out.clone(), k);
        plan.tensors.push(PlannedTensor {
            name: out,
            source: c.source.clone(),
        });
    }
    if let Some((kept, dropped)) = duplicates.first() {
        plan.warnings.push(format!(
            "{} stored twice under different keys with identical data (e.g. `{kept}` and \
             `{dropped}`, the same variable reached by two paths, as in a Keras 3 \
             model.export()): each is written once under its variable name",
            match duplicates.len() {
                1 => "1 variable is".to_string(),
                n => format!("{n} variables are"),
            }
        ));
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
    Ok(plan)
}

/// True when candidates `a` and `b` (plain entries under one recorded variable name)
/// are the same variable stored twice: same dtype and shape and byte-identical data,
/// compared in bounded memory. Checksums are not checked here: the copy that is kept is
/// verified when it is written, and the other holds the same bytes.
fn same_variable(container: &dyn Container, a: &Candidate, b: &Candidate) -> Result<bool> {
    let (Source::Entry(i), Source::Entry(j)) = (&a.source, &b.source) else {
        return Ok(false);
    };
    let entries = container.entries();
    let (ea, eb) = (&entries[*i], &entries[*j]);
    if ea.dtype != eb.dtype || ea.shape != eb.shape || ea.stored_bytes != eb.stored_bytes {
        return Ok(false);
    }
    let open = |k: usize| {
        container
            .open(k, false)
            .map_err(|e| e.in_tensor(&entries[k].name))
    };
    match (open(*i)?, open(*j)?) {
        (RawTensor::Fixed(mut x), RawTensor::Fixed(mut y)) => {
            let (mut bx, mut by) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
            loop {
                let n = fill(x.as_mut(), &mut bx).map_err(|e| e.in_tensor(&ea.name))?;
                let m = fill(y.as_mut(), &mut by).map_err(|e| e.in_tensor(&eb.name))?;
                if n != m || bx[..n] != by[..m] {
                    return Ok(false);
                }
                if n == 0 {
                    return Ok(true);
                }
            }
        }
        (RawTensor::Strings(mut x), RawTensor::Strings(mut y)) => {
            let (mut sx, mut sy) = (Vec::new(), Vec::new());
            loop {
                let more_x = x.next_into(&mut sx).map_err(|e| e.in_tensor(&ea.name))?;
                let more_y = y.next_into(&mut sy).map_err(|e| e.in_tensor(&eb.name))?;
                if more_x != more_y || sx != sy {
                    return Ok(false);
                }
                if !more_x {
                    return Ok(true);
                }
            }
        }
        _ => Ok(false),
    }
}

/// Reads from `stream` until `buf` is full or the stream ends; the bytes read.
fn fill(stream: &mut dyn crate::stream::ByteStream, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = stream.read(&mut buf[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

/// The output name of a tensor called `name` in its container, with recorded variable
/// name `var_name` (`--var-names`): the variable name, else the short name with
/// `--short-names`, else `name`.
fn output_name(name: &str, var_name: Option<&str>, opts: &SelectOptions) -> String {
    match var_name {
        Some(v) => v.to_string(),
        None if opts.short_names => names::short_name(name),
        None => name.to_string(),
    }
}

/// The entries a listing shows (indices into [`Container::entries`], in entry order):
/// all of them, hidden ones included, unless `--tensor`, `--select` or `--exclude`
/// narrow them. Names match as when converting: the container name or the output name
/// (`--short-names`, `--var-names` through `var_names`, one per entry or empty), and a
/// densified sparse tensor's name stands for its three parts. An unknown `--tensor` is
/// the same usage error as when converting.
pub fn listed_entries(
    container: &dyn Container,
    opts: &SelectOptions,
    var_names: &[Option<String>],
) -> Result<Vec<usize>> {
    let select = globset(&opts.select, "--select")?;
    let exclude = globset(&opts.exclude, "--exclude")?;
    let entries = container.entries();
    let group_of = |name: &str| -> Option<String> {
        if opts.sparse != SparseMode::Densify {
            return None;
        }
        let base = name
            .strip_suffix(names::VARIABLE_VALUE_SUFFIX)
            .unwrap_or(name);
        let (group, part) = base.rsplit_once('/')?;
        (matches!(part, "indices" | "values" | "dense_shape") && !group.is_empty())
            .then(|| group.to_string())
    };
    let names_of = |i: usize| -> Vec<String> {
        let e = &entries[i];
        let var = var_names.get(i).and_then(Option::as_deref);
        let mut v = vec![e.name.clone(), output_name(&e.name, var, opts)];
        if let Some(g) = group_of(&e.name) {
            v.push(output_name(&g, None, opts));
            v.push(g);
        }
        if let Some(f) = container.feature_name(i) {
            v.push(f.to_string());
        }
        v
    };
    let shown: Vec<usize> = (0..entries.len())
        .filter(|&i| {
            let names = names_of(i);
            if let Some(want) = &opts.tensor {
                return names.iter().any(|n| n == want);
            }
            (opts.select.is_empty() || names.iter().any(|n| select.is_match(n)))
                && !names.iter().any(|n| exclude.is_match(n))
        })
        .collect();
    if let Some(want) = &opts.tensor {
        if shown.is_empty() {
            return Err(Error::usage(format!(
                "no tensor named `{want}` in {}{}",
                container.path().display(),
                suggestions(container, want)
            )));
        }
    }
    Ok(shown)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::VecStrings;
    use crate::stream::SliceStream;
    use std::path::{Path, PathBuf};

    /// Entries with their bytes (a string tensor's elements separated by `|`) and a
    /// variable name each.
    struct Mem {
        entries: Vec<Entry>,
        data: Vec<Vec<u8>>,
        names: Vec<Option<String>>,
    }

    /// Name, dtype, shape, bytes, variable name.
    type Item<'a> = (&'a str, DataType, &'a [u64], &'a [u8], Option<&'a str>);

    impl Mem {
        fn new(items: &[Item]) -> Mem {
            Mem {
                entries: items
                    .iter()
                    .map(|(n, dt, shape, data, _)| Entry {
                        name: n.to_string(),
                        dtype: *dt,
                        shape: shape.to_vec(),
                        stored_bytes: data.len() as u64,
                        location: Default::default(),
                        hidden: false,
                    })
                    .collect(),
                data: items.iter().map(|i| i.3.to_vec()).collect(),
                names: items.iter().map(|i| i.4.map(str::to_string)).collect(),
            }
        }
    }

    impl Container for Mem {
        fn path(&self) -> &Path {
            Path::new("mem")
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn entries(&self) -> &[Entry] {
            &self.entries
        }
        fn open(&self, i: usize, _verify: bool) -> Result<RawTensor<'_>> {
            Ok(match self.entries[i].dtype {
                DataType::String => RawTensor::Strings(Box::new(VecStrings::new(
                    self.data[i]
                        .split(|&b| b == b'|')
                        .map(<[u8]>::to_vec)
                        .collect(),
                ))),
                _ => RawTensor::Fixed(Box::new(SliceStream::new(&self.data[i]))),
            })
        }
        fn input_files(&self) -> Vec<(PathBuf, u64)> {
            Vec::new()
        }
        fn variable_names(&self) -> Result<Vec<Option<String>>> {
            Ok(self.names.clone())
        }
    }

    fn var_names() -> SelectOptions {
        SelectOptions {
            var_names: true,
            ..Default::default()
        }
    }

    const F: DataType = DataType::Float;
    const S: DataType = DataType::String;

    #[test]
    fn var_names_write_identical_copies_once() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let c = Mem::new(&[
            ("a/0", F, &[50_000], &big, Some("dense/kernel")),
            ("a/1", S, &[2], b"x|yz", Some("vocab")),
            ("b/0", F, &[50_000], &big, Some("dense/kernel")),
            ("b/1", S, &[2], b"x|yz", Some("vocab")),
            ("c", F, &[1], &[0; 4], None),
        ]);
        let plan = build(&c, &var_names()).unwrap();
        let names: Vec<&str> = plan.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["c", "dense/kernel", "vocab"]);
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
        assert!(plan.warnings[0].starts_with("2 variables are stored twice"));
    }

    #[test]
    fn var_names_refuse_different_tensors_under_one_name() {
        let mut other = vec![1u8; 400_000];
        let same = other.clone();
        other[399_999] = 2; // differs in the last chunk only
        for (second, why) in [
            (("b", F, &[100_000][..], &other[..], Some("v")), "data"),
            (("b", F, &[200_000, 2][..], &same[..], Some("v")), "shape"),
            (
                ("b", DataType::Int32, &[100_000][..], &same[..], Some("v")),
                "dtype",
            ),
        ] {
            let c = Mem::new(&[("a", F, &[100_000], &same, Some("v")), second]);
            let err = build(&c, &var_names()).unwrap_err();
            assert!(err.is_usage(), "{why}: {err}");
            assert!(err
                .to_string()
                .contains("`a` and `b` would both be written as `v`"));
        }
        let c = Mem::new(&[
            ("a", S, &[2], b"x|y", Some("v")),
            ("b", S, &[2], b"x|z", Some("v")),
        ]);
        assert!(build(&c, &var_names()).unwrap_err().is_usage());
        // Without --var-names nothing is compared or dropped.
        let c = Mem::new(&[
            ("a", F, &[1], &[0; 4], Some("v")),
            ("b", F, &[1], &[0; 4], Some("v")),
        ]);
        assert_eq!(
            build(&c, &SelectOptions::default()).unwrap().tensors.len(),
            2
        );
    }
}
