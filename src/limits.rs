//! Output-size limits, so that a small input cannot make tf2npy do unbounded work.
//!
//! A few bytes can claim a huge array: a `TensorProto` whose one `bool_val` is repeated
//! over shape `[2^62]`, a sparse tensor with `dense_shape` `[2^60]`, a string tensor
//! whose one long element pads every other one to its width. Before anything is
//! written, the size of the whole output (headers and payloads) is computed from the
//! plan and refused when it is
//!
//! - more than [`DEFAULT_FACTOR`] times the input's size plus [`DEFAULT_ALLOWANCE`],
//!   unless `--max-output SIZE` sets another limit (broadcast constants and densified
//!   sparse tensors can legitimately be far larger than what stores them), for every
//!   output, `-o -` included, and for `--check`, which reads as much;
//! - more than the free space of the file system it goes to (files and folders, not
//!   `-o -`; not with `--compress`, whose size is not known in advance).

use crate::error::{Ctx, Error, Result};
use crate::plan::convert::{fixed_descr, to_numpy};
use crate::plan::{Plan, Source};
use crate::run::{Job, Mode, OutputTarget};
use crate::source::Container;
use crate::write::ArrayHeader;
use std::path::Path;

/// The output may be this many times the size of the input files...
pub const DEFAULT_FACTOR: u64 = 16;
/// ... plus this many bytes (256 MiB), so small inputs with broadcast constants work.
pub const DEFAULT_ALLOWANCE: u64 = 256 << 20;

/// The default limit for an input of `input_bytes` bytes.
pub fn default_limit(input_bytes: u64) -> u64 {
    input_bytes
        .saturating_mul(DEFAULT_FACTOR)
        .saturating_add(DEFAULT_ALLOWANCE)
}

/// Parses a size: a number of bytes with an optional binary suffix `K`, `M`, `G`, `T`,
/// `P`, `E` (powers of 1024; `KiB`, `KB`, `k` are the same), e.g. `512M`, `20G`,
/// `1.5T`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        "e" => 60,
        _ => {
            return Err(format!(
                "`{text}` is not a size (e.g. 4096, 512M, 20G, 1.5T)"
            ))
        }
    };
    let bad = || format!("`{text}` is not a size (e.g. 4096, 512M, 20G, 1.5T)");
    if num.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(1u64 << shift)
            .ok_or_else(|| format!("`{text}` is larger than 2^64 bytes"));
    }
    let x: f64 = num.parse().map_err(|_| bad())?;
    let bytes = x * (1u64 << shift) as f64;
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(format!("`{text}` is larger than 2^64 bytes"));
    }
    Ok(bytes as u64)
}

/// `n` bytes for people: `1.2 MiB (1234567 bytes)`.
pub fn show_bytes(n: u64) -> String {
    if n < 1024 {
        return format!("{n} bytes");
    }
    format!("{} ({n} bytes)", short_bytes(n))
}

/// `n` bytes in a binary unit, one decimal: `1.2 MiB`.
pub fn short_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut x = n as f64 / 1024.0;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}

/// Bytes an unprivileged user may still write on the file system `path` would be on
/// (the nearest existing ancestor's), or `None` when that cannot be told.
pub fn free_space(path: &Path) -> Option<u64> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let existing = abs.ancestors().find(|a| a.exists())?;
    free_space_at(existing)
}

#[cfg(unix)]
fn free_space_at(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(not(unix))]
fn free_space_at(_dir: &Path) -> Option<u64> {
    None
}

