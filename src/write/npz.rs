//! `.npz` output: a ZIP archive of `NAME.npy` members laid out the way `np.savez` /
//! `np.savez_compressed` write it (ZIP64 extra on every local header, as numpy's
//! `force_zip64=True`; 1980-01-01 timestamps; members in the order given, which the
//! plan sorts), so the same input always gives the same bytes.
//!
//! Every member streams in bounded memory: the CRC-32 is computed while the payload goes
//! by, and the local header's CRC and sizes are patched by a seek afterwards (the
//! output is a seekable temporary file from [`AtomicFile`]). With
//! [`Compression::Deflate`], members are cut into fixed 1 MiB blocks deflated on
//! several threads (module `deflate`); the archive bytes do not depend on the thread
//! count. (They are not those of `np.savez_compressed`, whose single zlib stream has no
//! block boundaries; numpy loads both alike.)
//!
//! # Why a hand-written ZIP writer
//!
//! Until now this used the `zip` crate's `ZipWriter` (9.8.2 in Cargo.lock). Its only
//! entry points for data compressed elsewhere are `add_prepared_file` (a
//! `PreparedZipFile` holds the whole compressed member in a `Vec`) and
//! `raw_copy_file*` (a `ZipFile` read from another archive, whose CRC and compressed
//! size must be known before the local header is written). `start_entry`, which takes
//! raw values, is private (and tf2npy denies `unsafe`), so there is no safe way to
//! stream pre-compressed deflate blocks of unknown total size into one of its entries:
//! parallel compression through it would mean holding (or spooling to disk and copying)
//! every compressed member whole. So the archive is written here (module `zip64`, ~250
//! lines, layout checked by tests with the `zip` crate's reader, CPython's `zipfile`
//! and `numpy.load`), and the `zip` crate is kept for reading only (`--check`, tests).

mod deflate;
mod zip64;

use super::atomic::AtomicFile;
use super::{ArrayHeader, ArrayWriter, CHUNK_BYTES};
use crate::error::{Error, Result};
use crate::stream::ByteStream;
use std::collections::HashSet;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use zip64::{Limits, Method, ZipWriter};

/// Deflate level used by `--compress` (zlib's default, as `np.savez_compressed`);
/// `--compress-level` picks another (0-9, zlib's scale).
pub const DEFLATE_LEVEL: u32 = 6;

/// Members whose `.npy` bytes (header and payload) are at most this long are gathered
/// in memory and written whole, local header with its final CRC-32 and sizes first:
/// one `write` instead of a header, the data and three seeks to patch the header.
pub const SMALL_MEMBER: usize = 1 << 20;

/// Uncompressed bytes per independently deflated block. Fixed (not derived from the
/// thread count) so the output is the same on every machine with the same deflate
/// backend; changing it changes the compressed bytes.
pub const DEFLATE_BLOCK: usize = 1 << 20;

/// How members are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Stored as is (`np.savez`).
    #[default]
    Stored,
    /// Deflated at `level` (0-9, zlib's scale; [`DEFLATE_LEVEL`] is
    /// `np.savez_compressed`'s), on up to `threads` threads; 0 means one per available
    /// core. The bytes written do not depend on `threads`. A block that deflate does
    /// not shrink is written as stored deflate blocks instead (level 0 stores every
    /// block), so a member is never more than a few bytes per 64 KiB larger than its
    /// data.
    Deflate {
        /// Compression threads; 0 = all available cores.
        threads: usize,
        /// zlib level, 0-9 (higher values are clamped to 9).
        level: u32,
    },
}

impl Compression {
    /// `Deflate` at `level` (default [`DEFLATE_LEVEL`]) when `compress` or a level is
    /// given, else `Stored`.
    pub fn new(compress: bool, level: Option<u32>, threads: usize) -> Self {
        if compress || level.is_some() {
            Compression::Deflate {
                threads,
                level: level.unwrap_or(DEFLATE_LEVEL).min(9),
            }
        } else {
            Compression::Stored
        }
    }
}

/// The number of threads `threads` stands for (0 = every available core).
fn resolve_threads(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads
    }
}

/// Writes arrays as members of a `.npz` archive.
pub struct NpzWriter {
    path: PathBuf,
    file: AtomicFile,
    zip: ZipWriter<BufWriter<File>>,
    compression: Compression,
    threads: usize,
    block: usize,
    names: HashSet<String>,
    /// A small member's bytes, gathered before it is written whole (reused).
    small: Vec<u8>,
    /// Members up to this size are written whole ([`SMALL_MEMBER`]; lowered by tests).
    small_max: usize,
    /// Set while a member is being written; still set after a failure, which leaves
    /// the archive unusable.
    broken: bool,
}

