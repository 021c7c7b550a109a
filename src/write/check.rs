//! `--check`: compares what would be written with an existing output, array by array,
//! without writing anything. Reports added, removed and changed (dtype, shape, values)
//! arrays. Knows only NumPy files, like every writer.

use super::npy::ArrayHeader;
use super::{ArrayWriter, CHUNK_BYTES};
use crate::error::{Error, Result};
use crate::stream::ByteStream;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// One difference between the existing output and what would be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The output does not exist at all.
    Missing(PathBuf),
    /// A new array would be written.
    Added(String),
    /// An existing array would disappear.
    Removed(String),
    /// The array's dtype would change (old descr, new descr).
    Dtype(String, String, String),
    /// The array's shape would change (old, new).
    Shape(String, Vec<u64>, Vec<u64>),
    /// Same dtype and shape, different values.
    Values(String),
    /// The existing array could not be read as `.npy`.
    Unreadable(String, String),
    /// Same arrays, but the file's header bytes differ (order, metadata, padding).
    Header(PathBuf),
}

impl std::fmt::Display for Difference {
    /// One line per difference; names and paths escaped ([`crate::text`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::text::{escape as e, path};
        match self {
            Difference::Missing(p) => write!(f, "missing: {} does not exist", path(p)),
            Difference::Added(n) => write!(f, "added: {}", e(n)),
            Difference::Removed(n) => write!(f, "removed: {}", e(n)),
            Difference::Dtype(n, a, b) => {
                write!(f, "changed dtype: {} ({} -> {})", e(n), e(a), e(b))
            }
            Difference::Shape(n, a, b) => write!(f, "changed shape: {} ({a:?} -> {b:?})", e(n)),
            Difference::Values(n) => write!(f, "changed values: {}", e(n)),
            Difference::Unreadable(n, why) => write!(f, "unreadable: {} ({})", e(n), e(why)),
            Difference::Header(p) => write!(f, "changed header: {}", path(p)),
        }
    }
}

/// The kind of existing output being checked.
pub enum CheckTarget {
    /// A `.npz` archive.
    Npz(PathBuf),
    /// One `.npy` file.
    Npy(PathBuf),
    /// A folder of `.npy` files.
    Folder(PathBuf),
    /// A `.safetensors` file that would be written with this layout.
    Safetensors(PathBuf, super::safetensors::Layout),
}

/// An [`ArrayWriter`] that writes nothing and records differences instead.
pub struct CheckWriter {
    target: CheckTarget,
    archive: Option<zip::ZipArchive<BufReader<File>>>,
    safetensors: Option<super::safetensors::Existing>,
    seen: BTreeSet<String>,
    /// The differences found so far.
    pub differences: Vec<Difference>,
}

impl CheckWriter {
    /// Prepares to compare against `target` (which may not exist).
    pub fn new(target: CheckTarget) -> Result<Self> {
        let mut differences = Vec::new();
        let mut archive = None;
        let mut safetensors = None;
        match &target {
            CheckTarget::Npz(p)
            | CheckTarget::Npy(p)
            | CheckTarget::Folder(p)
            | CheckTarget::Safetensors(p, _)
                if !p.exists() =>
            {
                differences.push(Difference::Missing(p.clone()));
            }
            CheckTarget::Npz(p) => {
                let f = File::open(p).map_err(|e| Error::io(p, e))?;
                let z = zip::ZipArchive::new(BufReader::new(f))
                    .map_err(|e| Error::io(p, std::io::Error::other(e)))?;
                archive = Some(z);
            }
            CheckTarget::Safetensors(p, _) => {
                let f = File::open(p).map_err(|e| Error::io(p, e))?;
                let len = f.metadata().map_err(|e| Error::io(p, e))?.len();
                match super::safetensors::Existing::read(f, len) {
                    Ok(e) => safetensors = Some(e),
                    Err(why) => {
                        differences.push(Difference::Unreadable(p.display().to_string(), why))
                    }
                }
            }
            _ => {}
        }
        Ok(CheckWriter {
            target,
            archive,
            safetensors,
            seen: BTreeSet::new(),
            differences,
        })
    }

    /// True when the existing output matches.
    pub fn is_same(&self) -> bool {
        self.differences.is_empty()
    }

    fn missing(&self) -> bool {
        matches!(self.differences.first(), Some(Difference::Missing(_)))
    }

    fn compare(
        &mut self,
        name: &str,
        header: &ArrayHeader,
        data: &mut dyn ByteStream,
    ) -> Result<()> {
        let diff = match &self.target {
            CheckTarget::Npz(p) => {
                let member = format!("{name}.npy");
                let Some(z) = self.archive.as_mut() else {
                    return Ok(());
                };
                match z.by_name(&member) {
                    Ok(mut m) => compare_npy(name, header, data, &mut m, p)?,
                    Err(_) => Some(Difference::Added(name.to_string())),
                }
            }
            CheckTarget::Npy(p) => compare_file(name, header, data, p)?,
            CheckTarget::Safetensors(p, layout) => {
                let Some(existing) = self.safetensors.as_mut() else {
                    return drain(name, header, data);
                };
                let new = layout.tensors().iter().find(|t| t.name == name);
                match (existing.tensors.get(name).cloned(), new) {
                    (None, _) => {
                        drain(name, header, data)?;
                        Some(Difference::Added(name.to_string()))
                    }
                    (Some(old), Some(new)) if old.dtype != new.dtype => {
                        drain(name, header, data)?;
                        let d = Difference::Dtype(name.into(), old.dtype, new.dtype.into());
                        Some(d)
                    }
                    (Some(old), _) if old.shape != header.shape => {
                        drain(name, header, data)?;
                        Some(Difference::Shape(
                            name.into(),
                            old.shape,
                            header.shape.clone(),
                        ))
                    }
                    (Some(old), _) => (!existing.same_values(&old, data, p)?)
                        .then(|| Difference::Values(name.to_string())),
                }
            }
            CheckTarget::Folder(root) => {
                let p = super::folder::FolderWriter::path_for(root, name)?;
                compare_file(name, header, data, &p)?
            }
        };
        self.differences.extend(diff);
        Ok(())
    }

