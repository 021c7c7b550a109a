//! The damaged-file suite (issue 6): cases generated at test time from the real
//! fixtures. Each copies a fixture into a temporary folder, damages it (truncation at
//! every structure boundary, byte flips in every region, edited entries and headers,
//! missing, replaced and extra shards, wrong `checkpoint` state files, truncated
//! protobufs), runs the binary with `--all -o out.npz`, and checks the failure: exit
//! status 1, a message naming the file (and the tensor, where the damage is inside one
//! tensor's data) and saying what is wrong, no panic, and no output or temporary file
//! left in the output folder. The structures are found by `damage::IndexLayout`.
//!
//! Not damaged on purpose, because neither TensorFlow nor tf2npy reads them: the
//! footer's padding and metaindex handle, the (empty) metaindex block, bytes of a data
//! file no entry points at, and variant tensors' data (skipped with a warning). Extra
//! data files no entry names are ignored too: that case must succeed unchanged.
//!
//! Also here: an interrupted conversion (SIGKILL mid-write) leaves the previous output
//! byte-identical.

use crate::common::*;
use crate::damage::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a failing case must report.
struct Want<'a> {
    /// A file name the message must contain.
    file: &'a str,
    /// When not empty, the message must name one of these tensors.
    tensors: Vec<String>,
    /// When not empty, the message must contain one of these phrases.
    what: &'a [&'a str],
}

/// An edit of one bundle entry.
type EntryEdit = Box<dyn Fn(&mut tf2npy::formats::proto::BundleEntryProto)>;

/// Phrases of the table reader's errors.
const TABLE_ERRORS: &[&str] = &[
    "bad magic number",
    "too short to be a table",
    "block checksum mismatch",
    "points past the blocks",
    "malformed block handle",
];

