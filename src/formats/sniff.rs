//! Naming files tf2npy does not read. When a file is none of the TensorFlow protobufs
//! (every interpretation in [`super::open`] failed), its first bytes often say what it
//! is: a TFLite flatbuffer, an ONNX model, a PyTorch archive, a NumPy array, ... A user
//! who handed tf2npy such a file is better served by one line naming it and saying what
//! to do than by the protobuf decoder's complaints, which stay available on a second
//! line.
//!
//! [`identify`] is a pure function of the path and the first bytes, so detection can
//! call it wherever a file turned out not to be readable. The signatures, with where
//! each is defined:
//!
//! | kind | signature |
//! |---|---|
//! | TFLite | flatbuffer file identifier `TFL3` at bytes 4..8 (tensorflow/lite/schema/schema.fbs `file_identifier "TFL3"`) |
//! | NumPy `.npy` | `\x93NUMPY` (numpy/lib/format.py `MAGIC_PREFIX`) |
//! | ZIP (`.npz`, `.keras`, PyTorch) | local file header `PK\x03\x04` (or the empty archive's `PK\x05\x06`); the first member's name tells them apart: `*.npy` (numpy `savez`), `*/data.pkl` or `*/version` (torch/serialization.py `_save`), `metadata.json`/`config.json`/`model.weights.h5` (keras/src/saving/saving_lib.py) |
//! | PyTorch legacy | a protocol-2 pickle whose first object is `MAGIC_NUMBER = 0x1950a86a20f9469cfc6c` (torch/serialization.py) as `LONG1` |
//! | pickle | `\x80` then protocol 2..=5 (Python's pickle `PROTO` opcode) |
//! | safetensors | little-endian u64 header length N, then N bytes of JSON starting with `{` (safetensors format) |
//! | HDF5 (Keras `.h5`) | `\x89HDF\r\n\x1a\n` at offset 0, 512, 1024, 2048, ... (HDF5 spec, superblock) |
//! | TFRecord | u64 length, then its masked CRC32C (tensorflow/core/lib/io/record_writer.cc) |
//! | ONNX | a protobuf `ModelProto`: field 1 `ir_version` (varint) first, only ModelProto's field numbers and wire types, and field 7 `graph` (onnx/onnx.proto) |
//! | TF.js | JSON with `"modelTopology"` or `"weightsManifest"` (tfjs-converter's model.json) |
//! | gzip, tar | `\x1f\x8b`; `ustar` at offset 257 |
//! | text protobufs | a SavedModel or GraphDef in text format; a `checkpoint` state file |
//! | by name only | a TF.js weight file `groupN-shardKofM[.bin]` (raw bytes); a chunked SavedModel `*.cpb` |

use crate::error::Error;
use crate::formats::io::unmask_crc;
use std::fmt;
use std::path::Path;

/// How many leading bytes [`identify`] looks at (when the file has that many).
pub const SNIFF_BYTES: usize = 64 << 10;

/// What a file is, in one line, and what to do with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What the file is, e.g. `a TensorFlow Lite model (.tflite flatbuffer)`.
    pub kind: &'static str,
    /// What to do instead, e.g. which tool reads it.
    pub advice: &'static str,
    /// Recognised by its file name alone (a TF.js weight shard holds raw bytes).
    pub by_name: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.kind, self.advice)
    }
}

const fn v(kind: &'static str, advice: &'static str) -> Option<Verdict> {
    Some(Verdict {
        kind,
        advice,
        by_name: false,
    })
}

