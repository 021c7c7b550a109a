//! Folder output: one `NAME.npy` per array under a directory, `/` in names making
//! subfolders. Every file is staged under a temporary name (and closed: staging holds
//! no descriptor per file), and all are published together by `finish`
//! ([`atomic::publish_all`]), so a failed run leaves the previous folder as it was.
//!
//! Below the output root nothing is followed: a subfolder that is a symbolic link
//! (`out/sdir -> ../../elsewhere`) is refused, both when a file is staged and again
//! just before publishing.

use super::atomic::{self, AtomicFile};
use super::{copy_exact, ArrayHeader, ArrayWriter};
use crate::error::{Error, Result};
use crate::stream::ByteStream;
use crate::text;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes each array to its own `.npy` file under a folder.
pub struct FolderWriter {
    root: PathBuf,
    pending: Vec<AtomicFile>,
    force: bool,
    /// Folders this writer created, outermost first: removed again (when empty) if the
    /// run fails, so a failed run leaves no trace.
    created: Vec<PathBuf>,
}

/// Creates the folders of `rel` (a relative path of plain segments) below `root`,
/// refusing any that exists as a symbolic link or a non-folder.
fn create_below(root: &Path, rel: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut dir = root.to_path_buf();
    for seg in rel.iter() {
        dir.push(seg);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::io(
                    &dir,
                    std::io::Error::other(
                        "is a symbolic link; tf2npy does not write through links inside \
                         the output folder",
                    ),
                ))
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::io(
                    &dir,
                    std::io::Error::other("is not a folder, but a tensor name needs it as one"),
                ))
            }
            Err(_) => atomic::create_dirs(&dir, created)?,
        }
    }
    Ok(())
}

impl FolderWriter {
    /// A writer into the folder `root`, created (with missing parents) if missing.
    /// Identical existing files are left untouched unless `force`.
    pub fn create(root: &Path, force: bool) -> Result<Self> {
        let mut created = Vec::new();
        atomic::create_dirs(root, &mut created)?;
        Ok(FolderWriter {
            root: root.to_path_buf(),
            pending: Vec::new(),
            force,
            created,
        })
    }

    /// The file an array called `name` goes to: `root/name.npy`. Names that could
    /// escape the folder are refused ([`crate::plan::safe_names`]).
    pub fn path_for(root: &Path, name: &str) -> Result<PathBuf> {
        crate::plan::safe_names::check(name, name)?;
        Ok(root.join(format!("{name}.npy")))
    }

    /// Checks again that no folder between the root and `path` is a symbolic link.
    fn check_no_links(&self, path: &Path) -> Result<()> {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return Ok(());
        };
        let mut dir = self.root.clone();
        let segs: Vec<_> = rel.iter().collect();
        for seg in &segs[..segs.len().saturating_sub(1)] {
            dir.push(seg);
            if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::io(
                    &dir,
                    std::io::Error::other(format!(
                        "became a symbolic link while {} was being written",
                        text::path(path)
                    )),
                ));
            }
        }
        Ok(())
    }
}

impl ArrayWriter for FolderWriter {
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()> {
        let path = Self::path_for(&self.root, name)?;
        let len = header
            .byte_len()
            .ok_or_else(|| Error::usage(format!("array `{}` is too large", text::escape(name))))?;
        if let Some(parent) = Path::new(name).parent() {
            create_below(&self.root, parent, &mut self.created)?;
        }
        let mut file = AtomicFile::create(&path, self.force)?;
        let mut w = BufWriter::with_capacity(super::buffer_size(len), file.file()?);
        w.write_all(&header.to_bytes())
            .map_err(|e| Error::io(&path, e))?;
        copy_exact(data, &mut w, len, name, &path)?;
        w.flush().map_err(|e| Error::io(&path, e))?;
        drop(w);
        file.close();
        self.pending.push(file);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        for f in &self.pending {
            self.check_no_links(f.target())?;
        }
        atomic::publish_all(std::mem::take(&mut self.pending))?;
        atomic::keep_created_dirs(&mut self.created);
        Ok(())
    }
}

impl Drop for FolderWriter {
    fn drop(&mut self) {
        // Temporary files go first (their own drop removes them), then the folders
        // this run created, innermost first; a folder that is not empty stays.
        self.pending.clear();
        atomic::remove_created_dirs(&mut self.created);
    }
}
