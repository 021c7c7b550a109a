//! Atomic output: a temporary file beside the target, renamed over it only on commit.
//! Dropping an uncommitted [`AtomicFile`] deletes the temporary file (and any folder
//! created for it), so a failed run never leaves a partial output and never damages an
//! existing one.
//!
//! - **Names**: temporary files are `.tf2npy-XXXXXXXX` (16 bytes) in the target's
//!   folder, whatever the target's name, so a target name of up to 255 bytes works.
//! - **Signals**: every temporary file (and every folder made for an output) is
//!   registered; after [`remove_temp_files_on_signals`], SIGINT, SIGTERM and SIGHUP
//!   remove them and exit with 130, 143 and 129 (128 + the signal). A publish in
//!   progress completes first. SIGKILL cannot be caught: its temporary file stays.
//! - **Permissions**: a new output gets the mode a new file gets here (`0666` less the
//!   umask, and any default ACL), found by creating the temporary file with `0666` and
//!   reading what the kernel made of it; the file is `0600` while being written. A
//!   replaced file keeps its permission bits.
//! - **Several files** ([`publish_all`], for folder output): every file is written and
//!   closed first; then, in one step that a signal cannot interrupt, each changed target
//!   is replaced, the previous ones kept as hard links until all renames succeeded, so a
//!   failure rolls every target back.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Temporary paths and folders a signal must remove.
struct Registry {
    temps: BTreeSet<PathBuf>,
    /// Folders created for outputs, in creation order.
    dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    temps: BTreeSet::new(),
    dirs: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// Removes every registered temporary file, then the registered folders that are
    /// empty, innermost first.
    fn remove_all(&mut self) {
        for p in std::mem::take(&mut self.temps) {
            let _ = std::fs::remove_file(p);
        }
        for d in self.dirs.drain(..).rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Installs handlers so that SIGINT, SIGTERM and SIGHUP remove every registered
/// temporary file and folder and exit with status 128 + the signal (130, 143, 129).
/// Idempotent. A library caller that handles signals itself should not call this.
pub fn remove_temp_files_on_signals() -> Result<()> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        if INSTALLED.get().is_some() {
            return Ok(());
        }
        let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])
            .map_err(|e| Error::io("<signal handlers>", e))?;
        std::thread::Builder::new()
            .name("tf2npy-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    // Waits for a publish in progress, then keeps the lock: no new
                    // temporary file can appear before the process is gone.
                    let mut reg = registry();
                    reg.remove_all();
                    std::process::exit(128 + sig);
                }
            })
            .map_err(|e| Error::io("<signal handlers>", e))?;
        let _ = INSTALLED.set(());
    }
    Ok(())
}

/// A short random name for a temporary file.
fn temp_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!(".tf2npy-{:08x}", h.finish() as u32)
}

/// Creates and registers a new temporary file in `dir` (in one step under the registry
/// lock, so a signal either sees it registered or it does not exist). Returns its path,
/// the open file (mode 0600) and the mode a new file gets in `dir`.
fn create_temp(dir: &Path) -> io::Result<(PathBuf, File, u32)> {
    let mut reg = registry();
    let mut tries = 0;
    let (path, file) = loop {
        let path = dir.join(temp_name());
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o666);
        }
        match opts.open(&path) {
            Ok(f) => {
                reg.temps.insert(path.clone());
                break (path, f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
            Err(e) => return Err(e),
        }
    };
    drop(reg);
    let mode = new_file_mode(&file)?;
    Ok((path, file, mode))
}

/// The permission bits the kernel gave `file` (created with 0666), after which the
/// file is made private (0600) while it is written.
#[cfg(unix)]
fn new_file_mode(file: &File) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(mode)
}

#[cfg(not(unix))]
fn new_file_mode(_file: &File) -> io::Result<u32> {
    Ok(0o644)
}

fn unregister(path: &Path) {
    registry().temps.remove(path);
}

/// Creates `dir` and its missing parents, recording (and registering, for signals) each
/// folder created.
pub fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .take_while(|a| std::fs::symlink_metadata(a).is_err())
        .collect();
    for d in missing.into_iter().rev() {
        let mut reg = registry();
        match std::fs::create_dir(d) {
            Ok(()) => {
                created.push(d.to_path_buf());
                reg.dirs.push(d.to_path_buf());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(Error::io(d, e)),
        }
    }
    Ok(())
}