impl NpzWriter {
    /// Starts an archive at `path` (written to a temporary sibling until `finish`),
    /// its members stored or deflated as `compression` says. An identical existing
    /// archive is left untouched unless `force`.
    pub fn create(path: &Path, compression: Compression, force: bool) -> Result<Self> {
        Self::with_settings(path, compression, force, DEFLATE_BLOCK, Limits::STANDARD)
    }

    fn with_settings(
        path: &Path,
        compression: Compression,
        force: bool,
        block: usize,
        limits: Limits,
    ) -> Result<Self> {
        let file = AtomicFile::create(path, force)?;
        let w = BufWriter::with_capacity(CHUNK_BYTES, file.file()?);
        let threads = match compression {
            Compression::Stored => 1,
            Compression::Deflate { threads, .. } => resolve_threads(threads),
        };
        Ok(NpzWriter {
            path: path.to_path_buf(),
            file,
            zip: ZipWriter::new(w, limits),
            compression,
            threads,
            block,
            names: HashSet::new(),
            small: Vec::new(),
            small_max: SMALL_MEMBER,
            broken: false,
        })
    }

    fn write_member(
        &mut self,
        member: &str,
        name: &str,
        header: &ArrayHeader,
        data: &mut dyn ByteStream,
    ) -> Result<()> {
        let len = header
            .byte_len()
            .ok_or_else(|| Error::usage(format!("array `{name}` is too large")))?;
        let head = header.to_bytes();
        let total = len
            .checked_add(head.len() as u64)
            .ok_or_else(|| Error::usage(format!("array `{name}` is too large")))?;
        let path = &self.path;
        let io = |e| Error::io(path, e);
        let zip = &mut self.zip;
        let mut payload = Payload::new(&head, data, len, name);
        if let Some(size) = usize::try_from(total).ok().filter(|&t| t <= self.small_max) {
            // Gather it, then write local header (final CRC and sizes) and data at once.
            let mut bytes = std::mem::take(&mut self.small);
            bytes.clear();
            bytes.resize(size, 0);
            payload.fill(&mut bytes)?;
            let crc = payload.finish()?;
            let res = match self.compression {
                Compression::Stored => zip.add_whole(member, Method::Stored, crc, total, &bytes),
                Compression::Deflate { level, .. } => {
                    let mut z = Vec::new();
                    let mut pos = 0;
                    deflate::compress(
                        &mut |buf| {
                            buf.copy_from_slice(&bytes[pos..pos + buf.len()]);
                            pos += buf.len();
                            Ok(())
                        },
                        total,
                        level,
                        self.block,
                        1,
                        &mut |b| {
                            z.extend_from_slice(b);
                            Ok(())
                        },
                        path,
                    )?;
                    zip.add_whole(member, Method::Deflated, crc, total, &z)
                }
            };
            self.small = bytes;
            return res.map_err(io);
        }
        match self.compression {
            Compression::Stored => {
                zip.begin(member, Method::Stored, total).map_err(io)?;
                payload.pump(&mut |bytes| zip.write(bytes).map_err(io))?;
            }
            Compression::Deflate { level, .. } => {
                zip.begin(member, Method::Deflated, total).map_err(io)?;
                deflate::compress(
                    &mut |buf| payload.fill(buf),
                    total,
                    level,
                    self.block,
                    self.threads,
                    &mut |bytes| zip.write(bytes).map_err(io),
                    path,
                )?;
            }
        }
        let crc = payload.finish()?;
        zip.end(crc, total).map_err(io)
    }
}

impl ArrayWriter for NpzWriter {
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()> {
        if self.broken {
            return Err(Error::usage(format!(
                "internal error: {} cannot take `{name}` after an earlier failure",
                self.path.display()
            )));
        }
        // Members whose names could land outside the folder they are unzipped into
        // are refused (zip-slip); `run` checks every name before writing anything.
        crate::plan::safe_names::check(name, name)?;
        let member = format!("{name}.npy");
        if !self.names.insert(member.clone()) {
            return Err(Error::usage(format!(
                "two arrays would be stored as `{member}` in {}",
                self.path.display()
            )));
        }
        self.broken = true;
        self.write_member(&member, name, header, data)?;
        self.broken = false;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let NpzWriter {
            path,
            file,
            zip,
            broken,
            ..
        } = *self;
        if broken {
            return Err(Error::usage(format!(
                "internal error: {} is incomplete after an earlier failure",
                path.display()
            )));
        }
        // `finish` flushes the buffer, so dropping it afterwards loses no error.
        drop(zip.finish().map_err(|e| Error::io(&path, e))?);
        file.commit().map(|_| ())
    }
}

