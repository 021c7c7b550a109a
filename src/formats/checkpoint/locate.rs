//! Finding a checkpoint from what the user typed (tf-formats.md §2.1, §5, §7.5): a
//! prefix (`model.ckpt`), its `.index` or any `.data-*` file, a folder with a
//! `checkpoint` state file, or a folder holding exactly one checkpoint.
//!
//! A path that names nothing gets an error listing the checkpoints in the nearest
//! existing folder. V1 checkpoints (a table file whose header value is a
//! `SavedTensorSlices`, or the shard files a glob pattern such as
//! `model.ckpt-?????-of-00002` matches) go to [`V1Checkpoint`].

use crate::error::{Error, Result};
use crate::formats::checkpoint::bundle::{index_filename, Bundle};
use crate::formats::checkpoint::state::{self as checkpoint_state, STATE_FILE_NAME};
use crate::formats::checkpoint::table::{has_table_magic, Table};
use crate::formats::checkpoint::v1::V1Checkpoint;
use crate::formats::sniff;
use crate::source::Container;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// At most this many checkpoints are named in a "did you mean" list.
const MAX_SUGGESTIONS: usize = 10;

/// The prefix of a `PREFIX.data-NNNNN-of-NNNNN` file name, if `name` is one.
fn data_file_prefix(name: &[u8]) -> Option<&[u8]> {
    let at = name.windows(6).rposition(|w| w == b".data-")?;
    let rest = name.get(at + 6..)?;
    let digits = |s: &[u8]| s.len() >= 5 && s.iter().all(u8::is_ascii_digit);
    let of = rest.windows(4).position(|w| w == b"-of-")?;
    let (a, b) = (rest.get(..of)?, rest.get(of + 4..)?);
    (digits(a) && digits(b) && at > 0).then(|| &name[..at])
}

fn with_name(path: &Path, name: &[u8]) -> PathBuf {
    path.with_file_name(OsStr::from_bytes(name))
}

fn file_name(path: &Path) -> &[u8] {
    path.file_name().map_or(&[], |n| n.as_bytes())
}

/// True when `path` is a file that belongs to a checkpoint: a `.index` file, a
/// `.data-NNNNN-of-NNNNN` shard, a TF1 `.meta` graph saved beside one, or a table file
/// (recognised by its footer magic).
pub fn is_checkpoint_file(path: &Path) -> Result<bool> {
    let name = file_name(path);
    if name.ends_with(b".index") || name.ends_with(b".meta") || data_file_prefix(name).is_some() {
        return Ok(true);
    }
    has_table_magic(path)
}

/// A checkpoint of either format.
enum Opened {
    V2(Bundle),
    V1(V1Checkpoint),
}

/// Opens the checkpoint that `path` names.
pub fn open_checkpoint(path: &Path) -> Result<Box<dyn Container>> {
    Ok(match open_any(path)? {
        Opened::V2(b) => Box::new(b),
        Opened::V1(c) => Box::new(c),
    })
}

/// Like [`open_checkpoint`], returning the V2 bundle itself; a V1 checkpoint is an
/// `Unsupported` error.
pub fn open_bundle(path: &Path) -> Result<Bundle> {
    match open_any(path)? {
        Opened::V2(b) => Ok(b),
        Opened::V1(_) => Err(Error::unsupported(
            path,
            "this is a V1 checkpoint (SavedTensorSlices), not a V2 bundle",
        )),
    }
}

