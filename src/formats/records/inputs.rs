//! Which files a TFRecord input is (docs/formats/tfrecord.md §7): one file, a folder of
//! shards, or a glob in the last path component; shards in sorted name order.

use super::compression::{self, Compression};
use super::RecordOptions;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One shard: its path, length and compression.
#[derive(Clone, Debug)]
pub struct Shard {
    /// The file.
    pub path: PathBuf,
    /// Its length in bytes.
    pub len: u64,
    /// Its compression (detected or given).
    pub compression: Compression,
}

/// Bytes looked at to detect a file.
const HEAD: u64 = 64 << 10;

/// The compression of `path` if it holds TFRecords: the first record header (after
/// decompression) must carry a valid CRC. An empty file is a TFRecord file only when
/// its name says so or options were given.
pub fn sniff(path: &Path, opts: &RecordOptions) -> Result<Option<(Compression, u64)>> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = Vec::new();
    (&mut file)
        .take(HEAD)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if head.is_empty() {
        let named = path.file_name().is_some_and(|n| {
            n.to_string_lossy()
                .to_ascii_lowercase()
                .contains("tfrecord")
        });
        let asked = opts.compression.is_some() || opts.kind.is_some();
        return Ok((named || asked).then_some((opts.compression.unwrap_or(Compression::None), len)));
    }
    if let Some(c) = opts.compression {
        return Ok(Some((c, len)));
    }
    let c = match compression::detect(&head) {
        Some(c) => c,
        // `--records` says it is TFRecords: the framing will say what is wrong.
        None if opts.kind.is_some() => return Ok(Some((Compression::None, len))),
        None => return Ok(None),
    };
    if matches!(c, Compression::Gzip | Compression::Zlib) {
        // Magic bytes alone are not enough (a TensorProto can start like a zlib header):
        // the decompressed stream must start with a record header (or be empty).
        let mut s = compression::open_stream(path, c)?;
        let mut first = [0u8; 12];
        match compression::read_full(&mut s, &mut first) {
            Ok(0) => {}
            Ok(12) if compression::valid_header(&first) => {}
            _ => return Ok(None),
        }
    }
    Ok(Some((c, len)))
}

/// The TensorBoard event files (`events.out.tfevents.*`) under `dir`, at any depth
/// (runs are subfolders), in sorted path order.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let p = e.map_err(|e| Error::io(&d, e))?.path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if p.is_dir() && !name.starts_with('.') {
                todo.push(p);
            } else if name.starts_with("events.out.tfevents.") && p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every file of `files` as a shard: each must be a TFRecord file.
pub fn shards(files: Vec<PathBuf>, opts: &RecordOptions) -> Result<Vec<Shard>> {
    let mut out = Vec::new();
    for f in files {
        let (compression, len) = sniff(&f, opts)?
            .ok_or_else(|| Error::corrupt(&f, "not a TFRecord file under any compression"))?;
        out.push(Shard {
            path: f,
            len,
            compression,
        });
    }
    Ok(out)
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The shards of `path`, or `None` if it is not a TFRecord input.
pub fn resolve(path: &Path, opts: &RecordOptions) -> Result<Option<Vec<Shard>>> {
    let mut files = Vec::new();
    if path.is_file() {
        files.push(path.to_path_buf());
    } else if path.is_dir() {
        let mut names = Vec::new();
        for e in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let e = e.map_err(|e| Error::io(path, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if !e.path().is_file() {
                return Ok(None);
            }
            names.push(e.path());
        }
        if names.is_empty() {
            return Ok(None);
        }
        names.sort();
        files = names;
    } else {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name.filter(|n| has_glob(n)) else {
            return Ok(None);
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let glob = globset::GlobBuilder::new(&name)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::usage(format!("{}: not a valid glob: {e}", path.display())))?
            .compile_matcher();
        for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            if glob.is_match(e.file_name()) && e.path().is_file() {
                files.push(e.path());
            }
        }
        if files.is_empty() {
            return Err(Error::usage(format!("no file matches {}", path.display())));
        }
        files.sort();
    }
    let mut shards = Vec::new();
    let mut others = Vec::new();
    for f in files {
        match sniff(&f, opts)? {
            Some((compression, len)) => shards.push(Shard {
                path: f,
                len,
                compression,
            }),
            None => others.push(f),
        }
    }
    // None of them is TFRecords: another format's input (a checkpoint folder or glob).
    if shards.is_empty() {
        return Ok(None);
    }
    if let Some(f) = others.first() {
        return Err(Error::corrupt(
            f,
            format!(
                "is among the TFRecord shards of {} but is not a TFRecord file (its first \
                 record header's CRC does not match under any compression)",
                path.display()
            ),
        ));
    }
    Ok(Some(shards))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }

    #[test]
    fn no_other_fixture_is_taken_for_tfrecords() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut files = Vec::new();
        walk(&root, &mut files);
        let mut n = 0;
        for f in files {
            // fixtures/foreign/data.tfrecord is a TFRecord too (a file tf2npy once named
            // without reading it).
            let is_records = f.starts_with(root.join("records"))
                || f == root.join("foreign").join("data.tfrecord");
            let got = sniff(&f, &RecordOptions::default()).unwrap();
            if is_records {
                let name = f.to_string_lossy();
                let meta = name.ends_with("dataset_spec.pb") || name.ends_with("snapshot.metadata");
                let data = !name.contains("expected") && !name.ends_with(".json") && !meta;
                assert_eq!(got.is_some(), data, "{name}");
            } else {
                assert!(got.is_none(), "{} taken for TFRecords", f.display());
                n += 1;
            }
        }
        assert!(n > 200, "{n}");
    }
}
