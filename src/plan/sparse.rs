//! Sparse tensors stored as sibling tensors `X/indices`, `X/values`, `X/dense_shape`
//! (each optionally with the TF2 `/.ATTRIBUTES/VARIABLE_VALUE` suffix) in any
//! container: finding the groups, checking they fit together, and opening each as one
//! dense tensor through [`crate::densify`].

use super::names::VARIABLE_VALUE_SUFFIX;
pub use crate::densify::SparseMode;
use crate::densify::{densify, read_dense_shape, SparseData};
use crate::dtype::DataType;
use crate::error::{Ctx, Error, Result};
use crate::source::{Container, Entry, RawTensor};
use std::collections::HashMap;

/// Sibling entries of a container that together form one sparse tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseGroup {
    /// The dense tensor's name: the parts' common prefix `X` (without the TF2 suffix).
    pub name: String,
    /// Entry index of `X/indices`.
    pub indices: usize,
    /// Entry index of `X/values`.
    pub values: usize,
    /// Entry index of `X/dense_shape`.
    pub dense_shape: usize,
}

/// The dense name for an `indices` part's name: `X` for `X/indices` and for
/// `X/indices/.ATTRIBUTES/VARIABLE_VALUE`.
pub fn group_name(indices_name: &str) -> Option<&str> {
    let base = indices_name
        .strip_suffix(VARIABLE_VALUE_SUFFIX)
        .unwrap_or(indices_name);
    base.strip_suffix("/indices").filter(|p| !p.is_empty())
}

/// Finds the sparse tensors stored as siblings among `entries` (by name, then checked
/// by dtype and shape). Name matches whose dtypes or shapes do not fit together are
/// reported in `warnings` and left as separate tensors.
pub fn find_groups(entries: &[Entry], warnings: &mut Vec<String>) -> Vec<SparseGroup> {
    let by_name: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    let mut groups = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let suffix = if e.name.ends_with(VARIABLE_VALUE_SUFFIX) {
            VARIABLE_VALUE_SUFFIX
        } else {
            ""
        };
        let Some(prefix) = group_name(&e.name) else {
            continue;
        };
        let (Some(&values), Some(&dense_shape)) = (
            by_name.get(format!("{prefix}/values{suffix}").as_str()),
            by_name.get(format!("{prefix}/dense_shape{suffix}").as_str()),
        ) else {
            continue;
        };
        let group = SparseGroup {
            name: prefix.to_string(),
            indices: i,
            values,
            dense_shape,
        };
        match check_group(entries, &group) {
            Ok(()) => groups.push(group),
            Err(why) => warnings.push(format!(
                "`{prefix}/indices`, `values` and `dense_shape` are not a sparse tensor ({why}); \
                 writing them as they are"
            )),
        }
    }
    groups
}

/// Checks that a group's parts have the dtypes and shapes of a sparse tensor.
pub fn check_group(entries: &[Entry], g: &SparseGroup) -> std::result::Result<(), String> {
    let (ix, vals, shape) = (
        &entries[g.indices],
        &entries[g.values],
        &entries[g.dense_shape],
    );
    if ix.hidden || vals.hidden || shape.hidden {
        return Err("a part is hidden".to_string());
    }
    let [nnz, rank] = ix.shape[..] else {
        return Err(format!(
            "indices have shape {:?}, not [nnz, rank]",
            ix.shape
        ));
    };
    if ix.dtype != DataType::Int64 || shape.dtype != DataType::Int64 {
        return Err(format!(
            "indices are {} and dense_shape is {}, not int64",
            ix.dtype, shape.dtype
        ));
    }
    if vals.shape != [nnz] {
        return Err(format!(
            "values have shape {:?}, not [{nnz}] like the indices",
            vals.shape
        ));
    }
    if shape.shape != [rank] {
        return Err(format!(
            "dense_shape has shape {:?}, not [{rank}] like the indices' rank",
            shape.shape
        ));
    }
    if !vals.dtype.is_convertible() {
        return Err(format!("{} values", vals.dtype));
    }
    Ok(())
}

/// Opens a sibling group: reads its `dense_shape`, and returns the dense tensor's entry
/// and its densifying stream.
pub fn open_group<'a>(
    container: &'a dyn Container,
    g: &SparseGroup,
    verify: bool,
) -> Result<(Entry, RawTensor<'a>)> {
    let entries = container.entries();
    let file = Ctx::file(container.path());
    let ctx = file.tensor(&g.name);
    check_group(entries, g).map_err(|why| ctx.corrupt(why))?;
    let (ix, vals, se) = (
        &entries[g.indices],
        &entries[g.values],
        &entries[g.dense_shape],
    );
    let part = |i: usize, e: &Entry| {
        container
            .open(i, verify)
            .map_err(|err| err.in_tensor(&e.name))
    };
    let dense_shape = read_dense_shape(
        part(g.dense_shape, se)?,
        se.shape[0] as usize,
        &file.tensor(&se.name),
    )?;
    let RawTensor::Fixed(indices) = part(g.indices, ix)? else {
        return Err(Error::usage(format!(
            "internal error: int64 tensor `{}` read as strings",
            ix.name
        )));
    };
    let values = part(g.values, vals)?;
    let nnz = ix.shape[0];
    let entry = Entry {
        name: g.name.clone(),
        dtype: vals.dtype,
        shape: dense_shape.clone(),
        stored_bytes: ix.stored_bytes + vals.stored_bytes + se.stored_bytes,
        location: format!("sparse, {nnz} values").into(),
        hidden: false,
    };
    let raw = densify(
        SparseData {
            indices,
            nnz,
            values,
            dtype: vals.dtype,
            dense_shape,
        },
        &ctx,
    )?;
    Ok((entry, raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, dtype: DataType, shape: &[u64]) -> Entry {
        Entry {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            stored_bytes: 0,
            location: Default::default(),
            hidden: false,
        }
    }

    #[test]
    fn finds_sibling_groups() {
        let s = VARIABLE_VALUE_SUFFIX;
        let entries = vec![
            entry(&format!("sp/dense_shape{s}"), DataType::Int64, &[2]),
            entry(&format!("sp/indices{s}"), DataType::Int64, &[4, 2]),
            entry(&format!("sp/values{s}"), DataType::Float, &[4]),
            entry("a/indices", DataType::Int64, &[4, 2]),
            entry("a/values", DataType::Float, &[3]),
            entry("a/dense_shape", DataType::Int64, &[2]),
            entry("b/indices", DataType::Int64, &[4, 2]),
            entry("b/values", DataType::Float, &[4]),
        ];
        let mut warnings = Vec::new();
        let groups = find_groups(&entries, &mut warnings);
        assert_eq!(
            groups,
            [SparseGroup {
                name: "sp".into(),
                indices: 1,
                values: 2,
                dense_shape: 0
            }]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("`a/indices`"), "{warnings:?}");
    }
}