/// One member's uncompressed bytes: the `.npy` header, then exactly `len` bytes from
/// the stream, CRC-32 computed on the way.
struct Payload<'a> {
    head: &'a [u8],
    data: &'a mut dyn ByteStream,
    /// Stream bytes still expected.
    left: u64,
    len: u64,
    name: &'a str,
    crc: crc32fast::Hasher,
}

impl<'a> Payload<'a> {
    fn new(head: &'a [u8], data: &'a mut dyn ByteStream, len: u64, name: &'a str) -> Self {
        Payload {
            head,
            data,
            left: len,
            len,
            name,
            crc: crc32fast::Hasher::new(),
        }
    }

    /// Fills `buf` completely with the next payload bytes. The caller never asks for
    /// more than the header plus `len`; a stream that ends early is an error.
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        let h = self.head.len().min(buf.len());
        buf[..h].copy_from_slice(&self.head[..h]);
        self.head = &self.head[h..];
        let mut done = h;
        while done < buf.len() {
            let want = (buf.len() - done).min(usize::try_from(self.left).unwrap_or(usize::MAX));
            if want == 0 {
                return Err(Error::usage(format!(
                    "internal error: asked for more of `{}` than its {} bytes",
                    self.name, self.len
                )));
            }
            let n = self.data.read(&mut buf[done..done + want])?;
            if n == 0 {
                return Err(Error::usage(format!(
                    "internal error: payload of `{}` ended {} bytes short of {}",
                    self.name, self.left, self.len
                )));
            }
            let n = n.min(want);
            self.left -= n as u64;
            done += n;
        }
        self.crc.update(buf);
        Ok(())
    }

    /// Passes the whole payload (header, then every stream byte) to `sink`, borrowing
    /// the stream's bytes when it lends them, and checks it ends where the header says.
    fn pump(&mut self, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let head = std::mem::take(&mut self.head);
        self.crc.update(head);
        sink(head)?;
        let (left, crc, name, len) = (&mut self.left, &mut self.crc, self.name, self.len);
        crate::stream::pump(self.data, CHUNK_BYTES, |b| {
            let n = b.len() as u64;
            if n > *left {
                return Err(Error::usage(format!(
                    "internal error: payload of `{name}` is longer than its header says \
                     ({len} bytes)"
                )));
            }
            *left -= n;
            crc.update(b);
            sink(b)
        })?;
        Ok(())
    }

    /// Checks that the stream is at its end (which is when sources finish their own
    /// integrity checks) and returns the CRC-32 of everything filled.
    fn finish(self) -> Result<u32> {
        if self.left != 0 || !self.head.is_empty() {
            return Err(Error::usage(format!(
                "internal error: payload of `{}` was not read to its end",
                self.name
            )));
        }
        let mut probe = [0u8; 64];
        if self.data.read(&mut probe)? != 0 {
            return Err(Error::usage(format!(
                "internal error: payload of `{}` is longer than its header says ({} bytes)",
                self.name, self.len
            )));
        }
        Ok(self.crc.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::io::Read;
    use std::process::Command;

    /// A stream that returns at most `chunk` bytes per read.
    struct Chunky<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl ByteStream for Chunky<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
            let n = buf.len().min(self.chunk).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    struct Member {
        name: &'static str,
        header: ArrayHeader,
        data: Vec<u8>,
    }

    fn member(name: &'static str, descr: &str, shape: &[u64], item: u64) -> Member {
        let header = ArrayHeader {
            descr: descr.into(),
            shape: shape.to_vec(),
            item_bytes: item,
        };
        let n = header.byte_len().unwrap() as usize;
        let data = (0..n)
            .map(|i| {
                let x = (i as f32 * 0.003).sin() * 50.0;
                (x as i32 as u8) ^ (i as u8 & 3)
            })
            .collect();
        Member { name, header, data }
    }

    fn members() -> Vec<Member> {
        vec![
            member("weights", "<f4", &[5000], 4),
            member("empty", "<f8", &[0], 8),
            member("dir/sub/b", "<i8", &[3, 5], 8),
            member("ünï/名前", "|u1", &[300], 1),
            member("scalar", "<f8", &[], 8),
            member("matrix", "<i2", &[64, 70], 2),
        ]
    }

    /// Writes `ms` to `path` and returns the archive bytes.
    fn write(
        path: &Path,
        ms: &[Member],
        compression: Compression,
        block: usize,
        limits: Limits,
        chunk: usize,
    ) -> Vec<u8> {
        write_small(path, ms, compression, block, limits, chunk, SMALL_MEMBER)
    }

    /// [`write`], with members up to `small_max` bytes written whole and the others
    /// streamed (header patched afterwards).
    fn write_small(
        path: &Path,
        ms: &[Member],
        compression: Compression,
        block: usize,
        limits: Limits,
        chunk: usize,
        small_max: usize,
    ) -> Vec<u8> {
        let mut w =
            Box::new(NpzWriter::with_settings(path, compression, true, block, limits).unwrap());
        w.small_max = small_max;
        for m in ms {
            let mut s = Chunky {
                data: &m.data,
                chunk,
            };
            w.add(m.name, &m.header, &mut s).unwrap();
        }
        w.finish().unwrap();
        std::fs::read(path).unwrap()
    }

    fn python() -> String {
        std::env::var("TF2NPY_PYTHON").unwrap_or_else(|_| "python3".to_string())
    }

    /// Checks the archive with CPython's `zipfile` (CRCs, 1980 dates, UTF-8 flag) and
    /// `numpy.load`, comparing every array bit for bit through its SHA-256.
    fn check_with_python(path: &Path, ms: &[Member], method: u16) {
        let script = r#"
import hashlib, sys, zipfile
import numpy as np
p, method = sys.argv[1], int(sys.argv[2])
with zipfile.ZipFile(p) as z:
    assert z.testzip() is None
    for zi in z.infolist():
        assert zi.date_time == (1980, 1, 1, 0, 0, 0), zi.date_time
        assert zi.compress_type == method, zi.compress_type
        assert zi.external_attr >> 16 == 0o100644, oct(zi.external_attr)
        assert bool(zi.flag_bits & 0x800) == (not zi.filename.isascii()), zi.flag_bits
with np.load(p, allow_pickle=False) as f:
    for k in f.files:
        a = f[k]
        print(k, a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest(), sep="\t")
"#;
        let out = Command::new(python())
            .env("PYTHONIOENCODING", "utf-8")
            .arg("-c")
            .arg(script)
            .arg(path)
            .arg(method.to_string())
            .output()
            .expect("python3 with numpy must be installed for the npz tests");
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected: String = ms
            .iter()
            .map(|m| {
                let sha: String = Sha256::digest(&m.data)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!(
                    "{}\t{}\t{:?}\t{}\n",
                    m.name, m.header.descr, m.header.shape, sha
                )
            })
            .collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }

    /// Reads every member back with the `zip` crate (which checks each CRC at the end).
    fn check_with_zip_crate(bytes: &[u8], ms: &[Member], deflated: bool) {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(z.len(), ms.len());
        for (i, m) in ms.iter().enumerate() {
            let mut f = z.by_index(i).unwrap();
            assert_eq!(f.name().unwrap(), format!("{}.npy", m.name));
            let method = if deflated {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            };
            assert_eq!(f.compression(), method);
            let mut got = Vec::new();
            f.read_to_end(&mut got).unwrap();
            let mut want = m.header.to_bytes();
            want.extend_from_slice(&m.data);
            assert!(got == want, "member {} differs", m.name);
        }
    }

    #[test]
    fn stored_and_deflated_archives_load_in_zip_and_numpy() {
        let dir = tempfile::tempdir().unwrap();
        let ms = members();
        for (compression, method) in [
            (Compression::Stored, 0u16),
            (
                Compression::Deflate {
                    threads: 2,
                    level: DEFLATE_LEVEL,
                },
                8,
            ),
        ] {
            let path = dir.path().join(format!("m{method}.npz"));
            let bytes = write(&path, &ms, compression, 4096, Limits::STANDARD, 1 << 20);
            assert!(!bytes.windows(4).any(|w| w == b"PK\x06\x06"));
            check_with_zip_crate(&bytes, &ms, method == 8);
            check_with_python(&path, &ms, method);
            // Members written whole (all of them, some, none) or streamed with their
            // header patched afterwards: the same archive bytes.
            for small_max in [0, 1000, 20_000] {
                let other = write_small(
                    &path,
                    &ms,
                    compression,
                    4096,
                    Limits::STANDARD,
                    7,
                    small_max,
                );
                assert!(other == bytes, "small_max {small_max}");
            }
        }
    }

    #[test]
    fn deflated_bytes_ignore_threads_runs_and_read_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let ms = members();
        let path = dir.path().join("d.npz");
        let base = write(
            &path,
            &ms,
            Compression::Deflate {
                threads: 1,
                level: DEFLATE_LEVEL,
            },
            4096,
            Limits::STANDARD,
            1 << 20,
        );
        for (threads, chunk) in [(2, 1 << 20), (3, 1 << 20), (2, 1 << 20), (3, 1), (2, 7)] {
            let got = write(
                &path,
                &ms,
                Compression::Deflate {
                    threads,
                    level: DEFLATE_LEVEL,
                },
                4096,
                Limits::STANDARD,
                chunk,
            );
            assert!(got == base, "threads {threads}, chunk {chunk}");
        }
        let stored = write(
            &path,
            &ms,
            Compression::Stored,
            4096,
            Limits::STANDARD,
            1 << 20,
        );
        let stored7 = write(&path, &ms, Compression::Stored, 4096, Limits::STANDARD, 7);
        assert!(stored == stored7);
        // The default block size and all cores give one valid archive too.
        let mut w = Box::new(
            NpzWriter::create(
                &path,
                Compression::Deflate {
                    threads: 0,
                    level: DEFLATE_LEVEL,
                },
                true,
            )
            .unwrap(),
        );
        for m in &ms {
            w.add(
                m.name,
                &m.header,
                &mut Chunky {
                    data: &m.data,
                    chunk: 1 << 16,
                },
            )
            .unwrap();
        }
        w.finish().unwrap();
        check_with_zip_crate(&std::fs::read(&path).unwrap(), &ms, true);
    }

    #[test]
    fn zip64_records_with_lowered_limits_load_in_zip_and_numpy() {
        let dir = tempfile::tempdir().unwrap();
        let ms = members();
        // Every size, offset and the entry count take the ZIP64 route.
        let limits = Limits {
            u32_at: 200,
            u16_at: 3,
        };
        for (compression, method) in [
            (Compression::Stored, 0u16),
            (
                Compression::Deflate {
                    threads: 3,
                    level: DEFLATE_LEVEL,
                },
                8,
            ),
        ] {
            let path = dir.path().join(format!("z{method}.npz"));
            let bytes = write(&path, &ms, compression, 4096, limits, 1 << 20);
            assert!(write_small(&path, &ms, compression, 4096, limits, 1 << 20, 0) == bytes);
            let n = bytes.len();
            assert_eq!(&bytes[n - 98..n - 94], b"PK\x06\x06");
            assert_eq!(&bytes[n - 42..n - 38], b"PK\x06\x07");
            check_with_zip_crate(&bytes, &ms, method == 8);
            check_with_python(&path, &ms, method);
        }
    }

    #[test]
    fn bad_streams_and_duplicates_fail_and_publish_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.npz");
        let m = member("x", "<f4", &[100], 4);
        for compression in [
            Compression::Stored,
            Compression::Deflate {
                threads: 2,
                level: DEFLATE_LEVEL,
            },
        ] {
            for data in [&m.data[..399], &[m.data.as_slice(), b"+"].concat()[..]] {
                let mut w = Box::new(
                    NpzWriter::with_settings(&path, compression, true, 64, Limits::STANDARD)
                        .unwrap(),
                );
                let mut s = Chunky { data, chunk: 50 };
                assert!(w.add("x", &m.header, &mut s).is_err());
                let mut s = Chunky {
                    data: &m.data,
                    chunk: 50,
                };
                assert!(w.add("y", &m.header, &mut s).is_err());
                assert!(w.finish().is_err());
            }
            let mut w = Box::new(NpzWriter::create(&path, compression, true).unwrap());
            w.add(
                "x",
                &m.header,
                &mut Chunky {
                    data: &m.data,
                    chunk: 50,
                },
            )
            .unwrap();
            let dup = w.add(
                "x",
                &m.header,
                &mut Chunky {
                    data: &m.data,
                    chunk: 50,
                },
            );
            assert!(dup.is_err());
            drop(w);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }
}
