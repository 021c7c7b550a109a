//! Folder output: one `NAME.npy` per array under a directory, `/` in names making
//! subfolders. Every file is written under a temporary name and all are renamed into
//! place together by `finish`, so a failed run publishes none of them.

use super::atomic::AtomicFile;
use super::{copy_exact, ArrayHeader, ArrayWriter};
use crate::error::{Error, Result};
use crate::stream::ByteStream;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};

/// Writes each array to its own `.npy` file under a folder.
pub struct FolderWriter {
    root: PathBuf,
    pending: Vec<AtomicFile>,
    force: bool,
    /// Folders this writer created, outermost first: removed again (when empty) if the
    /// run fails, so a failed run leaves no trace.
    created: Vec<PathBuf>,
    finished: bool,
}

/// Creates `dir` and its missing parents, recording each folder created.
fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|a| !a.exists()).collect();
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => created.push(d.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(Error::io(d, e)),
        }
    }
    Ok(())
}

impl FolderWriter {
    /// A writer into the folder `root`, created if missing. Identical existing files are
    /// left untouched unless `force`.
    pub fn create(root: &Path, force: bool) -> Result<Self> {
        let mut created = Vec::new();
        create_dirs(root, &mut created)?;
        Ok(FolderWriter {
            root: root.to_path_buf(),
            pending: Vec::new(),
            force,
            created,
            finished: false,
        })
    }

    /// The file an array called `name` goes to: `root/name.npy`. Names that would escape
    /// the folder (absolute, `..`, empty segments) are refused.
    pub fn path_for(root: &Path, name: &str) -> Result<PathBuf> {
        let rel = Path::new(name);
        let bad = name.is_empty()
            || name.ends_with('/')
            || name.contains("//")
            || name.contains('\0')
            || rel.components().any(|c| !matches!(c, Component::Normal(_)));
        if bad {
            return Err(Error::usage(format!(
                "cannot use `{name}` as a file name inside the output folder; \
                 use --short-names or write a .npz"
            )));
        }
        Ok(root.join(format!("{name}.npy")))
    }
}

impl ArrayWriter for FolderWriter {
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()> {
        let path = Self::path_for(&self.root, name)?;
        let len = header
            .byte_len()
            .ok_or_else(|| Error::usage(format!("array `{name}` is too large")))?;
        if let Some(parent) = path.parent() {
            create_dirs(parent, &mut self.created)?;
        }
        let file = AtomicFile::create(&path, self.force)?;
        let mut w = BufWriter::with_capacity(super::buffer_size(len), file.file()?);
        w.write_all(&header.to_bytes())
            .map_err(|e| Error::io(&path, e))?;
        copy_exact(data, &mut w, len, name, &path)?;
        w.flush().map_err(|e| Error::io(&path, e))?;
        self.pending.push(file);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        for file in std::mem::take(&mut self.pending) {
            file.commit()?;
        }
        self.finished = true;
        Ok(())
    }
}

impl Drop for FolderWriter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Temporary files go first (their own drop removes them), then the folders
        // this run created, innermost first; a folder that is not empty stays.
        self.pending.clear();
        for d in self.created.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}