/// Removes the folders in `created` that are empty, innermost first, and forgets them.
pub fn remove_created_dirs(created: &mut Vec<PathBuf>) {
    if created.is_empty() {
        return;
    }
    let mut reg = registry();
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
    forget_dirs(&mut reg, created);
}

/// Forgets `created` (the run succeeded: the folders stay).
pub fn keep_created_dirs(created: &mut Vec<PathBuf>) {
    if created.is_empty() {
        return;
    }
    forget_dirs(&mut registry(), created);
}

/// Drops `created` from the registry in one pass (a folder output may create tens of
/// thousands of folders).
fn forget_dirs(reg: &mut Registry, created: &mut Vec<PathBuf>) {
    let gone: std::collections::HashSet<PathBuf> = created.drain(..).collect();
    reg.dirs.retain(|x| !gone.contains(x));
}

/// A file being written under a temporary name beside its target.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
    force: bool,
    /// The mode a new file gets in the target's folder.
    new_mode: u32,
    /// Folders made for the target (removed again if it is never committed).
    created: Vec<PathBuf>,
    /// The temporary file is gone (renamed or removed).
    done: bool,
}

impl AtomicFile {
    /// Creates a temporary file in `target`'s folder, creating missing folders. On
    /// commit, an existing target with identical content is left untouched (mtime
    /// kept) unless `force` is set.
    pub fn create(target: &Path, force: bool) -> Result<Self> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut created = Vec::new();
        create_dirs(&dir, &mut created)?;
        let (temp, file, new_mode) = match create_temp(&dir) {
            Ok(t) => t,
            Err(e) => {
                remove_created_dirs(&mut created);
                return Err(Error::io(target, e));
            }
        };
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
            file: Some(file),
            force,
            new_mode,
            created,
            done: false,
        })
    }

    /// The open temporary file, for writing (a second handle to the same file).
    pub fn file(&self) -> Result<File> {
        let closed = || io::Error::other("internal error: the temporary file was closed");
        self.file
            .as_ref()
            .ok_or_else(closed)
            .and_then(|f| f.try_clone())
            .map_err(|e| Error::io(&self.target, e))
    }

    /// Closes this object's descriptor of the temporary file (the file stays, and is
    /// still renamed into place on commit). A caller staging many files closes each
    /// once written, so staging holds no descriptor per file.
    pub fn close(&mut self) {
        self.file = None;
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the temporary file over the target, unless the target already holds the
    /// same bytes (and `force` is off): then the temporary file is deleted and the
    /// target keeps its mtime. Returns whether the target was (re)written. Like `cp`
    /// and `np.save`, this does not fsync: the rename makes the file appear whole or not
    /// at all.
    pub fn commit(self) -> Result<bool> {
        Ok(publish_all(vec![self])? == 1)
    }

    /// Whether committing would change the target; prepares the temporary file's mode.
    fn prepare(&mut self) -> Result<bool> {
        self.close();
        if std::fs::symlink_metadata(&self.target).is_ok_and(|m| m.is_dir()) {
            return Err(Error::io(
                &self.target,
                io::Error::other("is a folder; cannot replace it with a file"),
            ));
        }
        if !self.force
            && same_content(&self.temp, &self.target).map_err(|e| Error::io(&self.target, e))?
        {
            return Ok(false);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let mode = match std::fs::symlink_metadata(&self.target) {
                Ok(m) if m.is_file() => m.mode() & 0o777,
                _ => self.new_mode,
            };
            std::fs::set_permissions(&self.temp, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(&self.target, e))?;
        }
        Ok(true)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        self.file = None;
        if !self.done {
            let _ = std::fs::remove_file(&self.temp);
            unregister(&self.temp);
            remove_created_dirs(&mut self.created);
        }
    }
}

