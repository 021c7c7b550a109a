//! Paths a job will write, checked before anything is written: every `.npz` or `.npy`,
//! every file of a folder output and the manifest must have a safe name
//! ([`crate::plan::safe_names`]), must not be one of the input files (by path, or the
//! same file through a hard link), and must not be another of the paths written. A
//! final symbolic link is replaced, not followed, so it is compared as itself.

use crate::error::{Error, Result};
use crate::plan::{Plan, Source};
use crate::run::{Job, Mode, OutputTarget};
use crate::source::Container;
use crate::text::escape;
use crate::write::folder::FolderWriter;
use std::path::{Path, PathBuf};

/// Where a path that is about to be written lives: the canonical form of its nearest
/// existing ancestor joined with the rest, so two spellings of one path compare equal.
fn path_key(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = std::fs::canonicalize(cur) {
            // A final symbolic link is replaced, not followed: keep its own name.
            let linked = rest.is_empty()
                && std::fs::symlink_metadata(cur).is_ok_and(|m| m.file_type().is_symlink());
            if !linked {
                let mut k = c;
                k.extend(rest.iter().rev());
                return k;
            }
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

/// The file identity (device, inode) of an existing file, following links.
#[cfg(unix)]
fn file_id(p: &Path, follow: bool) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = if follow {
        std::fs::metadata(p)
    } else {
        std::fs::symlink_metadata(p)
    };
    m.ok().filter(|m| m.is_file()).map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_p: &Path, _follow: bool) -> Option<(u64, u64)> {
    None
}

/// Checks, before anything is written, every path the job will write (each `.npz` or
/// `.npy`, each file of a folder output, the manifest): their names are safe
/// ([`crate::plan::safe_names`]), none is one of the input files (same path or same
/// file through a hard link), and no two are the same path.
pub(crate) fn check_paths(container: &dyn Container, plan: &Plan, job: &Job) -> Result<()> {
    use crate::plan::safe_names;
    use crate::text::path as show;
    let checks_names = matches!(job.output, OutputTarget::Npz(_) | OutputTarget::Folder(_))
        && job.mode != Mode::Verify;
    if checks_names || job.manifest.is_some() {
        for t in &plan.tensors {
            let source = match t.source {
                Source::Entry(i) => container.entries()[i].name.as_str(),
                Source::Sparse { .. } => t.name.as_str(),
            };
            safe_names::check(&t.name, source)?;
        }
    }
    // (path, what it is) for everything this run writes.
    let mut writes: Vec<(PathBuf, String)> = Vec::new();
    if job.mode == Mode::Convert {
        match &job.output {
            OutputTarget::Npz(p) | OutputTarget::Npy(p) | OutputTarget::Safetensors(p) => {
                writes.push((p.clone(), format!("the output {}", show(p))));
            }
            OutputTarget::Folder(root) => {
                for t in &plan.tensors {
                    let p = FolderWriter::path_for(root, &t.name)?;
                    let what = format!("the output {} (tensor `{}`)", show(&p), escape(&t.name));
                    writes.push((p, what));
                }
            }
            OutputTarget::Stdout => {}
        }
    }
    if let Some(m) = &job.manifest {
        if m.is_dir() {
            return Err(Error::usage(format!(
                "the manifest {} is a folder; name a file such as {}",
                show(m),
                show(&m.join("manifest.json"))
            )));
        }
        if matches!(&job.output, OutputTarget::Folder(root) if path_key(root) == path_key(m)) {
            return Err(Error::usage(format!(
                "the manifest {} is the output folder",
                show(m)
            )));
        }
        writes.push((m.clone(), format!("the manifest {}", show(m))));
    }
    let inputs: Vec<(PathBuf, Option<(u64, u64)>)> = container
        .input_files()
        .into_iter()
        .map(|(p, _)| (path_key(&p), file_id(&p, true)))
        .collect();
    let mut seen: std::collections::HashMap<PathBuf, &str> = std::collections::HashMap::new();
    for (p, what) in &writes {
        let key = path_key(p);
        let id = file_id(p, false);
        for (input, input_id) in &inputs {
            if *input == key || (id.is_some() && id == *input_id) {
                return Err(Error::usage(format!(
                    "{what} is one of the input files ({}); choose another output",
                    show(input)
                )));
            }
        }
        if let Some(other) = seen.insert(key, what) {
            return Err(Error::usage(format!(
                "{other} and {what} are the same file; choose another --manifest or -o"
            )));
        }
    }
    Ok(())
}
