//! `.npz` output: a ZIP archive of `NAME.npy` members, written with the `zip` crate
//! (9.x) the way `np.savez` / `np.savez_compressed` write it: ZIP64 extra fields on
//! every member (`large_file`), fixed 1980-01-01 timestamps, mode 0644, members in the
//! order given (the plan sorts them), so the same input gives the same bytes.

use super::atomic::AtomicFile;
use super::{copy_exact, ArrayHeader, ArrayWriter};
use crate::error::{Error, Result};
use crate::stream::ByteStream;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// Deflate level used by `--compress` (zlib's default, as `np.savez_compressed`).
pub const DEFLATE_LEVEL: i64 = 6;

/// Writes arrays as members of a `.npz` archive.
pub struct NpzWriter {
    path: PathBuf,
    file: AtomicFile,
    zip: ZipWriter<BufWriter<File>>,
    compress: bool,
}

impl NpzWriter {
    /// Starts an archive at `path` (written to a temporary sibling until `finish`).
    /// `compress` deflates members (`np.savez_compressed`); otherwise they are stored.
    /// An identical existing archive is left untouched unless `force`.
    pub fn create(path: &Path, compress: bool, force: bool) -> Result<Self> {
        let file = AtomicFile::create(path, force)?;
        let w = BufWriter::with_capacity(super::CHUNK_BYTES, file.file()?);
        Ok(NpzWriter {
            path: path.to_path_buf(),
            file,
            zip: ZipWriter::new(w),
            compress,
        })
    }

    /// The options every member is written with.
    pub fn member_options(compress: bool) -> SimpleFileOptions {
        let base = SimpleFileOptions::default()
            .last_modified_time(DateTime::default())
            .unix_permissions(0o644)
            .large_file(true);
        if compress {
            base.compression_method(CompressionMethod::Deflated)
                .compression_level(Some(DEFLATE_LEVEL))
        } else {
            base.compression_method(CompressionMethod::Stored)
        }
    }
}

impl ArrayWriter for NpzWriter {
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()> {
        let len = header
            .byte_len()
            .ok_or_else(|| Error::usage(format!("array `{name}` is too large")))?;
        let member = format!("{name}.npy");
        let zip_err = |e: zip::result::ZipError| Error::io(&self.path, std::io::Error::other(e));
        self.zip
            .start_file(member.as_str(), Self::member_options(self.compress))
            .map_err(zip_err)?;
        let path = self.path.clone();
        self.zip
            .write_all(&header.to_bytes())
            .map_err(|e| Error::io(&path, e))?;
        copy_exact(data, &mut self.zip, len, name, &path)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let NpzWriter {
            path, file, zip, ..
        } = *self;
        let mut w = zip
            .finish()
            .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        w.flush().map_err(|e| Error::io(&path, e))?;
        drop(w);
        file.commit().map(|_| ())
    }
}
