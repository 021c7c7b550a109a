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
}

impl FolderWriter {
    /// A writer into the folder `root`, created if missing. Identical existing files are
    /// left untouched unless `force`.
    pub fn create(root: &Path, force: bool) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        Ok(FolderWriter {
            root: root.to_path_buf(),
            pending: Vec::new(),
            force,
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
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let file = AtomicFile::create(&path, self.force)?;
        let mut w = BufWriter::with_capacity(super::CHUNK_BYTES, file.file()?);
        w.write_all(&header.to_bytes())
            .map_err(|e| Error::io(&path, e))?;
        copy_exact(data, &mut w, len, name, &path)?;
        w.flush().map_err(|e| Error::io(&path, e))?;
        self.pending.push(file);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        for file in self.pending {
            file.commit()?;
        }
        Ok(())
    }
}
