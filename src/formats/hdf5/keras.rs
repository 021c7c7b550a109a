//! Keras's containers around HDF5 (docs/formats/hdf5.md §7): the `.keras` ZIP archive,
//! whose `model.weights.h5` member is read in place when stored (or decompressed to an
//! unnamed temporary file when deflated), and telling Keras 3 weights from legacy Keras files.

use super::walk::Walked;
use super::{find_signature, open_window, Hdf5Container};
use crate::error::{Ctx, Error, Result};
use crate::formats::io::InputFile;
use std::path::Path;
use std::sync::Arc;

/// The weights member of a `.keras` archive (keras/src/saving/saving_lib.py,
/// `_VARS_FNAME_H5`).
pub const WEIGHTS_MEMBER: &str = "model.weights.h5";

/// A ZIP local file header signature.
pub const ZIP_SIGNATURE: &[u8; 4] = b"PK\x03\x04";

/// Largest deflated weights member tf2npy decompresses (to a temporary file).
const MAX_MEMBER_BYTES: u64 = 64 << 30;

/// The archive's model configuration (saving_lib.py `_CONFIG_FILENAME`).
pub const CONFIG_MEMBER: &str = "config.json";

/// Largest `config.json` read (a real one is a few KB per layer).
const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// What to call a file, for `--list`.
pub fn kind(archive: bool, w: &Walked) -> &'static str {
    let has = |g: &str| w.root_groups.iter().any(|n| n == g);
    let attr = |a: &str| w.root_attrs.iter().any(|n| n == a);
    if archive {
        "Keras 3 .keras"
    } else if attr("keras_version") || attr("layer_names") || has("model_weights") {
        "HDF5 (legacy Keras)"
    } else if has("layers") || has("vars") || has("optimizer") {
        "Keras .weights.h5"
    } else {
        "HDF5"
    }
}

/// Opens `path` as HDF5 if it starts with (or has after a user block) the HDF5
/// signature, or as a `.keras` archive if it is a ZIP holding `model.weights.h5`.
/// `Ok(None)` when it is neither.
pub fn try_open(path: &Path) -> Result<Option<Hdf5Container>> {
    let file = Arc::new(InputFile::open(path)?);
    let len = file.len();
    // A ZIP first: an archive whose stored member happens to start at 512, 1024, ...
    // would otherwise pass for an HDF5 file with a user block.
    let mut head = [0u8; 4];
    if len >= 4 {
        file.read_exact_at(0, &mut head)?;
        if &head == ZIP_SIGNATURE {
            return open_archive(path, file);
        }
    }
    if find_signature(&file, 0, len)?.is_some() {
        return Ok(Some(open_window(path, file, 0, len, false)?));
    }
    Ok(None)
}

/// A `.keras` archive's weights, read in place (stored) or through a temporary file
/// (deflated); `None` for a ZIP that is no Keras archive at all (no weights member, no
/// `config.json` / `metadata.json`), which detection then names for what it is.
fn open_archive(path: &Path, file: Arc<InputFile>) -> Result<Option<Hdf5Container>> {
    let ctx = Ctx::file(path);
    let handle = file.handle()?;
    let mut zip = zip::ZipArchive::new(handle)
        .map_err(|e| ctx.corrupt(format!("not a readable ZIP archive: {e}")))?;
    if zip.index_for_name(WEIGHTS_MEMBER).is_none()
        && !["config.json", "metadata.json"]
            .iter()
            .any(|m| zip.index_for_name(m).is_some())
    {
        return Ok(None);
    }
    let config = read_config(&mut zip, &ctx)?;
    let mut member = match zip.by_name(WEIGHTS_MEMBER) {
        Ok(m) => m,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(ctx.unsupported(format!(
                "a ZIP archive without `{WEIGHTS_MEMBER}` (not a Keras 3 .keras file)"
            )))
        }
        Err(e) => return Err(ctx.corrupt(format!("`{WEIGHTS_MEMBER}`: {e}"))),
    };
    let size = member.size();
    match member.compression() {
        zip::CompressionMethod::Stored => {
            let start = member
                .data_start()
                .ok_or_else(|| ctx.corrupt(format!("`{WEIGHTS_MEMBER}` has no data offset")))?;
            file.check_range(start, size, WEIGHTS_MEMBER)?;
            if find_signature(&file, start, size)?.is_none() {
                return Err(ctx.corrupt(format!("`{WEIGHTS_MEMBER}` is not an HDF5 file")));
            }
            drop(member);
            let mut c = open_window(path, file, start, size, true)?;
            if let Some(config) = config {
                c.set_config(config);
            }
            Ok(Some(c))
        }
        zip::CompressionMethod::Deflated => {
            if size > MAX_MEMBER_BYTES {
                return Err(ctx.unsupported(format!(
                    "`{WEIGHTS_MEMBER}` would decompress to {size} bytes"
                )));
            }
            // HDF5 needs random access: decompress, streaming, to an unnamed temporary
            // file (O_TMPFILE, or unlinked at once where that is missing), which the
            // kernel removes when it is closed, however the process ends (a signal,
            // even SIGKILL, leaves nothing behind); the CRC-32 is checked at the end.
            let mut temp = tempfile::tempfile().map_err(|e| Error::io(path, e))?;
            let copied = std::io::copy(&mut (&mut member).take(size + 1), &mut temp)
                .map_err(|e| ctx.corrupt(format!("decompressing `{WEIGHTS_MEMBER}`: {e}")))?;
            if copied != size {
                return Err(ctx.corrupt(format!(
                    "`{WEIGHTS_MEMBER}` decompressed to {copied} bytes, not the {size} recorded"
                )));
            }
            drop(member);
            let inner = Arc::new(InputFile::from_file(path, temp)?);
            let len = inner.len();
            if find_signature(&inner, 0, len)?.is_none() {
                return Err(ctx.corrupt(format!("`{WEIGHTS_MEMBER}` is not an HDF5 file")));
            }
            let mut c = open_window(path, inner, 0, len, true)?;
            if let Some(config) = config {
                c.set_config(config);
            }
            Ok(Some(c))
        }
        other => Err(ctx.unsupported(format!(
            "`{WEIGHTS_MEMBER}` is compressed with {other}, which tf2npy does not read"
        ))),
    }
}

/// The archive's `config.json`, if it has one (bounded: a larger one is refused).
fn read_config<R: std::io::Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    ctx: &Ctx,
) -> Result<Option<Vec<u8>>> {
    let mut member = match zip.by_name(CONFIG_MEMBER) {
        Ok(m) => m,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ctx.corrupt(format!("`{CONFIG_MEMBER}`: {e}"))),
    };
    if member.size() > MAX_CONFIG_BYTES {
        return Err(ctx.unsupported(format!(
            "`{CONFIG_MEMBER}` holds {} bytes, more than the {} MiB tf2npy reads",
            member.size(),
            MAX_CONFIG_BYTES >> 20
        )));
    }
    let mut out = Vec::new();
    (&mut member)
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ctx.corrupt(format!("reading `{CONFIG_MEMBER}`: {e}")))?;
    if out.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ctx.corrupt(format!("`{CONFIG_MEMBER}` is larger than it declares")));
    }
    Ok(Some(out))
}

use std::io::Read as _;