fn open_any(path: &Path) -> Result<Opened> {
    if path.is_dir() {
        return open_folder(path);
    }
    let name = file_name(path);
    if path.is_file() {
        if let Some(stem) = name.strip_suffix(b".index") {
            return Bundle::open(path, &with_name(path, stem)).map(Opened::V2);
        }
        if let Some(stem) = name.strip_suffix(b".meta") {
            // A TF1 saver's `PREFIX.meta` holds the graph, not the values: the checkpoint
            // is PREFIX (V2 `PREFIX.index`, or a V1 file), as people expect.
            let prefix = with_name(path, stem);
            if index_filename(&prefix).is_file() || prefix.is_file() {
                return open_any(&prefix);
            }
            return Err(not_found(
                &prefix,
                &format!(
                    "{} holds a TF1 graph, not variable values; they would be in the \
                     checkpoint {} (its .index and .data-* files, or one V1 file), which is \
                     not here{}",
                    path.display(),
                    prefix.display(),
                    suggest(&prefix)
                ),
            ));
        }
        if let Some(stem) = data_file_prefix(name) {
            let prefix = with_name(path, stem);
            let index = index_filename(&prefix);
            if !index.is_file() {
                return Err(not_found(
                    &index,
                    &format!(
                        "this data file's index is missing ({} needs it)",
                        path.display()
                    ),
                ));
            }
            return Bundle::open(path, &prefix).map(Opened::V2);
        }
    }
    if index_filename(path).is_file() {
        return Bundle::open(path, path).map(Opened::V2);
    }
    if path.is_file() {
        return classify_table_file(path);
    }
    if has_glob_chars(name) {
        let matched = glob_siblings(path);
        if !matched.is_empty() {
            return V1Checkpoint::open_matches(path, path, &matched).map(Opened::V1);
        }
    }
    if std::fs::symlink_metadata(path).is_err() {
        // Nothing by this name (and no PREFIX.index): say so, with the checkpoints of the
        // nearest existing folder if it holds any.
        let near = suggest_from(nearest_dir(path), None).unwrap_or_default();
        return Err(not_found(path, &format!("no such file or folder{near}")));
    }
    Err(not_found(
        path,
        &format!("no checkpoint here{}", suggest(path)),
    ))
}

/// A file that is neither `.index`, `.data-*`, nor a prefix with an `.index`: a V1
/// checkpoint (or one shard of one: only that file is read, as TensorFlow does), or an
/// error for a renamed V2 index or something else.
fn classify_table_file(path: &Path) -> Result<Opened> {
    let table = Table::open(path)?;
    let first = table.scan().next().transpose()?;
    Err(match first {
        Some((k, v)) if k.is_empty() && v.first() == Some(&0x0a) => {
            return V1Checkpoint::open(path, &[path.to_path_buf()]).map(Opened::V1)
        }
        Some((k, v)) if k.is_empty() && v.first() == Some(&0x08) => Error::unsupported(
            path,
            "this is a V2 checkpoint index, but it must be named PREFIX.index for its data \
             files (PREFIX.data-*) to be found",
        ),
        _ => Error::corrupt(path, "a table file, but not a checkpoint (no header entry)"),
    })
}

/// An `Io` error of kind `NotFound` on `path` (exit code 1, not a usage error).
fn not_found(path: &Path, msg: &str) -> Error {
    Error::io(
        path,
        io::Error::new(io::ErrorKind::NotFound, msg.to_string()),
    )
}

fn has_glob_chars(name: &[u8]) -> bool {
    name.iter().any(|b| matches!(b, b'?' | b'*' | b'['))
}