/// Publishes `files` together: those whose target already holds identical bytes (and
/// are not forced) are dropped, the rest renamed into place. With more than one file,
/// every replaced target is first kept under a temporary hard link (or renamed there
/// where links are not supported), so that a failed rename restores every target as it
/// was. Runs under the registry lock: a signal waits for it. Returns how many targets
/// were written.
pub fn publish_all(mut files: Vec<AtomicFile>) -> Result<usize> {
    let mut changed = Vec::with_capacity(files.len());
    for mut f in files.drain(..) {
        if f.prepare()? {
            changed.push(f);
        } else {
            f.done = true;
            let _ = std::fs::remove_file(&f.temp);
            unregister(&f.temp);
            keep_created_dirs(&mut f.created);
        }
    }
    let backups = changed.len() > 1;
    let mut reg = registry();
    // (target, backup of the previous target) for each file renamed so far.
    let mut renamed: Vec<(PathBuf, Option<PathBuf>)> = Vec::with_capacity(changed.len());
    let mut failure = None;
    for f in changed.iter_mut() {
        let backup = if backups {
            match keep_previous(&f.target, &mut reg) {
                Ok(b) => b,
                Err(e) => {
                    failure = Some(Error::io(&f.target, e));
                    break;
                }
            }
        } else {
            None
        };
        match std::fs::rename(&f.temp, &f.target) {
            Ok(()) => {
                reg.temps.remove(&f.temp);
                f.done = true;
                renamed.push((f.target.clone(), backup));
            }
            Err(e) => {
                if let Some(b) = backup {
                    restore(&f.target, Some(b), &mut reg);
                }
                failure = Some(Error::io(&f.target, e));
                break;
            }
        }
    }
    if let Some(err) = failure {
        for (target, backup) in renamed.into_iter().rev() {
            restore(&target, backup, &mut reg);
        }
        drop(reg);
        // `changed` drops: the files not renamed lose their temporary files.
        return Err(err);
    }
    for (_, backup) in renamed {
        if let Some(b) = backup {
            let _ = std::fs::remove_file(&b);
            reg.temps.remove(&b);
        }
    }
    drop(reg);
    let n = changed.len();
    for mut f in changed {
        keep_created_dirs(&mut f.created);
    }
    Ok(n)
}

/// Keeps the current `target` (if any) under a new registered temporary name beside
/// it; returns that name.
fn keep_previous(target: &Path, reg: &mut Registry) -> io::Result<Option<PathBuf>> {
    match std::fs::symlink_metadata(target) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    for _ in 0..100 {
        let backup = dir.join(temp_name());
        if std::fs::symlink_metadata(&backup).is_ok() {
            continue;
        }
        std::fs::hard_link(target, &backup).or_else(|_| std::fs::rename(target, &backup))?;
        reg.temps.insert(backup.clone());
        return Ok(Some(backup));
    }
    Err(io::Error::other("no free temporary name"))
}

/// Undoes the publish of `target`: the previous file back from `backup`, or no file.
fn restore(target: &Path, backup: Option<PathBuf>, reg: &mut Registry) {
    match backup {
        Some(b) => {
            if std::fs::rename(&b, target).is_ok() {
                reg.temps.remove(&b);
            }
        }
        None => {
            let _ = std::fs::remove_file(target);
        }
    }
}

/// True when `b` exists and has exactly the bytes of `a` (compared in chunks).
fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    use std::io::Read;
    let (Ok(mb), Ok(ma)) = (std::fs::symlink_metadata(b), std::fs::metadata(a)) else {
        return Ok(false);
    };
    if !mb.is_file() || mb.len() != ma.len() {
        return Ok(false);
    }
    let mut fa = File::open(a)?;
    let mut fb = File::open(b)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(target: &Path, bytes: &[u8], force: bool) -> AtomicFile {
        let f = AtomicFile::create(target, force).unwrap();
        f.file().unwrap().write_all(bytes).unwrap();
        f
    }

    #[test]
    fn temp_names_are_short_and_long_targets_work() {
        let dir = tempfile::tempdir().unwrap();
        for len in [232usize, 251, 255] {
            let target = dir.path().join("x".repeat(len));
            let f = write(&target, b"abc", false);
            assert_eq!(f.temp.file_name().unwrap().len(), 16);
            assert!(f.commit().unwrap());
            assert_eq!(std::fs::read(&target).unwrap(), b"abc");
        }
    }

    #[test]
    fn missing_parents_are_made_and_removed_again_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/c.npy");
        drop(write(&target, b"x", false));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write(&target, b"x", false).commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
    }

    #[cfg(unix)]
    #[test]
    fn replaced_files_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let f = write(&target, b"new", false);
        let temp_mode = std::fs::metadata(&f.temp).unwrap().permissions().mode() & 0o777;
        assert_eq!(temp_mode, 0o600, "the file is private while written");
        f.commit().unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn a_failed_rename_rolls_every_target_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"old a").unwrap();
        let fa = write(&a, b"new a", false);
        let fb = write(&b, b"new b", false);
        // `b`'s temporary file vanishes after staging: its rename fails after `a`'s.
        std::fs::remove_file(&fb.temp).unwrap();
        assert!(publish_all(vec![fa, fb]).is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"old a");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a"], "no temporary file is left");
    }
}