    fn removed(&self) -> Vec<String> {
        match &self.target {
            CheckTarget::Npz(_) => self
                .archive
                .as_ref()
                .map(|z| {
                    z.file_names()
                        .filter_map(|n| n.ok())
                        .filter_map(|n| n.strip_suffix(".npy").map(String::from))
                        .filter(|n| !self.seen.contains(n))
                        .collect()
                })
                .unwrap_or_default(),
            CheckTarget::Npy(_) => Vec::new(),
            CheckTarget::Safetensors(..) => {
                let mut found: Vec<String> = self
                    .safetensors
                    .as_ref()
                    .map(|e| e.tensors.keys().cloned().collect())
                    .unwrap_or_default();
                found.retain(|n| !self.seen.contains(n));
                found.sort();
                found
            }
            CheckTarget::Folder(root) => {
                let mut found = Vec::new();
                list_npy(root, root, &mut found);
                found.retain(|n| !self.seen.contains(n));
                found.sort();
                found
            }
        }
    }
}

/// Reads `data` to its end (so damaged input is still reported), writing nothing.
fn drain(name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()> {
    let len = header.byte_len().unwrap_or(0);
    super::copy_exact(data, &mut std::io::sink(), len, name, Path::new("<check>"))
}

/// The `.npy` files below `dir`, as array names; symbolic links are not followed (the
/// writer never writes through them, and a link cycle would never end).
fn list_npy(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            list_npy(root, &p, out);
        } else if let Some(rel) = p.strip_prefix(root).ok().and_then(|r| r.to_str()) {
            if let Some(n) = rel.strip_suffix(".npy") {
                out.push(n.to_string());
            }
        }
    }
}

fn compare_file(
    name: &str,
    header: &ArrayHeader,
    data: &mut dyn ByteStream,
    path: &Path,
) -> Result<Option<Difference>> {
    match File::open(path) {
        Ok(f) => compare_npy(name, header, data, &mut BufReader::new(f), path),
        Err(_) => Ok(Some(Difference::Added(name.to_string()))),
    }
}

/// Whether `old` holds exactly the bytes `data` yields. All of `data` is read even after
/// a difference, so damaged input is still reported; `path` names `old` in errors.
pub(crate) fn same_bytes(
    data: &mut dyn ByteStream,
    old: &mut dyn Read,
    path: &Path,
) -> Result<bool> {
    let mut new_buf = vec![0u8; CHUNK_BYTES];
    let mut old_buf = vec![0u8; CHUNK_BYTES];
    let mut same = true;
    loop {
        let n = data.read(&mut new_buf)?;
        if n == 0 {
            break;
        }
        if same {
            match old.read_exact(&mut old_buf[..n]) {
                Ok(()) => same = old_buf[..n] == new_buf[..n],
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => same = false,
                Err(e) => return Err(Error::io(path, e)),
            }
        }
    }
    Ok(same
        && old
            .read(&mut old_buf[..1])
            .map_err(|e| Error::io(path, e))?
            == 0)
}

/// Compares an existing `.npy` (from `old`) with a new header and payload.
fn compare_npy(
    name: &str,
    header: &ArrayHeader,
    data: &mut dyn ByteStream,
    old: &mut dyn Read,
    path: &Path,
) -> Result<Option<Difference>> {
    let (descr, shape) = match super::npy::read_header(old) {
        Ok(h) => h,
        Err(why) => return Ok(Some(Difference::Unreadable(name.to_string(), why))),
    };
    if descr != header.descr {
        return Ok(Some(Difference::Dtype(
            name.to_string(),
            descr,
            header.descr.clone(),
        )));
    }
    if shape != header.shape {
        return Ok(Some(Difference::Shape(
            name.to_string(),
            shape,
            header.shape.clone(),
        )));
    }
    let same = same_bytes(data, old, path)?;
    Ok((!same).then(|| Difference::Values(name.to_string())))
}

impl ArrayWriter for CheckWriter {
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()> {
        self.seen.insert(name.to_string());
        if self.missing() {
            // Still read the input so that damaged input is reported as such.
            return drain(name, header, data);
        }
        self.compare(name, header, data)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl CheckWriter {
    /// Completes the comparison (adds arrays that would be removed) and returns the
    /// differences.
    pub fn into_differences(mut self) -> Vec<Difference> {
        if !self.missing() {
            for n in self.removed() {
                self.differences.push(Difference::Removed(n));
            }
            if let (CheckTarget::Safetensors(p, layout), Some(e)) =
                (&self.target, &self.safetensors)
            {
                if self.differences.is_empty() && e.header != layout.header() {
                    self.differences.push(Difference::Header(p.clone()));
                }
            }
        }
        self.differences
    }
}