/// Files in `pattern`'s folder whose names match its last component as a glob.
fn glob_siblings(pattern: &Path) -> Vec<PathBuf> {
    let dir = parent_or_dot(pattern);
    let Some(pat) = pattern.file_name().and_then(OsStr::to_str) else {
        return Vec::new();
    };
    let Ok(glob) = globset::GlobBuilder::new(pat)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
    else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| glob.is_match(e.file_name()))
                .map(|e| dir.join(e.file_name()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn parent_or_dot(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The V2 checkpoint prefixes in `dir` (files `X.index`), sorted.
fn prefixes_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| {
                    let name = e.file_name();
                    let stem = name.as_bytes().strip_suffix(b".index")?.to_vec();
                    (!stem.is_empty()).then(|| dir.join(OsStr::from_bytes(&stem)))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Table files in `dir` that are not `.index` files (V1 checkpoints, by magic).
fn v1_tables_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .filter(|p| {
                    let n = file_name(p);
                    !n.ends_with(b".index")
                        && data_file_prefix(n).is_none()
                        && has_table_magic(p).unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn list(paths: &[PathBuf]) -> String {
    let mut names: Vec<String> = paths
        .iter()
        .take(MAX_SUGGESTIONS)
        .map(|p| p.display().to_string())
        .collect();
    if paths.len() > MAX_SUGGESTIONS {
        names.push(format!("and {} more", paths.len() - MAX_SUGGESTIONS));
    }
    names.join(", ")
}

/// True if `dir` holds a `checkpoint` state file or a `.index` file.
fn holds_checkpoint(dir: &Path) -> bool {
    dir.join(STATE_FILE_NAME).is_file() || !prefixes_in(dir).is_empty()
}

/// What a user may have meant in `dir`: the folder itself if it has a state file (unless
/// it is `except`, a folder whose state file is stale), its checkpoint prefixes, and its
/// subfolders that hold checkpoints.
fn candidates_in(dir: &Path, except: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir.join(STATE_FILE_NAME).is_file() && except != Some(dir) {
        out.push(dir.to_path_buf());
    }
    out.extend(prefixes_in(dir));
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .filter(|p| holds_checkpoint(p))
                .collect()
        })
        .unwrap_or_default();
    subs.sort();
    out.extend(subs);
    out
}

/// "; did you mean: ..." listing the checkpoints in `dir` other than `except`, or `None`
/// when there are none.
fn suggest_from(dir: &Path, except: Option<&Path>) -> Option<String> {
    let found = candidates_in(dir, except);
    (!found.is_empty()).then(|| format!("; did you mean: {}", list(&found)))
}

/// "; did you mean: ..." listing the checkpoints of the nearest existing folder.
fn suggest(path: &Path) -> String {
    suggest_except(path, None)
}

/// [`suggest`], never suggesting the folder `except` (whose state file is stale).
fn suggest_except(path: &Path, except: Option<&Path>) -> String {
    let dir = nearest_dir(path);
    suggest_from(dir, except)
        .unwrap_or_else(|| format!("; {} holds no V2 checkpoint", dir.display()))
}

/// `path` if it is a folder, else its nearest existing ancestor (`.` for a relative path
/// none of whose ancestors exist).
fn nearest_dir(path: &Path) -> &Path {
    let mut dir = if path.is_dir() {
        path
    } else {
        parent_or_dot(path)
    };
    while !dir.is_dir() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p,
            _ => {
                dir = Path::new(".");
                break;
            }
        }
    }
    dir
}

/// At most this many files of a folder without a checkpoint are sniffed for a verdict.
const MAX_SNIFFED: usize = 64;

/// "; NAME here is ..." for the first file (by name) in `dir` that
/// [`sniff::identify_file`] recognises (a TF.js model.json, a .tflite, ...), or "".
fn foreign_file_in(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let found: Vec<(&PathBuf, sniff::Verdict)> = files
        .iter()
        .take(MAX_SNIFFED)
        .filter_map(|f| Some((f, sniff::identify_file(f)?)))
        .collect();
    // A verdict from content (model.json) before one from a name (its weight shards).
    let best = found
        .iter()
        .find(|(_, v)| !v.by_name)
        .or_else(|| found.first());
    best.and_then(|(f, verdict)| {
        let name = f.file_name()?.to_string_lossy().into_owned();
        Some(format!("; {name} here is {verdict}"))
    })
    .unwrap_or_default()
}

/// A folder: its `checkpoint` state file, or its only checkpoint.
fn open_folder(dir: &Path) -> Result<Opened> {
    let state_path = dir.join(STATE_FILE_NAME);
    if state_path.is_file() {
        let state = checkpoint_state::read(&state_path)?;
        let Some(named) = state
            .model_checkpoint_path
            .filter(|p: &Vec<u8>| !p.is_empty())
        else {
            return Err(Error::corrupt(
                &state_path,
                "the checkpoint state file names no model_checkpoint_path",
            ));
        };
        let named = PathBuf::from(OsStr::from_bytes(&named));
        let prefix = if named.is_absolute() {
            named.clone()
        } else {
            dir.join(&named)
        };
        if index_filename(&prefix).is_file() {
            return Bundle::open(dir, &prefix).map(Opened::V2);
        }
        // Training folders get moved: look for the same name here.
        let moved = named.file_name().map(|n| dir.join(n));
        if let Some(moved) = &moved {
            if index_filename(moved).is_file() {
                return Bundle::open(dir, moved).map(Opened::V2);
            }
        }
        for candidate in std::iter::once(&prefix).chain(moved.as_ref()) {
            if candidate.is_file() {
                return V1Checkpoint::open(dir, std::slice::from_ref(candidate)).map(Opened::V1);
            }
            let matched = glob_siblings(candidate);
            if !matched.is_empty() {
                return V1Checkpoint::open_matches(dir, candidate, &matched).map(Opened::V1);
            }
        }
        // Suggest from the named folder if it exists, else from the state file's own
        // (a moved training folder whose state file names an old absolute path).
        let near = match (prefix.parent(), &moved) {
            (Some(p), Some(m)) if !p.is_dir() => m,
            _ => &prefix,
        };
        return Err(not_found(
            &prefix,
            &format!(
                "the checkpoint state file {} names this checkpoint, but it does not exist{}",
                state_path.display(),
                suggest_except(near, Some(dir))
            ),
        ));
    }
    let found = prefixes_in(dir);
    match found.as_slice() {
        [one] => Bundle::open(dir, one).map(Opened::V2),
        [] => {
            let v1 = v1_tables_in(dir);
            if !v1.is_empty() {
                return V1Checkpoint::open_folder(dir, &v1).map(Opened::V1);
            }
            let found = candidates_in(dir, None);
            let hint = if found.is_empty() {
                format!(
                    " (no .index file and no `checkpoint` state file){}",
                    foreign_file_in(dir)
                )
            } else {
                format!("; did you mean: {}", list(&found))
            };
            Err(not_found(dir, &format!("no checkpoint here{hint}")))
        }
        many => Err(Error::usage(format!(
            "{} holds {} checkpoints and no `checkpoint` state file; name one: {}",
            dir.display(),
            many.len(),
            list(many)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(rel)
    }

    /// Copies the files of checkpoint `prefix` (a fixture path) into `dir` as `name`.
    fn copy_ckpt(prefix: &str, dir: &Path, name: &str) {
        let src = fixture(prefix);
        let stem = src.file_name().unwrap().to_str().unwrap().to_string();
        for e in std::fs::read_dir(src.parent().unwrap()).unwrap().flatten() {
            let n = e.file_name().to_str().unwrap().to_string();
            if let Some(rest) = n.strip_prefix(&format!("{stem}.")) {
                if rest == "index" || rest.starts_with("data-") {
                    std::fs::copy(e.path(), dir.join(format!("{name}.{rest}"))).unwrap();
                }
            }
        }
    }

    fn index_of(b: &Bundle) -> String {
        b.index_path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn recognises_data_file_names() {
        assert_eq!(
            data_file_prefix(b"model.ckpt.data-00000-of-00001"),
            Some(&b"model.ckpt"[..])
        );
        assert_eq!(
            data_file_prefix(b"m.data-123456-of-200000"),
            Some(&b"m"[..])
        );
        assert_eq!(data_file_prefix(b"m.data-0000-of-00001"), None);
        assert_eq!(data_file_prefix(b"m.data-00000-of-0001x"), None);
        assert_eq!(data_file_prefix(b".data-00000-of-00001"), None);
        assert_eq!(data_file_prefix(b"m.index"), None);
    }

    #[test]
    fn recognises_checkpoint_files() {
        assert!(is_checkpoint_file(&fixture("v2/all_dtypes/ckpt-1.index")).unwrap());
        assert!(is_checkpoint_file(&fixture("v2/all_dtypes/ckpt-1.data-00000-of-00001")).unwrap());
        assert!(is_checkpoint_file(&fixture("v1/basic/model.ckpt")).unwrap());
        // A TF1 `.meta` graph stands for the checkpoint saved beside it.
        assert!(is_checkpoint_file(&fixture("v2/tf1_partitioned/model.ckpt.meta")).unwrap());
        assert!(!is_checkpoint_file(&fixture("v2/training_dir/checkpoint")).unwrap());
    }

    #[test]
    fn opens_every_spelling_of_a_checkpoint() {
        for p in [
            "v2/all_dtypes/ckpt-1",
            "v2/all_dtypes/ckpt-1.index",
            "v2/all_dtypes/ckpt-1.data-00000-of-00001",
            "v2/all_dtypes",
            "v2/all_dtypes/",
        ] {
            let b = open_bundle(&fixture(p)).unwrap();
            assert_eq!(index_of(&b), "ckpt-1.index", "{p}");
            assert_eq!(b.path(), fixture(p));
        }
        let b = open_bundle(&fixture("v2/training_dir")).unwrap();
        assert_eq!(index_of(&b), "ckpt-4.index");
        let b = open_bundle(&fixture("v2/tf1_partitioned")).unwrap();
        assert_eq!(index_of(&b), "model.ckpt.index");
    }

    #[test]
    fn follows_state_files_of_moved_folders() {
        let d = tempfile::tempdir().unwrap();
        copy_ckpt("v2/training_dir/ckpt-3", d.path(), "ckpt-3");
        std::fs::write(
            d.path().join("checkpoint"),
            "model_checkpoint_path: \"/no/such/old/place/ckpt-3\"\n",
        )
        .unwrap();
        assert_eq!(index_of(&open_bundle(d.path()).unwrap()), "ckpt-3.index");

        // An absolute path that exists is used as is.
        let other = tempfile::tempdir().unwrap();
        copy_ckpt("v2/training_dir/ckpt-2", other.path(), "elsewhere");
        let abs = other.path().join("elsewhere");
        std::fs::write(
            d.path().join("checkpoint"),
            format!("model_checkpoint_path: \"{}\"\n", abs.display()),
        )
        .unwrap();
        let b = open_bundle(d.path()).unwrap();
        assert_eq!(b.index_path(), index_filename(&abs));

        // A name that exists nowhere.
        std::fs::write(
            d.path().join("checkpoint"),
            "model_checkpoint_path: \"ckpt-9\"",
        )
        .unwrap();
        let err = open_bundle(d.path()).unwrap_err();
        assert!(matches!(&err, Error::Io { err, .. } if err.kind() == io::ErrorKind::NotFound));
        let msg = err.to_string();
        assert!(
            msg.contains("names this checkpoint, but it does not exist"),
            "{msg}"
        );
        assert!(
            msg.contains("did you mean:") && msg.contains("ckpt-3"),
            "{msg}"
        );

        // No model_checkpoint_path at all.
        std::fs::write(
            d.path().join("checkpoint"),
            "all_model_checkpoint_paths: \"ckpt-3\"",
        )
        .unwrap();
        assert!(open_bundle(d.path())
            .unwrap_err()
            .to_string()
            .contains("names no model_checkpoint_path"));
        std::fs::write(d.path().join("checkpoint"), "model_checkpoint_path: \"x").unwrap();
        assert!(matches!(open_bundle(d.path()), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn refuses_ambiguous_and_empty_folders() {
        let d = tempfile::tempdir().unwrap();
        let err = open_bundle(d.path()).unwrap_err();
        assert!(matches!(&err, Error::Io { err, .. } if err.kind() == io::ErrorKind::NotFound));
        copy_ckpt("v2/training_dir/ckpt-2", d.path(), "a");
        copy_ckpt("v2/training_dir/ckpt-3", d.path(), "b");
        let err = open_bundle(d.path()).unwrap_err();
        assert!(err.is_usage());
        let msg = err.to_string();
        assert!(
            msg.contains("holds 2 checkpoints") && msg.contains("/a, ") && msg.ends_with("/b"),
            "{msg}"
        );
    }

    #[test]
    fn suggests_checkpoints_for_wrong_paths() {
        let err = open_bundle(&fixture("v2/training_dir/ckpt-9")).unwrap_err();
        assert!(matches!(&err, Error::Io { err, .. } if err.kind() == io::ErrorKind::NotFound));
        let msg = err.to_string();
        assert!(
            msg.contains("no such file or folder; did you mean:"),
            "{msg}"
        );
        assert!(msg.contains("training_dir/ckpt-4"), "{msg}");
        let msg = open_bundle(&fixture("v2/nope/deeper/x"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("training_dir") && msg.contains("all_dtypes"),
            "{msg}"
        );
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("m.data-00000-of-00001");
        std::fs::write(&data, b"x").unwrap();
        let msg = open_bundle(&data).unwrap_err().to_string();
        assert!(
            msg.contains("m.index: this data file's index is missing"),
            "{msg}"
        );
    }

    #[test]
    fn opens_v1_checkpoints() {
        for (p, count, files) in [
            ("v1/basic/model.ckpt", 6, 1),
            ("v1/basic", 6, 1),
            ("v1/sharded", 6, 2),
            ("v1/sharded/model.ckpt-00000-of-00002", 3, 1),
            ("v1/sharded/model.ckpt-?????-of-00002", 6, 2),
        ] {
            let c = open_checkpoint(&fixture(p)).unwrap();
            assert_eq!(c.kind(), "TensorFlow V1 checkpoint", "{p}");
            assert_eq!(c.entries().len(), count, "{p}");
            assert_eq!(c.input_files().len(), files, "{p}");
            assert_eq!(c.path(), fixture(p));
            let err = open_bundle(&fixture(p)).unwrap_err();
            assert!(matches!(err, Error::Unsupported { .. }), "{p}: {err}");
        }
    }
}
