//! Atomic output: a temporary file beside the target, renamed over it only on commit.
//! Dropping an uncommitted [`AtomicFile`] deletes the temporary file, so a failed or
//! interrupted run never leaves a partial output and never damages an existing one.

use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// A file being written under a temporary name beside its target.
pub struct AtomicFile {
    target: PathBuf,
    temp: NamedTempFile,
    force: bool,
}

impl AtomicFile {
    /// Creates a temporary file in `target`'s folder (which must exist). On commit, an
    /// existing target with identical content is left untouched (mtime kept) unless
    /// `force` is set.
    pub fn create(target: &Path, force: bool) -> Result<Self> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{stem}."))
            .suffix(".tf2npy-tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(target, e))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
            force,
        })
    }

    /// The open temporary file, for writing (a second handle to the same file).
    pub fn file(&self) -> Result<File> {
        self.temp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io(&self.target, e))
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the temporary file over the target, unless the target already holds the
    /// same bytes (and `force` is off): then the temporary file is deleted and the
    /// target keeps its mtime. Returns whether the target was (re)written. Output files
    /// get ordinary permissions (0644), not the temporary file's 0600. Like `cp` and
    /// `np.save`, this does not fsync: the rename makes the file appear whole or not at
    /// all.
    pub fn commit(self) -> Result<bool> {
        let target = self.target;
        if !self.force
            && same_content(self.temp.path(), &target).map_err(|e| Error::io(&target, e))?
        {
            return Ok(false);
        }
        let file = self.temp.as_file();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = 0o666 & !current_umask();
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(&target, e))?;
        }
        self.temp
            .persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        Ok(true)
    }
}

/// True when `b` exists and has exactly the bytes of `a` (compared in chunks).
fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let (Ok(mb), Ok(ma)) = (std::fs::metadata(b), std::fs::metadata(a)) else {
        return Ok(false);
    };
    if !mb.is_file() || mb.len() != ma.len() {
        return Ok(false);
    }
    let mut fa = std::io::BufReader::with_capacity(1 << 20, File::open(a)?);
    let mut fb = std::io::BufReader::with_capacity(1 << 20, File::open(b)?);
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[cfg(unix)]
fn current_umask() -> u32 {
    // The umask can only be read by setting it; 0o022 is the near-universal default and
    // what we assume when the process cannot tell (we avoid `unsafe` libc calls).
    0o022
}