/// The `.npy` header and payload size of every planned array, in plan order, from the
/// entries' shapes where the dtype fixes the item size, else by opening the source
/// (string widths, sparse dense shapes; damage found here is reported as when writing).
fn planned_sizes(container: &dyn Container, plan: &Plan, job: &Job) -> Result<Vec<(u64, u64)>> {
    let ctx = Ctx::file(container.path());
    let mut sizes = Vec::with_capacity(plan.tensors.len());
    for t in &plan.tensors {
        let fixed = match t.source {
            Source::Entry(i) => {
                let e = &container.entries()[i];
                fixed_descr(e.dtype, job.convert).map(|(descr, item)| ArrayHeader {
                    descr: descr.to_string(),
                    shape: e.shape.clone(),
                    item_bytes: item,
                })
            }
            Source::Sparse { .. } => None,
        };
        let header = match fixed {
            Some(h) => h,
            None => {
                let (entry, raw) = t.source.open(container, job.verify)?;
                to_numpy(&entry, raw, job.convert, &ctx)
                    .map_err(|e| e.in_tensor(&entry.name))?
                    .header
            }
        };
        let payload = header.byte_len().unwrap_or(u64::MAX);
        sizes.push((header.to_bytes().len() as u64, payload));
    }
    Ok(sizes)
}

/// Refuses, before anything is written, an output larger than the limit
/// (`--max-output`, or [`default_limit`] of the input's size) or than the
/// free space of the file system it goes to (see the module documentation).
pub(crate) fn check_sizes(container: &dyn Container, plan: &Plan, job: &Job) -> Result<()> {
    let sizes = planned_sizes(container, plan, job)?;
    let npz = matches!(job.output, OutputTarget::Npz(_));
    let mut total = 0u64;
    let mut largest = (0u64, 0usize);
    for (i, (t, &(head, payload))) in plan.tensors.iter().zip(&sizes).enumerate() {
        // ZIP local header, ZIP64 extra, central directory record: ~150 bytes + names.
        let member = if npz {
            150 + 2 * (t.name.len() as u64 + 4)
        } else {
            0
        };
        total = total
            .saturating_add(head)
            .saturating_add(payload)
            .saturating_add(member);
        if payload >= largest.0 {
            largest = (payload, i);
        }
    }
    let input: u64 = container.input_files().iter().map(|(_, n)| n).sum();
    let limit = job.max_output.unwrap_or_else(|| default_limit(input));
    if total > limit {
        let t = &plan.tensors[largest.1];
        let why = match job.max_output {
            Some(_) => "set by --max-output".to_string(),
            None => format!(
                "{DEFAULT_FACTOR} times the input's {} plus {}",
                short_bytes(input),
                short_bytes(DEFAULT_ALLOWANCE)
            ),
        };
        return Err(Error::Unsupported {
            file: container.path().to_path_buf(),
            tensor: Some(t.name.clone()),
            detail: format!(
                "the output would be {} (this tensor: {}), more than the limit of {} \
                 ({why}); broadcast constants and densified sparse tensors can be this \
                 large: if this is expected, raise the limit with --max-output SIZE",
                show_bytes(total),
                short_bytes(largest.0),
                short_bytes(limit)
            ),
        });
    }
    if job.mode != Mode::Convert || job.compress {
        return Ok(());
    }
    let Some(target) = job.output.path() else {
        return Ok(());
    };
    if let Some(free) = free_space(target) {
        if total > free {
            return Err(Error::io(
                target,
                std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "not enough free space: the output would be {}, and {} are free \
                         on its file system",
                        show_bytes(total),
                        show_bytes(free)
                    ),
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("20GiB"), Ok(20 << 30));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("2 TB"), Ok(2 << 40));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("15E"), Ok(15 << 60));
        for bad in ["", "G", "12X", "-1", "99E", "1..2M"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bytes_show_and_free_space_is_known() {
        assert_eq!(show_bytes(5), "5 bytes");
        assert_eq!(show_bytes(3 << 29), "1.5 GiB (1610612736 bytes)");
        assert_eq!(short_bytes(1 << 20), "1.0 MiB");
        assert!(free_space(Path::new("no/such/dir/x.npz")).is_some());
        assert_eq!(default_limit(1 << 20), (16 << 20) + (256 << 20));
    }
}