/// A case's folders: the damaged input in `dir`, the output in `out`.
struct Case {
    dir: tempfile::TempDir,
    out: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
            out: tempfile::tempdir().unwrap(),
        }
    }

    /// A fresh copy of fixture checkpoint `rel` (a prefix); returns the new prefix.
    fn checkpoint(rel: &str) -> (Case, PathBuf) {
        let c = Case::new();
        let p = copy_checkpoint(&fixtures().join(rel), c.dir.path());
        (c, p)
    }

    fn out_npz(&self) -> PathBuf {
        self.out.path().join("out.npz")
    }

    /// Runs tf2npy on `input` with `--all -o out.npz` and `extra`.
    fn run(&self, input: &Path, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            input.as_os_str().to_owned(),
            "--all".into(),
            "-o".into(),
            self.out_npz().into_os_string(),
        ];
        args.extend(extra.iter().map(|s| s.into()));
        tf2npy(&args)
    }

    /// Runs the case and checks it fails cleanly as `want` says; returns stderr.
    fn fails(&self, label: &str, input: &Path, extra: &[&str], want: &Want) -> String {
        let run = self.run(input, extra);
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        assert_eq!(run.status.code(), Some(1), "{label}: exit status; {stderr}");
        // Warnings may come first; the error is one line of its own.
        let err = stderr
            .lines()
            .find_map(|l| l.strip_prefix("tf2npy: error: "))
            .unwrap_or_else(|| panic!("{label}: no error line: {stderr}"))
            .to_string();
        assert!(!stderr.contains("panicked"), "{label}: {stderr}");
        assert!(!err.contains("internal error"), "{label}: {err}");
        assert!(
            err.contains(want.file),
            "{label}: must name {}: {err}",
            want.file
        );
        if !want.tensors.is_empty() {
            assert!(
                want.tensors
                    .iter()
                    .any(|t| err.contains(&format!("tensor `{t}`"))),
                "{label}: must name one of the tensors {:?}: {err}",
                want.tensors
            );
        }
        if !want.what.is_empty() {
            assert!(
                want.what.iter().any(|w| err.contains(w)),
                "{label}: must say one of {:?}: {err}",
                want.what
            );
        }
        let left: Vec<_> = std::fs::read_dir(self.out.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{label}: output left behind: {left:?}");
        err
    }
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn index_of(prefix: &Path) -> PathBuf {
    PathBuf::from(format!("{}.index", prefix.display()))
}

/// The V2 fixtures the index and data cases run on: plain with every dtype, sharded
/// with TF2 slices, TF1 partitioned with explicit extents.
const CHECKPOINTS: [&str; 3] = [
    "v2/all_dtypes/ckpt-1",
    "v2/sharded/ckpt",
    "v2/tf1_partitioned/model.ckpt",
];

/// Truncation at every structure boundary of each fixture's `.index`: the start of every
/// block, trailer, entry and entry value, and of the footer, its handles and magic.
#[test]
fn truncated_index_at_every_boundary() {
    let mut n = 0;
    for rel in CHECKPOINTS {
        let index = index_of(&fixtures().join(rel));
        let l = IndexLayout::parse(&std::fs::read(&index).unwrap());
        let mut cuts = vec![0, 1, l.footer, l.index_handle.start, l.index_handle.end];
        cuts.extend([l.len - 8, l.len - 1]);
        for b in l.data.iter().chain([&l.meta, &l.index]) {
            cuts.extend([b.offset, b.trailer().start, b.trailer().start + 1]);
        }
        for e in l.entries.iter().chain(&l.index_entries) {
            cuts.extend([e.start, e.key_bytes.start, e.value.start]);
        }
        for r in &l.restarts {
            cuts.push(r.start);
        }
        cuts.sort_unstable();
        cuts.dedup();
        for cut in cuts {
            let (c, prefix) = Case::checkpoint(rel);
            let idx = index_of(&prefix);
            truncate(&idx, cut);
            let want = Want {
                file: &name_of(&idx),
                tensors: vec![],
                what: &["bad magic number", "too short to be a table"],
            };
            c.fails(&format!("{rel}.index cut at {cut}"), &prefix, &[], &want);
            n += 1;
        }
    }
    assert!(n > 60, "{n} cases");
}

/// Byte flips in every region of each fixture's `.index`: the footer's index handle and
/// magic, the index block and its trailer, and in every data block each entry's length
/// varints, key and value, the restart array and the trailer. The block checksums catch
/// every one.
#[test]
fn flipped_index_bytes_in_every_region() {
    let mut n = 0;
    for rel in CHECKPOINTS {
        let index = index_of(&fixtures().join(rel));
        let l = IndexLayout::parse(&std::fs::read(&index).unwrap());
        let mut spots: Vec<(&str, u64)> = Vec::new();
        for at in l.index_handle.clone().chain(l.len - 8..l.len) {
            spots.push(("footer", at));
        }
        for at in sample(l.index.contents(), 12) {
            spots.push(("index block", at));
        }
        for e in &l.entries {
            spots.push(("entry lengths", e.start));
            if !e.key_bytes.is_empty() {
                spots.push(("entry key", (e.key_bytes.start + e.key_bytes.end) / 2));
            }
            if !e.value.is_empty() {
                spots.push(("entry value", (e.value.start + e.value.end) / 2));
            }
        }
        for r in &l.restarts {
            spots.push(("restart array", r.start));
            spots.push(("restart count", r.end - 4));
        }
        for b in l.data.iter().chain([&l.index]) {
            for at in b.trailer() {
                spots.push(("block trailer", at));
            }
        }
        for (region, at) in spots {
            let (c, prefix) = Case::checkpoint(rel);
            let idx = index_of(&prefix);
            flip(&idx, at, 0x01);
            let want = Want {
                file: &name_of(&idx),
                tensors: vec![],
                what: TABLE_ERRORS,
            };
            c.fails(&format!("{rel}.index {region} @ {at}"), &prefix, &[], &want);
            n += 1;
        }
    }
    assert!(n > 150, "{n} cases");
}

/// Entries and headers edited behind valid block checksums (a writer bug, or damage
/// before the index was written): every limit is checked before anything is read or
/// allocated, and the message names the tensor.
#[test]
fn edited_entries_and_headers() {
    let rel = "v2/all_dtypes/ckpt-1";
    let (_, ts) = tensors(&index_of(&fixtures().join(rel)));
    let find = |suffix: &str| {
        ts.iter()
            .find(|t| t.name.starts_with(&format!("model/{suffix}/")))
            .unwrap()
            .clone()
    };
    let f32 = find("f32");
    let s = find("s_vec");
    let shard_len = std::fs::metadata(data_file(&fixtures().join(rel), 0, 1))
        .unwrap()
        .len() as i64;
    fn dims(d: &[i64]) -> Option<tf2npy::formats::proto::TensorShapeProto> {
        Some(crate::bundle_writer::shape_proto(d))
    }
    let edits: Vec<(&str, String, EntryEdit, &[&str])> = vec![
        (
            "offset at the end of the shard",
            f32.name.clone(),
            Box::new(move |e| e.offset = shard_len),
            &["lies past the end of"],
        ),
        (
            "offset near 2^63",
            f32.name.clone(),
            Box::new(|e| e.offset = i64::MAX - 2),
            &["lies past the end of"],
        ),
        (
            "negative offset",
            f32.name.clone(),
            Box::new(|e| e.offset = -1),
            &["negative data offset"],
        ),
        (
            "size one byte too big",
            f32.name.clone(),
            Box::new(|e| e.size += 1),
            &["the entry says"],
        ),
        (
            "size disagrees with the shape",
            f32.name.clone(),
            Box::new(|e| e.shape = dims(&[3, 7])),
            &["the entry says"],
        ),
        (
            "element count overflows u64",
            f32.name.clone(),
            Box::new(move |e| e.shape = dims(&[1 << 40, 1 << 40])),
            &["more elements than fit"],
        ),
        (
            "element count overflows i64",
            f32.name.clone(),
            Box::new(move |e| e.shape = dims(&[1 << 32, 1 << 31])),
            &["more elements than fit"],
        ),
        (
            "255 dimensions",
            f32.name.clone(),
            Box::new(move |e| e.shape = dims(&[1; 255])),
            &["more than TensorFlow's 254"],
        ),
        (
            "negative dimension",
            f32.name.clone(),
            Box::new(move |e| e.shape = dims(&[-3, 2])),
            &["negative dimension"],
        ),
        (
            "unknown dtype",
            f32.name.clone(),
            Box::new(|e| e.dtype = 999),
            &["invalid or unknown dtype"],
        ),
        (
            "shard id past the header's count",
            f32.name.clone(),
            Box::new(|e| e.shard_id = 99),
            &["shard_id 99 is out of range"],
        ),
        (
            "stored checksum changed",
            f32.name.clone(),
            Box::new(|e| e.crc32c ^= 1),
            &["checksum mismatch"],
        ),
        (
            "string size too small for its lengths",
            s.name.clone(),
            Box::new(|e| e.size = 3),
            &["too few for"],
        ),
        (
            "string count far beyond the payload",
            s.name.clone(),
            Box::new(move |e| e.shape = dims(&[1 << 40])),
            &["too few for"],
        ),
        (
            "string lengths past the payload",
            s.name.clone(),
            Box::new(|e| e.size -= 3),
            &["add up to", "checksum mismatch"],
        ),
    ];
    for (label, name, edit, what) in edits {
        let (c, prefix) = Case::checkpoint(rel);
        let idx = index_of(&prefix);
        edit_entry(&idx, name.as_bytes(), |e| edit(e));
        let want = Want {
            file: "ckpt-1.",
            tensors: vec![name.clone()],
            what,
        };
        c.fails(label, &prefix, &[], &want);
    }

    // Garbage where protos belong.
    let (c, prefix) = Case::checkpoint(rel);
    let idx = index_of(&prefix);
    let key = f32.key.clone();
    rebuild_index(&idx, |es| {
        es.iter_mut().find(|(k, _)| *k == key).unwrap().1 = vec![0xff, 0xff];
    });
    let want = Want {
        file: "ckpt-1.index",
        tensors: vec![f32.name.clone()],
        what: &["not a BundleEntryProto"],
    };
    c.fails("entry garbage", &prefix, &[], &want);
    let (c, prefix) = Case::checkpoint(rel);
    let idx = index_of(&prefix);
    rebuild_index(&idx, |es| es[0].1 = vec![0x08, 0x01, 0x10, 0x09]);
    let want = Want {
        file: "ckpt-1.index",
        tensors: vec![],
        what: &["unknown endianness"],
    };
    c.fails("header endianness 9", &prefix, &[], &want);
    let (c, prefix) = Case::checkpoint(rel);
    let idx = index_of(&prefix);
    rebuild_index(&idx, |es| es[0].1 = vec![0x0b]);
    let want = Want {
        file: "ckpt-1.index",
        tensors: vec![],
        what: &["not a BundleHeaderProto"],
    };
    c.fails("header garbage", &prefix, &[], &want);
    // Keys out of order.
    let (c, prefix) = Case::checkpoint(rel);
    let idx = index_of(&prefix);
    rebuild_index(&idx, |es| es.swap(3, 4));
    let want = Want {
        file: "ckpt-1.index",
        tensors: vec![],
        what: &["does not sort after"],
    };
    c.fails("keys out of order", &prefix, &[], &want);

    // Absurd, zero and negative shard counts: nothing is sized from the count.
    for count in [0, -1, i32::MIN] {
        let (c, prefix) = Case::checkpoint(rel);
        edit_header(&index_of(&prefix), |h| h.num_shards = count);
        let want = Want {
            file: "ckpt-1.index",
            tensors: vec![],
            what: &["out of range"],
        };
        c.fails(&format!("num_shards {count}"), &prefix, &[], &want);
    }
    let (c, prefix) = Case::checkpoint(rel);
    edit_header(&index_of(&prefix), |h| h.num_shards = i32::MAX);
    let start = std::time::Instant::now();
    let run = c.run(&prefix, &[]);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "num_shards i32::MAX is slow"
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(matches!(run.status.code(), Some(0 | 1)), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Slice sets that overlap, leave gaps or stick out, and slice entries that disagree
/// with their tensor, in both slice layouts (TF2 `MaxShardSizePolicy`, TF1 partitioner).
#[test]
fn edited_slices() {
    use tf2npy::formats::proto::tensor_slice_proto::{extent::HasLength, Extent};
    for rel in ["v2/sharded/ckpt", "v2/tf1_partitioned/model.ckpt"] {
        let (_, ts) = tensors(&index_of(&fixtures().join(rel)));
        let full = ts.iter().find(|t| !t.entry.slices.is_empty()).unwrap();
        let name = full.name.clone();
        let part = ts
            .iter()
            .find(|t| t.name == name && t.entry.slices.is_empty())
            .unwrap();
        type Edit = Box<dyn Fn(&mut Vec<tf2npy::formats::proto::TensorSliceProto>)>;
        let edits: Vec<(&str, Edit, &[&str])> = vec![
            (
                "duplicate slice",
                Box::new(|s| s.push(s[0].clone())),
                &["overlap"],
            ),
            (
                "missing slice",
                Box::new(|s| {
                    s.pop();
                }),
                &["do not cover"],
            ),
            (
                "slice past the tensor",
                Box::new(|s| {
                    s[0].extent[0].has_length = Some(HasLength::Length(1 << 20));
                }),
                &["lies outside the tensor"],
            ),
            (
                "slice of another rank",
                Box::new(|s| s[0].extent.push(Extent::default())),
                &["dimensions but the tensor has"],
            ),
            (
                "negative start",
                Box::new(|s| s[0].extent[0].start = -1),
                &["negative start"],
            ),
        ];
        for (label, edit, what) in edits {
            let (c, prefix) = Case::checkpoint(rel);
            edit_entry(&index_of(&prefix), &full.key, |e| edit(&mut e.slices));
            let want = Want {
                file: &name_of(&index_of(&prefix)),
                tensors: vec![name.clone()],
                what,
            };
            c.fails(&format!("{rel}: {label}"), &prefix, &[], &want);
        }
        let part_edits: Vec<(&str, EntryEdit, &[&str])> = vec![
            (
                "slice entry of another dtype",
                Box::new(|e| e.dtype = if e.dtype == 3 { 1 } else { 3 }),
                &["stored as"],
            ),
            (
                "slice entry of another shape",
                Box::new(|e| {
                    let s = e.shape.as_mut().unwrap();
                    s.dim[0].size += 1;
                }),
                &["stored with shape"],
            ),
            (
                "slice entry past its shard",
                Box::new(|e| e.offset += 1 << 20),
                &["lies past the end of"],
            ),
        ];
        for (label, edit, what) in part_edits {
            let (c, prefix) = Case::checkpoint(rel);
            edit_entry(&index_of(&prefix), &part.key, |e| edit(e));
            let want = Want {
                file: &name_of(&index_of(&prefix)),
                tensors: vec![name.clone()],
                what,
            };
            c.fails(&format!("{rel}: {label}"), &prefix, &[], &want);
        }
        // The slice entry gone: its key no longer exists.
        let (c, prefix) = Case::checkpoint(rel);
        let key = part.key.clone();
        rebuild_index(&index_of(&prefix), |es| es.retain(|(k, _)| *k != key));
        let want = Want {
            file: &name_of(&index_of(&prefix)),
            tensors: vec![name.clone()],
            what: &["no entry under its key"],
        };
        c.fails(&format!("{rel}: slice entry missing"), &prefix, &[], &want);
    }
}

/// Byte flips inside every tensor's data (numbers, string length tables, string bytes,
/// slices) and truncation of the data files at every tensor boundary and inside tensors.
#[test]
fn damaged_data_files() {
    let mut n = 0;
    for rel in CHECKPOINTS {
        let src = fixtures().join(rel);
        let (header, ts) = tensors(&index_of(&src));
        let shards = header.num_shards;
        for t in ts.iter().filter(|t| !t.unread() && t.entry.size > 0) {
            let data_name = name_of(&data_file(&src, t.entry.shard_id, shards));
            let bytes = std::fs::read(data_file(&src, t.entry.shard_id, shards)).unwrap();
            let mut spots: Vec<(&str, u64)> = Vec::new();
            if t.entry.dtype == 7 {
                let (lengths, chars) = string_regions(&bytes, t);
                for at in sample(lengths, 3) {
                    spots.push(("string length table", at));
                }
                for at in sample(chars, 3) {
                    spots.push(("string bytes", at));
                }
            } else {
                for at in sample(t.range(), 3) {
                    spots.push(("tensor data", at));
                }
            }
            for (region, at) in spots {
                let (c, prefix) = Case::checkpoint(rel);
                flip(&data_file(&prefix, t.entry.shard_id, shards), at, 0x01);
                let want = Want {
                    file: &data_name,
                    tensors: vec![t.name.clone()],
                    what: &["checksum mismatch"],
                };
                let label = format!("{rel}: {region} of `{}` @ {at}", t.name);
                let err = c.fails(&label, &prefix, &[], &want);
                assert!(
                    err.contains("use --no-verify only to recover data"),
                    "{label}: {err}"
                );
                n += 1;
            }
        }
        // Truncation at every tensor boundary (and mid-tensor) of every shard.
        for shard in 0..shards {
            let len = std::fs::metadata(data_file(&src, shard, shards))
                .unwrap()
                .len();
            let mut cuts: Vec<u64> = Vec::new();
            for t in ts.iter().filter(|t| t.entry.shard_id == shard) {
                let r = t.range();
                cuts.extend([r.start, (r.start + r.end) / 2, r.end.saturating_sub(1)]);
                if t.entry.dtype == 7 && t.entry.size > 0 {
                    let bytes = std::fs::read(data_file(&src, shard, shards)).unwrap();
                    let (lengths, _) = string_regions(&bytes, t);
                    cuts.extend([lengths.end - 4, lengths.end]);
                }
            }
            cuts.retain(|&c| c < len);
            cuts.sort_unstable();
            cuts.dedup();
            for cut in cuts {
                let (c, prefix) = Case::checkpoint(rel);
                let data = data_file(&prefix, shard, shards);
                truncate(&data, cut);
                let hit: Vec<String> = ts
                    .iter()
                    .filter(|t| t.entry.shard_id == shard && t.range().end > cut)
                    .map(|t| t.name.clone())
                    .collect();
                let want = Want {
                    file: &name_of(&data),
                    tensors: hit,
                    what: &["lies past the end of"],
                };
                c.fails(
                    &format!("{rel}: {} cut at {cut}", name_of(&data)),
                    &prefix,
                    &[],
                    &want,
                );
                n += 1;
            }
        }
    }
    assert!(n > 150, "{n} cases");
}

/// A checksum error names the tensor and suggests `--no-verify` for recovery, which then
/// gets the (damaged) data out.
#[test]
fn no_verify_recovers_damaged_numbers() {
    let rel = "v2/all_dtypes/ckpt-1";
    let (_, ts) = tensors(&index_of(&fixtures().join(rel)));
    let t = ts
        .iter()
        .find(|t| t.name.starts_with("model/f32/"))
        .unwrap();
    let (c, prefix) = Case::checkpoint(rel);
    flip(&data_file(&prefix, 0, 1), t.range().start, 0x80);
    let want = Want {
        file: "ckpt-1.data-00000-of-00001",
        tensors: vec![t.name.clone()],
        what: &["--no-verify"],
    };
    c.fails("flip", &prefix, &[], &want);
    let run = c.run(&prefix, &["--no-verify"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(c.out_npz().is_file());
}

/// Missing, replaced and extra data files, and `checkpoint` state files that point at
/// nothing or are garbled.
#[test]
fn missing_extra_and_wrong_files() {
    let rel = "v2/sharded/ckpt";
    let src = fixtures().join(rel);
    let (header, ts) = tensors(&index_of(&src));
    let shards = header.num_shards;
    let in_shard = |id: i32| -> Vec<String> {
        ts.iter()
            .filter(|t| t.entry.shard_id == id && !t.unread())
            .map(|t| t.name.clone())
            .collect()
    };
    for id in 0..shards {
        if in_shard(id).is_empty() {
            continue;
        }
        // Missing.
        let (c, prefix) = Case::checkpoint(rel);
        let data = data_file(&prefix, id, shards);
        std::fs::remove_file(&data).unwrap();
        let want = Want {
            file: &name_of(&data),
            tensors: in_shard(id),
            what: &["data file is missing"],
        };
        c.fails(&format!("shard {id} missing"), &prefix, &[], &want);
        // Replaced by another shard's bytes (same name, wrong content).
        let (c, prefix) = Case::checkpoint(rel);
        let other = data_file(&prefix, (id + 1) % shards, shards);
        std::fs::copy(&other, data_file(&prefix, id, shards)).unwrap();
        let want = Want {
            file: &name_of(&data),
            tensors: in_shard(id),
            what: &["checksum mismatch", "lies past the end of"],
        };
        c.fails(&format!("shard {id} replaced"), &prefix, &[], &want);
    }
    // Missing, with one stray renumbered file that is not the right data.
    let (c, prefix) = Case::checkpoint(rel);
    std::fs::remove_file(data_file(&prefix, 2, shards)).unwrap();
    let stray = data_file(&prefix, 2, 9);
    std::fs::write(&stray, b"not the data").unwrap();
    let want = Want {
        file: &name_of(&stray),
        tensors: in_shard(2),
        what: &["lies past the end of"],
    };
    c.fails(
        "shard 2 missing, stray renumbered file",
        &prefix,
        &[],
        &want,
    );

    // Extra data files that no entry names are ignored, as TensorFlow ignores them.
    let reference = Case::new();
    let run = reference.run(&src, &[]);
    assert!(run.status.success());
    let want = std::fs::read(reference.out_npz()).unwrap();
    let (c, prefix) = Case::checkpoint(rel);
    std::fs::write(data_file(&prefix, 7, 8), b"bogus").unwrap();
    std::fs::write(data_file(&prefix, 0, 1), b"bogus too").unwrap();
    std::fs::write(data_file(&prefix, shards, shards), b"past the count").unwrap();
    let run = c.run(&prefix, &[]);
    assert!(
        run.status.success(),
        "extra shards: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(std::fs::read(c.out_npz()).unwrap(), want, "extra shards");

    // State files.
    let state_cases: [(&str, &[u8], &[&str]); 4] = [
        (
            "missing prefix",
            b"model_checkpoint_path: \"ckpt-9\"\n",
            &["names this checkpoint, but it does not exist; did you mean:"],
        ),
        (
            "missing absolute prefix",
            b"model_checkpoint_path: \"/no/such/dir/ckpt-9\"\n",
            &["names this checkpoint, but it does not exist; did you mean:"],
        ),
        (
            "unterminated string",
            b"model_checkpoint_path: \"ckpt-4\n",
            &["not a valid checkpoint state file: line 1: unterminated string"],
        ),
        (
            "no model_checkpoint_path",
            b"all_model_checkpoint_paths: \"ckpt-4\"\n",
            &["names no model_checkpoint_path"],
        ),
    ];
    for (label, text, what) in state_cases {
        let c = Case::new();
        for stem in ["ckpt-2", "ckpt-3", "ckpt-4"] {
            copy_checkpoint(&fixtures().join("v2/training_dir").join(stem), c.dir.path());
        }
        std::fs::write(c.dir.path().join("checkpoint"), text).unwrap();
        let want = Want {
            file: "checkpoint",
            tensors: vec![],
            what,
        };
        let err = c.fails(label, c.dir.path(), &[], &want);
        if label.starts_with("missing") {
            assert!(
                err.contains("ckpt-4"),
                "{label}: lists the checkpoints: {err}"
            );
        }
    }
    // The state file names a checkpoint whose index is damaged.
    let c = Case::new();
    let p = copy_checkpoint(&fixtures().join("v2/training_dir/ckpt-4"), c.dir.path());
    std::fs::copy(
        fixtures().join("v2/training_dir/checkpoint"),
        c.dir.path().join("checkpoint"),
    )
    .unwrap();
    truncate(&index_of(&p), 100);
    let want = Want {
        file: "ckpt-4.index",
        tensors: vec![],
        what: &["bad magic number"],
    };
    c.fails("state file -> damaged index", c.dir.path(), &[], &want);
    // A wrong prefix lists the checkpoints nearby.
    let c = Case::new();
    let want = Want {
        file: "ckpt-7",
        tensors: vec![],
        what: &["did you mean:"],
    };
    let err = c.fails(
        "wrong prefix",
        &fixtures().join("v2/training_dir/ckpt-7"),
        &[],
        &want,
    );
    assert!(err.contains("training_dir/ckpt-4"), "{err}");
}

/// A `.index` or `.data-*` path where the prefix is expected just works.
#[test]
fn index_and_data_paths_work_as_prefixes() {
    let src = fixtures().join("v2/sharded/ckpt");
    let reference = Case::new();
    assert!(reference.run(&src, &[]).status.success());
    let want = std::fs::read(reference.out_npz()).unwrap();
    for input in [index_of(&src), data_file(&src, 3, 7)] {
        let c = Case::new();
        let run = c.run(&input, &[]);
        assert!(
            run.status.success(),
            "{}: {}",
            input.display(),
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(std::fs::read(c.out_npz()).unwrap(), want);
    }
}

/// Truncation inside every top-level field of TensorProto, serialized sparse, GraphDef
/// and SavedModel files. (A cut exactly between fields leaves a shorter but valid
/// message, as protobuf has no end marker; those are not damage tf2npy can see.)
#[test]
fn truncated_protobufs() {
    let mut n = 0;
    let mut files: Vec<(PathBuf, bool)> = [
        "tensorproto/float32_2x3.pb",
        "tensorproto/string_vec.pb",
        "tensorproto/mtp_hand_int32_unpacked.pb",
        "tensorproto/mtp_hand_string_2x3.pb",
        "tensorproto/bfloat16_special.pb",
        "tensorproto/complex128_2x2.pb",
        "sparse/float32_2d.pb",
        "sparse/many_string_2x4.pb",
        "graphdef/frozen.pb",
    ]
    .iter()
    .map(|r| (fixtures().join(r), false))
    .collect();
    files.push((fixtures().join("savedmodel/module/saved_model.pb"), true));
    for (src, is_model) in files {
        let bytes = std::fs::read(&src).unwrap();
        for field in proto_fields(&bytes) {
            for cut in sample(field.start as u64 + 1..field.end as u64, 6) {
                let c = Case::new();
                let (input, damaged) = if is_model {
                    let dir = c.dir.path().join("model");
                    std::fs::create_dir(&dir).unwrap();
                    for e in std::fs::read_dir(src.parent().unwrap()).unwrap().flatten() {
                        if e.path().is_file() {
                            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
                        }
                    }
                    let vars = dir.join("variables");
                    std::fs::create_dir(&vars).unwrap();
                    for e in std::fs::read_dir(src.parent().unwrap().join("variables"))
                        .unwrap()
                        .flatten()
                    {
                        std::fs::copy(e.path(), vars.join(e.file_name())).unwrap();
                    }
                    (dir.clone(), dir.join("saved_model.pb"))
                } else {
                    let p = c.dir.path().join(src.file_name().unwrap());
                    std::fs::copy(&src, &p).unwrap();
                    (p.clone(), p)
                };
                truncate(&damaged, cut);
                let want = Want {
                    file: &name_of(&damaged),
                    tensors: vec![],
                    what: &[
                        "not a TensorProto, GraphDef or SavedModel",
                        "not a SavedModel",
                    ],
                };
                c.fails(
                    &format!("{} cut at {cut}", name_of(&src)),
                    &input,
                    &[],
                    &want,
                );
                n += 1;
            }
        }
    }
    assert!(n > 50, "{n} cases");
}

/// A conversion killed mid-write (SIGKILL) leaves the previous output byte-identical.
/// (The killed run's temporary file stays behind: nothing can clean up after SIGKILL.)
#[test]
fn interrupted_run_keeps_the_previous_output() {
    use crate::bundle_writer::{write_bundle, Tensor};
    const BIG: u64 = 300 << 20;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("w.npz");
    ok([
        fixtures().join("v2/all_dtypes/ckpt-1").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let before = std::fs::read(&out).unwrap();
    let prefix = dir.path().join("big");
    write_bundle(
        &prefix,
        &[Tensor::zeros(
            "big",
            4,
            vec![BIG as i64],
            BIG,
            vec![(0, vec![1, 2, 3]), (BIG - 1, vec![9])],
        )],
        false,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tf2npy"))
        .args([
            prefix.as_os_str(),
            "-q".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut started = false;
    while std::time::Instant::now() < deadline {
        let temp_len = std::fs::read_dir(out_dir.path())
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(".tf2npy-")
            })
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .max();
        if temp_len.is_some_and(|l| l > 1 << 20) {
            started = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(started, "the conversion never started writing");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the conversion finished before it could be killed"
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the previous output changed"
    );
}

/// Amplification (issue 15 item 1): a few bytes that claim a huge array are refused
/// before anything is written, for every output form (`-o -` included) and for
/// `--check`; `--max-output` moves the limit; `--verify` reads only what is stored.
mod amplification {
    use crate::bundle_writer::{write_bundle, Tensor};
    use crate::common::*;
    use prost::Message;
    use std::path::Path;
    use tf2npy::formats::proto::TensorProto;

    const DT_FLOAT: i32 = 1;
    const DT_STRING: i32 = 7;
    const DT_INT64: i32 = 9;
    const DT_BOOL: i32 = 10;

    fn tensorproto(dir: &Path, name: &str, tp: TensorProto) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, tp.encode_to_vec()).unwrap();
        p
    }

    fn bools(dir: &Path, n: i64) -> std::path::PathBuf {
        tensorproto(
            dir,
            &format!("b{n}.pb"),
            TensorProto {
                dtype: DT_BOOL,
                tensor_shape: Some(crate::bundle_writer::shape_proto(&[n])),
                bool_val: vec![true],
                ..Default::default()
            },
        )
    }

    /// Runs `input` into every output form (and `--check`); each must be refused with
    /// exit 1 naming the limit, writing nothing.
    fn refused_everywhere(input: &Path, extra: &[&str], what: &str) {
        let out = tempfile::tempdir().unwrap();
        let o = out.path();
        let folder = format!("{}/f/", o.display());
        let targets = [
            vec!["-o".to_string(), o.join("x.npz").display().to_string()],
            vec!["-o".to_string(), o.join("x.npy").display().to_string()],
            vec!["-o".to_string(), folder],
            vec!["-o".to_string(), "-".to_string()],
            vec![
                "--check".to_string(),
                "-o".to_string(),
                o.join("x.npz").display().to_string(),
            ],
        ];
        for t in targets {
            let mut args = vec![input.display().to_string(), "-q".to_string()];
            args.extend(t.iter().cloned());
            args.extend(extra.iter().map(|s| s.to_string()));
            let run = tf2npy(&args);
            let err = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.code(), Some(1), "{what} {t:?}: {err}");
            assert!(
                err.contains("--max-output") && err.contains(&input.display().to_string()),
                "{what} {t:?}: {err}"
            );
            assert!(run.stdout.is_empty(), "{what} {t:?}: wrote to stdout");
            assert_eq!(std::fs::read_dir(o).unwrap().count(), 0, "{what} {t:?}");
        }
    }

    #[test]
    fn broadcast_bool_of_2_pow_62_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = bools(dir.path(), 1 << 62);
        assert!(std::fs::metadata(&input).unwrap().len() < 20);
        refused_everywhere(&input, &[], "bool [2^62]");
        // --verify reads the one stored value.
        let run = ok([input.as_os_str(), "--verify".as_ref()]);
        assert!(String::from_utf8_lossy(&run.stdout).contains("OK"));
    }

    #[test]
    fn sparse_dense_shape_of_2_pow_60_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("sp");
        let i64s = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        write_bundle(
            &prefix,
            &[
                Tensor::new("x/dense_shape", DT_INT64, &[1], i64s(&[1 << 60])),
                Tensor::new("x/indices", DT_INT64, &[1, 1], i64s(&[7])),
                Tensor::new("x/values", DT_FLOAT, &[1], 1.5f32.to_le_bytes().to_vec()),
            ],
            false,
        );
        refused_everywhere(&prefix, &[], "sparse [2^60]");
        let run = ok([prefix.as_os_str(), "--verify".as_ref()]);
        assert!(String::from_utf8_lossy(&run.stdout).contains("verified 3 tensors"));
    }

    #[test]
    fn one_long_string_padding_a_million_is_refused_and_verifies_fast() {
        let dir = tempfile::tempdir().unwrap();
        let mut vals = vec![Vec::new(); 1_000_000];
        vals[500_000] = vec![b'x'; 1_000_000];
        let input = tensorproto(
            dir.path(),
            "s.pb",
            TensorProto {
                dtype: DT_STRING,
                tensor_shape: Some(crate::bundle_writer::shape_proto(&[1_000_000])),
                string_val: vals,
                ..Default::default()
            },
        );
        assert!(std::fs::metadata(&input).unwrap().len() < 4 << 20);
        refused_everywhere(&input, &[], "strings");
        // --verify does not pad: 10^12 bytes of padding would take minutes.
        let start = std::time::Instant::now();
        let run = ok([input.as_os_str(), "--verify".as_ref()]);
        assert!(String::from_utf8_lossy(&run.stdout).contains("verified 1 tensors"));
        assert!(start.elapsed().as_secs() < 60, "{:?}", start.elapsed());
        // A broadcast string (one stored value) verifies without repeating it either.
        let one = tensorproto(
            dir.path(),
            "one.pb",
            TensorProto {
                dtype: DT_STRING,
                tensor_shape: Some(crate::bundle_writer::shape_proto(&[1 << 40])),
                string_val: vec![vec![b'y'; 1 << 20]],
                ..Default::default()
            },
        );
        refused_everywhere(&one, &[], "broadcast string");
        ok([one.as_os_str(), "--verify".as_ref()]);
    }

    #[test]
    fn max_output_moves_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let input = bools(dir.path(), 1_000_000);
        // 1 MB from 10 bytes is within the default allowance...
        let out = dir.path().join("o.npy");
        ok([input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
        assert_eq!(read_npy(&out).data, vec![1u8; 1_000_000]);
        std::fs::remove_file(&out).unwrap();
        // ... but not within 100K; 2M is enough again.
        refused_everywhere(&input, &["--max-output", "100K"], "--max-output 100K");
        let run = ok([
            input.as_os_str(),
            "--max-output".as_ref(),
            "2M".as_ref(),
            "-o".as_ref(),
            "-".as_ref(),
        ]);
        assert_eq!(parse_npy(&run.stdout).data, vec![1u8; 1_000_000]);
        let bad = tf2npy([input.as_os_str(), "--max-output".as_ref(), "lots".as_ref()]);
        assert_eq!(bad.status.code(), Some(2));
    }

    #[test]
    fn output_larger_than_the_free_space_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = bools(dir.path(), 1 << 50);
        for out in ["x.npz", "x.npy", "f/"] {
            let target = format!("{}/{out}", dir.path().display());
            let run = tf2npy([
                input.as_os_str(),
                "--max-output".as_ref(),
                "15E".as_ref(),
                "-o".as_ref(),
                target.as_ref(),
            ]);
            let err = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.code(), Some(1), "{out}: {err}");
            assert!(
                err.contains("free") && err.contains("1125899906842"),
                "{out}: {err}"
            );
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "{out}");
        }
    }
}

/// Large slice sets (50,000 slices, one per column) with one slice duplicated, missing
/// or moved, in a V2 bundle and in a V1 checkpoint: each fails at once with the cover
/// error naming the slices (the cover check used to compare every pair of slices).
#[test]
fn large_slice_sets_with_a_bad_slice() {
    use crate::bounded::{write_sliced, write_v1_sliced};
    let n = 50_000u64;
    let good: Vec<Vec<(u64, u64)>> = (0..n).map(|i| vec![(0, 1), (i, 1)]).collect();
    let data: Vec<u8> = (0..n as u32).flat_map(|i| i.to_le_bytes()).collect();
    type Edit = fn(&mut Vec<Vec<(u64, u64)>>);
    let edits: [(&str, Edit, &[&str]); 3] = [
        (
            "duplicated",
            |b| b.push(b[777].clone()),
            &["slices `0,1:777,1` and `0,1:777,1` overlap"],
        ),
        (
            "missing",
            |b| {
                b.remove(40_000);
            },
            &["hold 49999 elements but the tensor has 50000"],
        ),
        (
            "moved",
            |b| b[123][1].0 = 124,
            &["slices `0,1:124,1` and `0,1:124,1` overlap"],
        ),
    ];
    for (label, edit, what) in edits {
        let mut boxes = good.clone();
        edit(&mut boxes);
        let c = Case::new();
        let prefix = c.dir.path().join("ckpt");
        let ranges: Vec<(u64, u64)> = boxes.iter().map(|b| (4 * b[1].0, 4)).collect();
        write_sliced(&prefix, "t", 22, &[1, n], &boxes, &ranges, &data);
        let want = Want {
            file: "ckpt.index",
            tensors: vec!["t".into()],
            what,
        };
        c.fails(&format!("V2, {label}"), &prefix, &[], &want);
        let v1 = c.dir.path().join("model.ckpt");
        write_v1_sliced(&v1, "t", &[1, n], &boxes, |i| vec![boxes[i][1].0 as f32]);
        let want = Want {
            file: "model.ckpt",
            tensors: vec!["t".into()],
            what,
        };
        c.fails(&format!("V1, {label}"), &v1, &[], &want);
    }
}