/// Names the kind of file `first` (the first [`SNIFF_BYTES`] bytes of `path`, or all of
/// a shorter file) starts, among files people hand tf2npy that it does not read; `None`
/// when the bytes match none of them. `path` only breaks ties its content leaves open
/// (a ZIP archive or pickle whose members or objects say nothing).
pub fn identify(path: &Path, first: &[u8]) -> Option<Verdict> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if first.get(4..8) == Some(b"TFL3") {
        return v(
            "a TensorFlow Lite model (.tflite flatbuffer)",
            "tf2npy does not read TFLite models: convert the SavedModel or checkpoint it was \
             made from, or read its tensors with tf.lite.Interpreter",
        );
    }
    if first.starts_with(b"\x93NUMPY") {
        return v(
            "already a NumPy .npy array",
            "numpy.load(path) reads it; tf2npy converts TensorFlow files into this format",
        );
    }
    if first.starts_with(b"PK\x03\x04") || first.starts_with(b"PK\x05\x06") {
        return Some(zip_verdict(first, &ext));
    }
    if let Some(verdict) = pickle_verdict(first, &ext) {
        return Some(verdict);
    }
    if is_hdf5(first) {
        return v(
            "an HDF5 file (a Keras .h5 model or weights?)",
            "tf2npy reads HDF5 files (Keras .h5, .weights.h5, any h5py file): name the file \
             itself, e.g. `tf2npy FILE -o out.npz`",
        );
    }
    if is_safetensors(first) {
        return v(
            "a safetensors file",
            "tf2npy does not read safetensors: safetensors.numpy.load_file(path) gives its \
             NumPy arrays",
        );
    }
    if is_tfrecord(first) {
        return v(
            "a TFRecord file",
            "tf2npy reads TFRecord files (Examples, SequenceExamples, serialized tensors): \
             name the file itself, e.g. `tf2npy FILE -o out.npz`",
        );
    }
    if first.starts_with(b"\x1f\x8b") {
        return v(
            "a gzip-compressed file",
            "decompress it first (tar xzf for a .tar.gz), then give tf2npy the checkpoint or \
             SavedModel it holds",
        );
    }
    if first.get(257..262) == Some(b"ustar") {
        return v(
            "a tar archive",
            "extract it first (tar xf), then give tf2npy the checkpoint or SavedModel it holds",
        );
    }
    if is_onnx(first) {
        return v(
            "an ONNX model",
            "tf2npy does not read ONNX: onnx.numpy_helper.to_array gives its initializers as \
             NumPy arrays",
        );
    }
    if let Some(verdict) = text_verdict(first) {
        return Some(verdict);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if ext == "cpb" {
        return Some(Verdict {
            kind: "a chunked SavedModel graph (saved_model.cpb, the proto splitter's format)",
            advice: "tf2npy does not read chunked SavedModels: convert the variables with \
                     `tf2npy DIR/variables/variables`",
            by_name: true,
        });
    }
    if is_tfjs_shard_name(name) {
        return Some(Verdict {
            kind: "a TensorFlow.js weight file (raw arrays, described by the model.json beside it)",
            advice: "tf2npy does not read TF.js models: its model.json lists the arrays this \
                     file holds, raw and in order",
            by_name: true,
        });
    }
    None
}

/// `groupN-shardKofM` (tfjs-converter's weight file names), optionally with `.bin`.
fn is_tfjs_shard_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let base = name.strip_suffix(".bin").unwrap_or(name);
    let Some(rest) = base.strip_prefix("group") else {
        return false;
    };
    let Some((group, shard)) = rest.split_once("-shard") else {
        return false;
    };
    let Some((k, m)) = shard.split_once("of") else {
        return false;
    };
    digits(group) && digits(k) && digits(m)
}

/// The error for a file that is none of the protobufs tf2npy reads: a one-line
/// [`Verdict`] when [`identify`] knows the file, with `protobuf_detail` (why each
/// protobuf interpretation failed) on a second line; otherwise `protobuf_detail` alone.
pub fn not_readable(path: &Path, first: &[u8], protobuf_detail: String) -> Error {
    let first = first.get(..SNIFF_BYTES).unwrap_or(first);
    match identify(path, first) {
        Some(verdict) => Error::Foreign {
            file: path.to_path_buf(),
            verdict: verdict.to_string(),
            detail: protobuf_detail,
        },
        None => Error::corrupt(path, protobuf_detail),
    }
}

/// [`identify`] for a file on disk, reading its first [`SNIFF_BYTES`] bytes; `None` also
/// when it cannot be read.
pub fn identify_file(path: &Path) -> Option<Verdict> {
    identify(path, &read_first(path).ok()?)
}

/// The first [`SNIFF_BYTES`] bytes of `path` (all of a shorter file).
pub fn read_first(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut first = Vec::with_capacity(SNIFF_BYTES);
    std::fs::File::open(path)?
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut first)?;
    Ok(first)
}

