//! Output names that stay where they are put: the one rule for a folder's `NAME.npy`
//! files, a `.npz`'s `NAME.npy` members and the names a `--manifest` records. A name is
//! a `/`-separated relative path whose every segment is an ordinary file name, so
//! `unzip`, `np.load` users extracting members, and scripts joining manifest names to a
//! folder can never be sent outside that folder (zip-slip).
//!
//! Refused: the empty name; a leading `/` (absolute); empty segments (`a//b`, a
//! trailing `/`); `.` and `..` segments; NUL (C strings and numpy's member names stop
//! there, so `a\0b` and `a\0c` would load as two arrays `a`); and `\` (a separator to
//! Windows tools, so `..\..\x` escapes there). The check runs on the output names, after
//! `--short-names` / `--var-names`, before anything is written.

use crate::error::{Error, Result};
use crate::text::escape;

/// Why `name` cannot name a file inside an output folder or archive, or `None` if it can.
pub fn unsafe_reason(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.contains('\0') {
        return Some("it holds a NUL byte");
    }
    if name.contains('\\') {
        return Some("it holds a `\\`, a path separator on Windows");
    }
    if name.starts_with('/') {
        return Some("it is an absolute path");
    }
    for seg in name.split('/') {
        match seg {
            "" => return Some("it has an empty path segment (`//` or a trailing `/`)"),
            "." | ".." => return Some("it has a `.` or `..` path segment"),
            _ => {}
        }
    }
    None
}

/// Refuses (exit 2) the output name `name` of the tensor `source` when it could escape
/// the output: names the tensor and what to do about it.
pub fn check(name: &str, source: &str) -> Result<()> {
    let Some(why) = unsafe_reason(name) else {
        return Ok(());
    };
    let from = if name == source {
        String::new()
    } else {
        format!(" (from `{}`)", escape(source))
    };
    Err(Error::usage(format!(
        "tensor `{}`{from} cannot be written: {why}, so as a file or archive member name it \
         could land outside the output; leave it out with --exclude GLOB or pick tensors \
         with --select GLOB",
        escape(name)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for n in [
            "a",
            "dense/kernel",
            "x.y/..z",
            ".hidden/a",
            "ünï/名前",
            "a b",
            "..a",
        ] {
            assert_eq!(unsafe_reason(n), None, "{n}");
        }
    }

    #[test]
    fn escaping_names_are_refused() {
        for n in [
            "",
            "../../x",
            "/tmp/x",
            "a/../../b",
            "..\\..\\x",
            "a\0b",
            "a//b",
            "a/",
            "./a",
            "..",
            "a/.",
        ] {
            assert!(unsafe_reason(n).is_some(), "{n:?}");
        }
        let e = check("../x", "m/.S..S..Sx").unwrap_err();
        assert!(e.is_usage());
        let msg = e.to_string();
        assert!(msg.contains("`../x`") && msg.contains("--exclude"), "{msg}");
    }
}
