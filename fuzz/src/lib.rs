//! Helpers shared by the tf2npy fuzz targets: a byte cursor to carve structured values
//! out of the fuzzer's input, a per-process scratch folder for the files the readers
//! want (they read paths, not slices), a drain that pulls a tensor's stream to its end
//! (or to a cap, so a tiny broadcast constant of a huge shape is not a timeout),
//! and (from the integration tests) the table writer that turns fuzzed `(key, value)`
//! pairs into a valid `.index`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tf2npy::error::Ctx;
use tf2npy::plan::convert::{to_numpy, ConvertOptions};
use tf2npy::plan::sparse::SparseMode;
use tf2npy::plan::{self, SelectOptions};
use tf2npy::source::{Container, RawTensor, StringRead};
use tf2npy::stream::ByteStream;

/// Payload bytes (or string elements) a drain pulls at most from one tensor.
pub const DRAIN_CAP: u64 = 1 << 20;

/// Reads structured values from the front of the fuzzer's input; past the end every
/// read yields zeros or empty slices, so any input is usable.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// The next byte (0 at the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `n` next bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// This process's scratch folder (on `/dev/shm` when there is one), created once.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("tf2npy-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch folder");
        dir
    })
}

/// Empties the scratch folder (files only; the targets create no subfolders).
pub fn clear_scratch() {
    if let Ok(rd) = std::fs::read_dir(scratch()) {
        for e in rd.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes `bytes` to `name` in the scratch folder; returns the path.
pub fn put(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, bytes).expect("write a scratch file");
    p
}

/// Reads a fixed-size stream to its end or to [`DRAIN_CAP`] bytes, with reads of
/// `chunk` bytes (at least 1). Returns the bytes seen (up to the cap) or the error.
pub fn drain_stream(s: &mut dyn ByteStream, chunk: usize) -> tf2npy::Result<Vec<u8>> {
    let mut buf = vec![0u8; chunk.clamp(1, 1 << 16)];
    let mut out = Vec::new();
    loop {
        let n = s.read(&mut buf)?;
        assert!(n <= buf.len(), "read returned more than the buffer");
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() as u64 >= DRAIN_CAP {
            return Ok(out);
        }
    }
}

/// Pulls every string of `s` (at most [`DRAIN_CAP`] of them), checking each against
/// `max_len`.
pub fn drain_strings(s: &mut dyn StringRead) -> tf2npy::Result<u64> {
    let max = s.max_len()?;
    let mut one = Vec::new();
    let mut n = 0u64;
    let mut bytes = 0u64;
    while s.next_into(&mut one)? {
        assert!(one.len() as u64 <= max, "a string is longer than max_len");
        n += 1;
        bytes += one.len() as u64;
        if n >= DRAIN_CAP || bytes >= DRAIN_CAP {
            break;
        }
    }
    Ok(n)
}

/// Drains a reader's tensor either way it comes.
pub fn drain(raw: RawTensor<'_>, chunk: usize) -> tf2npy::Result<()> {
    match raw {
        RawTensor::Fixed(mut s) => drain_stream(&mut s, chunk).map(|_| ()),
        RawTensor::Strings(mut s) => drain_strings(s.as_mut()).map(|_| ()),
    }
}

/// The integration tests' V2 bundle writer (`tests/it/bundle_writer.rs`), compiled here
/// too so the project has one table writer: the targets use [`bundle_writer::table`] to
/// turn fuzzed `(key, value)` pairs into a valid `.index`.
#[path = "../../tests/it/bundle_writer.rs"]
pub mod bundle_writer;

/// What the `detect` and `hdf5` targets do with an opened container: list it (JSON, and
/// the table with `--var-names`), plan every tensor (hidden ones too, sparse parts as
/// `sparse` says) and convert each, checking that a payload drained below the cap has
/// exactly the length its `.npy` header announces.
pub fn list_plan_convert(c: &dyn Container, sparse: SparseMode) {
    let _ = tf2npy::listing::to_json(c, None);
    if let Ok(names) = c.variable_names() {
        assert_eq!(names.len(), c.entries().len());
        let _ = tf2npy::listing::to_table(c, Some(&names));
    }
    let select = SelectOptions {
        all: true,
        sparse,
        ..Default::default()
    };
    let Ok(plan) = plan::build(c, &select) else {
        return;
    };
    let ctx = Ctx::file(c.path());
    for t in &plan.tensors {
        let Ok((entry, raw)) = t.source.open(c, true) else {
            continue;
        };
        let Ok(arr) = to_numpy(&entry, raw, ConvertOptions::default(), &ctx) else {
            continue;
        };
        let want = arr.header.byte_len();
        let mut stream = arr.data;
        if let Ok(got) = drain_stream(&mut stream, 4093) {
            if (got.len() as u64) < DRAIN_CAP {
                assert_eq!(Some(got.len() as u64), want, "payload length != header");
            }
        }
    }
}