/// A ZIP archive, told apart by its first member's name, then by extension.
fn zip_verdict(first: &[u8], ext: &str) -> Verdict {
    let name_len = first
        .get(26..28)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let name = first.get(30..30 + name_len).unwrap_or_default();
    let npz = Verdict {
        kind: "already a NumPy .npz archive",
        advice: "numpy.load(path) reads it; tf2npy converts TensorFlow files into this format",
        by_name: false,
    };
    let torch = Verdict {
        kind: "a PyTorch file (torch.save zip archive)",
        advice: "tf2npy does not read PyTorch files: torch.load(path, weights_only=True) \
                 loads it, and .numpy() on each tensor gives NumPy arrays",
        by_name: false,
    };
    let keras = Verdict {
        kind: "a Keras 3 .keras archive",
        advice: "tf2npy reads the weights of a .keras archive (its model.weights.h5 \
                 member): name the file itself, e.g. `tf2npy FILE -o out.npz`",
        by_name: false,
    };
    if name.ends_with(b".npy") {
        return npz;
    }
    // torch.save names every record `ARCHIVE/...`, with `data.pkl` among the first few
    // (its order has changed between versions), so look at every name in view.
    let torch_records: [&[u8]; 4] = [
        b"/data.pkl",
        b"/.format_version",
        b"/byteorder",
        b"/version",
    ];
    if torch_records
        .iter()
        .any(|r| name.ends_with(r) || (r == b"/data.pkl" && contains(first, r)))
    {
        return torch;
    }
    if matches!(
        name,
        b"metadata.json" | b"config.json" | b"model.weights.h5" | b"model.weights.npz"
    ) {
        return keras;
    }
    match ext {
        "npz" => npz,
        "pt" | "pth" => torch,
        "keras" => keras,
        _ => Verdict {
            kind: "a ZIP archive",
            advice: "tf2npy does not read ZIP archives: extract it, then give tf2npy the \
                     checkpoint or SavedModel it holds",
            by_name: false,
        },
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// torch.serialization's `MAGIC_NUMBER` as the `LONG1` opcode writes it: `\x8a`, length
/// 10, then the little-endian two's-complement bytes of 0x1950a86a20f9469cfc6c.
const TORCH_LEGACY_MAGIC: &[u8] = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// A pickle (`PROTO` opcode with protocol 2..=5), or a legacy PyTorch file.
fn pickle_verdict(first: &[u8], ext: &str) -> Option<Verdict> {
    let proto = match first {
        [0x80, p, ..] if (2..=5).contains(p) => *p,
        _ => return None,
    };
    if proto == 2 && first.get(2..2 + TORCH_LEGACY_MAGIC.len()) == Some(TORCH_LEGACY_MAGIC) {
        return v(
            "a PyTorch file (legacy torch.save pickle)",
            "tf2npy does not read PyTorch files: torch.load(path, weights_only=True) loads it, \
             and .numpy() on each tensor gives NumPy arrays",
        );
    }
    if matches!(ext, "pt" | "pth") {
        return v(
            "a PyTorch file (a pickle)",
            "tf2npy does not read PyTorch files: torch.load(path, weights_only=True) loads it",
        );
    }
    v(
        "a Python pickle",
        "tf2npy does not read pickles (loading one can run code): load it with the program \
         that wrote it and save its arrays with numpy.savez",
    )
}

/// The HDF5 superblock signature at offset 0 or a power of two from 512 on (a user
/// block comes first).
fn is_hdf5(first: &[u8]) -> bool {
    const SIG: &[u8] = b"\x89HDF\r\n\x1a\n";
    std::iter::once(0)
        .chain((9..).map(|p| 1usize << p))
        .take_while(|&at| at < first.len())
        .any(|at| first.get(at..at + SIG.len()) == Some(SIG))
}

/// A u64 header length (plausible: at most 100 MB, safetensors' own limit) followed by
/// JSON text starting with `{`.
fn is_safetensors(first: &[u8]) -> bool {
    let Some(len) = first.get(..8) else {
        return false;
    };
    let mut b = [0u8; 8];
    b.copy_from_slice(len);
    let n = u64::from_le_bytes(b);
    if !(2..=100_000_000).contains(&n) || first.get(8) != Some(&b'{') {
        return false;
    }
    // The header must be JSON text as far as we can see it.
    let end = first.len().min(8 + n as usize);
    first[8..end]
        .iter()
        .all(|&c| c >= 0x20 || matches!(c, b'\n' | b'\r' | b'\t'))
}

/// A TFRecord's first record header: u64 length, then the masked CRC32C of those 8
/// bytes.
fn is_tfrecord(first: &[u8]) -> bool {
    let (Some(len), Some(crc)) = (first.get(..8), first.get(8..12)) else {
        return false;
    };
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    crc32c::crc32c(len) == unmask_crc(stored)
}

/// A protobuf `ModelProto` as ONNX defines it: walks the top-level fields it can see.
fn is_onnx(first: &[u8]) -> bool {
    // (field number, wire type) of ModelProto's fields (onnx/onnx.proto).
    const FIELDS: [(u64, u64); 11] = [
        (1, 0),  // ir_version
        (2, 2),  // producer_name
        (3, 2),  // producer_version
        (4, 2),  // domain
        (5, 0),  // model_version
        (6, 2),  // doc_string
        (7, 2),  // graph
        (8, 2),  // opset_import
        (14, 2), // metadata_props
        (20, 2), // training_info
        (25, 2), // functions
    ];
    let mut at = 0;
    let mut seen_graph = false;
    let mut first_field = true;
    while at < first.len() {
        let Some((tag, n)) = varint(&first[at..]) else {
            return false;
        };
        at += n;
        let (field, wire) = (tag >> 3, tag & 7);
        if !FIELDS.contains(&(field, wire)) || (first_field && field != 1) {
            return false;
        }
        match wire {
            0 => {
                let Some((value, n)) = varint(&first[at..]) else {
                    return false;
                };
                if field == 1 && !(1..=100).contains(&value) {
                    return false;
                }
                at += n;
            }
            _ => {
                let Some((len, n)) = varint(&first[at..]) else {
                    return false;
                };
                at = at.saturating_add(n).saturating_add(len as usize);
                seen_graph |= field == 7;
            }
        }
        first_field = false;
    }
    seen_graph
}

fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Text: a TF.js model.json, a text-format SavedModel or GraphDef, a checkpoint state
/// file.
fn text_verdict(first: &[u8]) -> Option<Verdict> {
    let text = std::str::from_utf8(first)
        .or_else(|e| std::str::from_utf8(&first[..e.valid_up_to()]))
        .ok()?;
    let body = text.trim_start();
    if body.starts_with('{')
        && (text.contains("\"modelTopology\"") || text.contains("\"weightsManifest\""))
    {
        return v(
            "a TensorFlow.js model (model.json and its .bin weight files)",
            "tf2npy does not read TF.js models: convert the SavedModel or Keras model it was \
             made from; the .bin files hold the weights its weightsManifest lists, raw and in \
             order",
        );
    }
    let starts = |words: &[&str]| words.iter().any(|w| body.starts_with(w));
    if starts(&[
        "saved_model_schema_version:",
        "meta_graphs {",
        "meta_graphs:",
    ]) {
        return v(
            "a text-format SavedModel (saved_model.pbtxt)",
            "tf2npy reads binary protobuf: convert its folder's variables with \
             `tf2npy DIR/variables/variables`",
        );
    }
    if starts(&["model_checkpoint_path:", "all_model_checkpoint_paths:"]) {
        return v(
            "a checkpoint state file (it names its folder's latest checkpoint)",
            "give tf2npy the folder that holds it",
        );
    }
    if starts(&["node {", "node:", "library {", "versions {"]) {
        return v(
            "a text-format GraphDef (.pbtxt)",
            "tf2npy reads binary GraphDefs: tf.io.write_graph(graph_def, DIR, NAME, \
             as_text=False) writes one",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str, bytes: &[u8]) -> Option<&'static str> {
        identify(Path::new(name), bytes).map(|v| v.kind)
    }

    #[test]
    fn protobufs_and_checkpoint_files_are_not_named() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        for f in [
            "graphdef/frozen.pb",
            "savedmodel/module/saved_model.pb",
            "tensorproto/float32_2x3.pb",
            "tensorproto/string_vec.pb",
            "sparse/float32_2d.pb",
            "v2/all_dtypes/ckpt-1.index",
            "v1/basic/model.ckpt",
        ] {
            let bytes = std::fs::read(fixtures.join(f)).unwrap();
            assert_eq!(kind(f, &bytes), None, "{f}");
        }
        assert_eq!(kind("x", b""), None);
        assert!(kind("saved_model.cpb", b"\0\0")
            .unwrap()
            .starts_with("a chunked SavedModel"));
        assert!(kind("group1-shard2of3.bin", b"\0\0").is_some());
        assert!(kind("group1-shard2of3", b"\0\0").is_some());
        assert_eq!(kind("group1-shardXof3.bin", b"\0\0"), None);
        assert_eq!(kind("x", b"hello world"), None);
    }

    #[test]
    fn signatures() {
        assert_eq!(
            kind("m.bin", b"\x1c\0\0\0TFL3\0\0"),
            Some("a TensorFlow Lite model (.tflite flatbuffer)")
        );
        assert_eq!(
            kind("x", b"\x93NUMPY\x01\x00"),
            Some("already a NumPy .npy array")
        );
        assert_eq!(
            kind("x.npz", b"PK\x05\x06"),
            Some("already a NumPy .npz archive")
        );
        assert_eq!(kind("x", b"PK\x05\x06"), Some("a ZIP archive"));
        // A torch.save archive whose first record is not data.pkl, named .bin.
        let mut torch_zip = b"PK\x03\x04".to_vec();
        torch_zip.extend_from_slice(&[0; 22]);
        torch_zip.extend_from_slice(&(23u16).to_le_bytes());
        torch_zip.extend_from_slice(&[0, 0]);
        torch_zip.extend_from_slice(b"archive/.format_version1PK\x03\x04archive/byteorder");
        torch_zip.extend_from_slice(b"littlePK\x03\x04archive/data.pkl");
        assert_eq!(
            kind("pytorch_model.bin", &torch_zip),
            Some("a PyTorch file (torch.save zip archive)")
        );
        assert_eq!(kind("x", b"\x80\x04\x95"), Some("a Python pickle"));
        assert_eq!(
            kind("x.pth", b"\x80\x04\x95"),
            Some("a PyTorch file (a pickle)")
        );
        let mut h5 = vec![0u8; 600];
        h5[512..520].copy_from_slice(b"\x89HDF\r\n\x1a\n");
        assert!(kind("x", &h5).unwrap().starts_with("an HDF5 file"));
        h5[512] = 0;
        assert_eq!(kind("x", &h5), None);
        assert_eq!(kind("x", b"\x1f\x8b\x08\0"), Some("a gzip-compressed file"));
        assert_eq!(
            kind("state", b"model_checkpoint_path: \"ckpt-1\"\n"),
            Some("a checkpoint state file (it names its folder's latest checkpoint)")
        );
        assert_eq!(
            kind("s.pbtxt", b"saved_model_schema_version: 1\nmeta_graphs {\n"),
            Some("a text-format SavedModel (saved_model.pbtxt)")
        );
        // An ONNX ModelProto: ir_version 8, producer_name, graph.
        let onnx = b"\x08\x08\x12\x07pytorch\x3a\x02\x0a\x00";
        assert_eq!(kind("m", onnx), Some("an ONNX model"));
        // Without a graph field, or starting elsewhere, it is not.
        assert_eq!(kind("m", b"\x08\x08\x12\x07pytorch"), None);
        assert_eq!(kind("m", b"\x12\x07pytorch\x08\x08\x3a\x00"), None);
    }

    /// Every prefix of every foreign fixture, and each with a flipped byte, is judged
    /// without a panic; whole files get their verdict.
    #[test]
    fn prefixes_and_flips_never_panic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/foreign");
        let mut named = 0;
        for f in std::fs::read_dir(dir).unwrap() {
            let p = f.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            named += usize::from(identify(&p, &bytes).is_some());
            for n in 0..bytes.len().min(600) {
                let _ = identify(&p, &bytes[..n]);
                let mut flipped = bytes[..bytes.len().min(600)].to_vec();
                flipped[n] ^= 0xa5;
                let _ = identify(Path::new("x"), &flipped);
            }
        }
        assert!(named >= 14, "{named}");
    }

    #[test]
    fn tfrecord_needs_the_length_crc() {
        let len = 5u64.to_le_bytes();
        let crc = crate::formats::io::mask_crc(crc32c::crc32c(&len));
        let mut rec = len.to_vec();
        rec.extend_from_slice(&crc.to_le_bytes());
        rec.extend_from_slice(b"hello\0\0\0\0");
        assert_eq!(kind("x", &rec), Some("a TFRecord file"));
        rec[8] ^= 1;
        assert_eq!(kind("x", &rec), None);
    }

    #[test]
    fn not_readable_puts_the_verdict_first() {
        let err = not_readable(Path::new("m.npy"), b"\x93NUMPY", "why".into());
        let msg = err.to_string();
        assert!(matches!(err, Error::Foreign { .. }));
        assert_eq!(
            msg.lines().next().unwrap(),
            "m.npy: already a NumPy .npy array; numpy.load(path) reads it; tf2npy converts \
             TensorFlow files into this format"
        );
        assert_eq!(msg.lines().nth(1).unwrap(), "  (as a protobuf: why)");
        let err = not_readable(Path::new("m.pb"), b"junk", "why".into());
        assert!(matches!(err, Error::Corrupt { .. }));
        assert_eq!(err.to_string(), "m.pb: why");
    }
}
