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
