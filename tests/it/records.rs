//! TFRecord inputs (issue 12): every fixture of fixtures/records/ (written and parsed by
//! TensorFlow, see fixtures/gen_records.py) converts bit for bit; damaged files fail
//! with the file, record and offset named and no output; memory stays bounded.

use crate::common::{ok, read_npz, stderr_of, tf2npy, Npy};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    crate::common::fixtures().join("records")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(dir().join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("json")
}

fn expected(rel: &str) -> Vec<(String, Npy)> {
    read_npz(&dir().join(rel))
}

#[test]
fn every_fixture_converts_bit_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = manifest()["cases"].as_array().unwrap().clone();
    assert!(cases.len() >= 12);
    let mut compared = 0;
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let out = tmp.path().join(format!("{name}.npz"));
        let mut args = vec![
            dir()
                .join(c["input"].as_str().unwrap())
                .to_string_lossy()
                .into_owned(),
            "-o".into(),
            out.to_string_lossy().into_owned(),
        ];
        for a in c["args"].as_array().unwrap() {
            args.push(a.as_str().unwrap().to_string());
        }
        ok(&args);
        let got = read_npz(&out);
        let want = expected(c["expected"].as_str().unwrap());
        let got_names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        let mut want_names: Vec<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
        want_names.sort();
        assert_eq!(got_names, want_names, "{name}: members");
        for (n, w) in &want {
            let (_, g) = got.iter().find(|(m, _)| m == n).unwrap();
            assert_eq!(g.descr, w.descr, "{name} `{n}`: descr");
            assert_eq!(g.shape, w.shape, "{name} `{n}`: shape");
            assert_eq!(g.data, w.data, "{name} `{n}`: payload");
            assert_eq!(g.header, w.header, "{name} `{n}`: header");
            compared += 1;
        }
    }
    assert!(compared > 100, "{compared}");
}

#[test]
fn forced_compression_and_kind_agree_with_detection() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("z.npz");
    let input = dir().join("examples.zlib");
    ok([
        input.as_os_str(),
        "--compression".as_ref(),
        "zlib".as_ref(),
        "--records".as_ref(),
        "example".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let want = expected("expected/examples.npz");
    assert_eq!(read_npz(&out).len(), want.len());
    // The wrong compression is an error naming the file and record 0.
    let run = tf2npy([
        input.as_os_str(),
        "--compression".as_ref(),
        "gzip".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    let err = stderr_of(&run);
    assert!(
        err.contains("examples.zlib") && err.contains("record 0"),
        "{err}"
    );
}

#[test]
fn bad_record_flags_are_usage_errors() {
    for args in [
        ["--compression", "lz4"],
        ["--records", "graph"],
        ["--take", "x"],
    ] {
        let run = tf2npy([
            dir().join("examples.tfrecord").as_os_str(),
            args[0].as_ref(),
            args[1].as_ref(),
        ]);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", stderr_of(&run));
    }
}

#[test]
fn listing_shows_compression_layout_and_counts() {
    let run = ok([
        dir().join("examples.tfrecord.gz").as_os_str(),
        "--json".as_ref(),
    ]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("tokens/row_splits"), "{text}");
    let table = ok([dir().join("examples.tfrecord.gz")]);
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains("TFRecord (GZIP) of tf.train.Example records"),
        "{t}"
    );
    assert!(
        t.contains("float_list in 5/7 records, 0..3 values per record, ragged"),
        "{t}"
    );
    assert!(
        t.contains("int64_list in 7/7 records, 3..3 values per record, fixed"),
        "{t}"
    );
}

#[test]
fn verify_reads_every_record() {
    ok([dir().join("shards").as_os_str(), "--verify".as_ref()]);
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(dir().join("examples.tfrecord")).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 0x40;
    let p = tmp.path().join("bad.tfrecord");
    std::fs::write(&p, &bytes).unwrap();
    let run = tf2npy([p.as_os_str(), "--verify".as_ref()]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr_of(&run));
    assert!(
        stderr_of(&run).contains("record 6 at byte"),
        "{}",
        stderr_of(&run)
    );
}

/// Record start offsets of an uncompressed TFRecord file, and its length.
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        out.push(at);
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[at..at + 8]);
        at += 16 + u64::from_le_bytes(len) as usize;
    }
    out
}

fn rejected(bytes: &[u8], name: &str, needles: &[String]) {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    let out = tmp.path().join("out.npz");
    let run = tf2npy([
        p.as_os_str(),
        "--records".as_ref(),
        "example".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(name), "{err}");
    for n in needles {
        assert!(err.contains(n.as_str()), "want `{n}` in: {err}");
    }
    assert!(!out.exists(), "output left behind");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "temporary files left behind");
}

#[test]
fn truncation_at_every_record_boundary_and_inside_is_named() {
    let bytes = std::fs::read(dir().join("examples.tfrecord")).unwrap();
    let starts = boundaries(&bytes);
    assert_eq!(starts.len(), 7);
    for (i, &s) in starts.iter().enumerate().skip(1) {
        // Cut at the boundary: a shorter, valid file (i records).
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("cut.tfrecord");
        std::fs::write(&p, &bytes[..s]).unwrap();
        let out = tmp.path().join("o.npz");
        ok([p.as_os_str(), "-o".as_ref(), out.as_os_str()]);
        let label = read_npz(&out)
            .into_iter()
            .find(|(n, _)| n == "label")
            .unwrap()
            .1;
        assert_eq!(label.shape, vec![i as u64]);
        // Cut one byte after the boundary, in the header, and in the data.
        let prev = starts[i - 1];
        for cut in [prev + 1, prev + 11, s - 1] {
            rejected(
                &bytes[..cut],
                "cut.tfrecord",
                &[format!("record {} at byte {prev}: truncated", i - 1)],
            );
        }
    }
}

#[test]
fn flipped_length_crc_and_data_bytes_are_named() {
    let bytes = std::fs::read(dir().join("examples.tfrecord")).unwrap();
    let starts = boundaries(&bytes);
    let r = 3;
    let s = starts[r];
    for (off, what) in [
        (s, "length"),
        (s + 9, "length's CRC"),
        (s + 20, "data"),
        (starts[r + 1] - 2, "data CRC"),
    ] {
        let mut b = bytes.clone();
        b[off] ^= 0x01;
        let needle = if what == "length" || what == "length's CRC" {
            format!("record {r} at byte {s}: corrupted: the length's CRC32C")
        } else {
            format!("record {r} at byte {s}: corrupted: the data's CRC32C")
        };
        rejected(&b, "flip.tfrecord", &[needle]);
    }
}

/// TensorFlow's masked CRC32C (written here, not taken from the crate under test).
fn masked_crc(b: &[u8]) -> u32 {
    crc32c::crc32c(b).rotate_right(15).wrapping_add(0xa282_ead8)
}

fn header(len: u64) -> Vec<u8> {
    let l = len.to_le_bytes();
    let mut h = l.to_vec();
    h.extend_from_slice(&masked_crc(&l).to_le_bytes());
    h
}

/// `rec` framed as one TFRecord record: header, data, data CRC.
fn framed(rec: &[u8]) -> Vec<u8> {
    let mut f = header(rec.len() as u64);
    f.extend_from_slice(rec);
    f.extend_from_slice(&masked_crc(rec).to_le_bytes());
    f
}

#[test]
fn a_record_claiming_2_pow_60_bytes_is_refused_before_allocating() {
    let mut b = std::fs::read(dir().join("examples.tfrecord")).unwrap();
    let at = b.len();
    b.extend(header(1 << 60));
    b.extend_from_slice(&[0u8; 64]);
    rejected(
        &b,
        "huge.tfrecord",
        &[
            format!("record 7 at byte {at}"),
            "1152921504606846976".into(),
        ],
    );
    // The same inside GZIP: only the 2 GiB protobuf limit can apply.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&b).unwrap();
    rejected(
        &gz.finish().unwrap(),
        "huge.tfrecord.gz",
        &["of the gzip-decompressed stream".into(), "2 GiB".into()],
    );
}

#[test]
fn a_gzip_bomb_fails_fast_in_bounded_memory() {
    // 1 GiB of zeros after one valid record: ~1 MiB compressed. The zeros are a header
    // whose CRC does not match, found without inflating the rest.
    let rec = std::fs::read(dir().join("examples.tfrecord")).unwrap();
    let first = boundaries(&rec)[1];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&rec[..first]).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 2 << 20);
    let t = std::time::Instant::now();
    rejected(
        &bomb,
        "bomb.tfrecord.gz",
        &[format!("record 1 at byte {first}")],
    );
    assert!(t.elapsed().as_secs() < 30);
    // The same under a 160 MiB address-space budget: nothing is sized by the stream.
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bomb.tfrecord.gz");
    std::fs::write(&p, &bomb).unwrap();
    let run = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 163840 && exec \"$0\" \"$1\" -o \"$2\""])
        .arg(env!("CARGO_BIN_EXE_tf2npy"))
        .arg(&p)
        .arg(tmp.path().join("o.npz"))
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .unwrap();
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("record 1 at byte {first}")), "{err}");
}

#[test]
fn a_float_list_whose_count_disagrees_with_its_bytes_is_named() {
    // features { feature { key: "x" value { float_list { value: [packed, 5 bytes] } } } }
    let feature = [0x12, 0x07, 0x0a, 0x05, 0, 0, 0x80, 0x3f, 0];
    let mut entry = vec![0x0a, 0x01, b'x', 0x12, feature.len() as u8];
    entry.extend_from_slice(&feature);
    let mut features = vec![0x0a, entry.len() as u8];
    features.extend_from_slice(&entry);
    let mut rec = vec![0x0a, features.len() as u8];
    rec.extend_from_slice(&features);
    let mut file = std::fs::read(dir().join("examples.tfrecord")).unwrap();
    let at = file.len();
    file.extend(framed(&rec));
    rejected(
        &file,
        "floats.tfrecord",
        &[
            format!("record 7 at byte {at}"),
            "feature `x`".into(),
            "4-byte floats".into(),
        ],
    );
}

#[test]
fn a_kind_change_names_both_records() {
    let ex = |kind: u8| {
        // features { feature { key: "k" value { <kind> { } } } }
        let feature = [kind, 0x00];
        let mut entry = vec![0x0a, 0x01, b'k', 0x12, 2];
        entry.extend_from_slice(&feature);
        let mut features = vec![0x0a, entry.len() as u8];
        features.extend_from_slice(&entry);
        let mut rec = vec![0x0a, features.len() as u8];
        rec.extend_from_slice(&features);
        rec
    };
    let mut file = Vec::new();
    for k in [0x1a, 0x1a, 0x12] {
        file.extend(framed(&ex(k)));
    }
    rejected(
        &file,
        "kinds.tfrecord",
        &[
            "record 2 at byte".into(),
            "float_list here but a int64_list in record 0".into(),
        ],
    );
}

/// Writes `n` Examples like the benchmark's (a 3 KB bytes feature, an int64, 64 floats,
/// ragged tokens) to `path`.
fn write_examples(path: &Path, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut rec = Vec::new();
    for i in 0..n {
        rec.clear();
        let mut feats = Vec::new();
        let mut add = |key: &[u8], feature: Vec<u8>| {
            let mut entry = vec![0x0a, key.len() as u8];
            entry.extend_from_slice(key);
            entry.push(0x12);
            push_varint(&mut entry, feature.len() as u64);
            entry.extend(feature);
            feats.push(0x0a);
            push_varint(&mut feats, entry.len() as u64);
            feats.extend(entry);
        };
        let image: Vec<u8> = (0..3000).map(|j| ((i * 31 + j) % 251) as u8).collect();
        add(
            b"image",
            list(0x0a, &{
                let mut v = vec![0x0a];
                push_varint(&mut v, image.len() as u64);
                v.extend(&image);
                v
            }),
        );
        add(b"label", list(0x1a, &[0x08, (i % 100) as u8]));
        let floats: Vec<u8> = (0..64)
            .flat_map(|j| (j as f32 + i as f32).to_le_bytes())
            .collect();
        add(
            b"embedding",
            list(0x12, &{
                let mut v = vec![0x0a];
                push_varint(&mut v, floats.len() as u64);
                v.extend(&floats);
                v
            }),
        );
        let toks: Vec<u8> = (0..(i % 7)).map(|j| (j % 100) as u8).collect();
        add(
            b"tokens",
            list(0x1a, &{
                let mut v = vec![0x0a, toks.len() as u8];
                v.extend(&toks);
                v
            }),
        );
        rec.push(0x0a);
        push_varint(&mut rec, feats.len() as u64);
        rec.extend(feats);
        f.write_all(&framed(&rec)).unwrap();
    }
}

fn list(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    push_varint(&mut v, body.len() as u64);
    v.extend_from_slice(body);
    v
}

fn push_varint(v: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        v.push((x as u8) | 0x80);
        x >>= 7;
    }
    v.push(x as u8);
}

#[test]
fn memory_stays_bounded_at_any_record_count() {
    // ~400 MiB of Examples (130k records) under a 160 MiB address-space budget.
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.tfrecord");
    let n = 130_000;
    write_examples(&input, n);
    let out = tmp.path().join("big.npz");
    let script = "ulimit -v 163840 && exec \"$0\" \"$1\" -o \"$2\" -q";
    let run = std::process::Command::new("sh")
        .args(["-c", script])
        .arg(env!("CARGO_BIN_EXE_tf2npy"))
        .arg(&input)
        .arg(&out)
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr_of(&run));
    let members = read_npz(&out);
    let get = |n: &str| &members.iter().find(|(m, _)| m == n).unwrap().1;
    let label = get("label");
    assert_eq!(label.shape, vec![n as u64]);
    assert_eq!(
        &label.data[8 * 99..8 * 101],
        &[99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(get("embedding").shape, vec![n as u64, 64]);
    assert_eq!(get("tokens/row_splits").shape, vec![n as u64 + 1]);
    // The images are read again from the input (referenced, not spilled): check them.
    let image = get("image/bytes");
    assert_eq!(image.shape, vec![n as u64 * 3000]);
    for i in [0, 1, n / 2, n - 1] {
        let want: Vec<u8> = (0..3000).map(|j| ((i * 31 + j) % 251) as u8).collect();
        assert_eq!(
            &image.data[i * 3000..(i + 1) * 3000],
            &want[..],
            "image {i}"
        );
    }
    // Nothing is left beside the output.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 2);
}

#[test]
fn select_and_exclude_name_features_and_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let names = |input: &str, args: &[&str]| -> Vec<String> {
        let out = tmp.path().join("sel.npz");
        let mut a: Vec<std::ffi::OsString> = vec![dir().join(input).into(), "-o".into()];
        a.push(out.clone().into());
        a.extend(args.iter().map(Into::into));
        ok(a);
        let mut n: Vec<String> = read_npz(&out).into_iter().map(|(m, _)| m).collect();
        n.sort();
        n
    };
    // A feature's name selects every array of it (and only those).
    assert_eq!(
        names(
            "examples.tfrecord",
            &["--select", "image", "--select", "label"]
        ),
        ["image/bytes", "image/value_splits", "label"]
    );
    // Array names still match as before.
    assert_eq!(
        names("examples.tfrecord", &["--select", "tokens/row_splits"]),
        ["tokens/row_splits"]
    );
    let all = names("examples.tfrecord", &[]);
    let without = names(
        "examples.tfrecord",
        &["--exclude", "tokens", "--exclude", "ima*"],
    );
    let want: Vec<String> = all
        .iter()
        .filter(|n| !n.starts_with("tokens/") && !n.starts_with("image/"))
        .cloned()
        .collect();
    assert_eq!(without, want);
    assert!(without.len() + 4 == all.len(), "{all:?}");
    // SequenceExample: context keys and feature-list keys are features too.
    let seq = names(
        "sequence.tfrecord",
        &["--select", "frames", "--select", "id"],
    );
    assert_eq!(
        seq,
        [
            "context/id",
            "feature_lists/frames/row_splits",
            "feature_lists/frames/step_splits",
            "feature_lists/frames/values"
        ]
    );
    // TensorBoard: a tag names its step, wall_time and value arrays.
    let tags = names("logs", &["--select", "train/loss"]);
    assert_eq!(
        tags,
        [
            "train/loss/step",
            "train/loss/value",
            "train/loss/wall_time"
        ]
    );
    // The listing narrows the same way.
    let run = ok([
        dir().join("examples.tfrecord").as_os_str(),
        "--select".as_ref(),
        "image".as_ref(),
    ]);
    let t = String::from_utf8_lossy(&run.stdout);
    assert!(
        t.contains("image/bytes") && t.contains("image/value_splits"),
        "{t}"
    );
    assert!(!t.contains("label"), "{t}");
}

/// Writes `n` Examples each holding one `blob` bytes value of `size` bytes; returns the
/// values and the file offset of the first value's bytes.
fn write_blobs(path: &Path, n: usize, size: usize) -> (Vec<Vec<u8>>, u64) {
    let mut file = Vec::new();
    let mut values = Vec::new();
    let mut first = 0;
    for i in 0..n {
        let v: Vec<u8> = (0..size).map(|j| ((i * 7 + j * 13) % 256) as u8).collect();
        let mut bytes_list = vec![0x0a];
        push_varint(&mut bytes_list, v.len() as u64);
        let lead = bytes_list.len();
        bytes_list.extend(&v);
        let feature = list(0x0a, &bytes_list);
        let mut entry = vec![0x0a, 4];
        entry.extend_from_slice(b"blob");
        entry.push(0x12);
        push_varint(&mut entry, feature.len() as u64);
        let in_entry = entry.len() + (feature.len() - bytes_list.len()) + lead;
        entry.extend(feature);
        let mut feats = vec![0x0a];
        push_varint(&mut feats, entry.len() as u64);
        let in_feats = feats.len() + in_entry;
        feats.extend(entry);
        let mut rec = vec![0x0a];
        push_varint(&mut rec, feats.len() as u64);
        let in_rec = rec.len() + in_feats;
        rec.extend(feats);
        if i == 0 {
            first = 12 + in_rec as u64;
        }
        file.extend(framed(&rec));
        values.push(v);
    }
    std::fs::write(path, file).unwrap();
    (values, first)
}

/// A large bytes value is read twice (scan, then output, where it is referenced rather
/// than spilled). One of its bytes is flipped at a time that varies from run to run:
/// whatever the timing, a run fails and publishes nothing, or succeeds with exactly
/// the original bytes.
#[test]
fn a_value_byte_flipped_between_the_two_reads_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("blobs.tfrecord");
    let (values, first) = write_blobs(&input, 16, 256 << 10);
    let want: Vec<u8> = values.concat();
    let at = first + 100;
    assert_eq!(std::fs::read(&input).unwrap()[at as usize], values[0][100]);
    let out = dir.path().join("o.npz");
    crate::common::flip_while_running(
        &input,
        at,
        |_| {
            let argv = vec![
                input.clone().into(),
                "-q".into(),
                "-o".into(),
                out.clone().into(),
            ];
            (argv, out.clone())
        },
        |i| {
            let got = read_npz(&out);
            let bytes = &got.iter().find(|(m, _)| m == "blob/bytes").unwrap().1;
            assert!(
                bytes.data == want,
                "run {i}: exit 0 with bytes that were not read"
            );
        },
    );
}

/// Examples in wire forms no TensorFlow writer makes (a repeated map-entry field,
/// unknown fields at each level, the key after the value, two lists in one Feature, an
/// omitted key or value): tf2npy gives TensorFlow's values where its parser gives any,
/// protobuf's where TensorFlow refuses a record only for omitting a default, and
/// otherwise refuses as TensorFlow does (exit 1, record named, no output); the
/// manifest records all three (fixtures/gen_records.py).
#[test]
fn odd_wire_forms_read_as_tensorflow_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = manifest()["wire_cases"].as_array().unwrap().clone();
    assert!(cases.len() >= 10);
    let (mut refused, mut read) = (0, 0);
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let input = dir().join(c["input"].as_str().unwrap());
        let out = tmp.path().join(format!("{name}.npz"));
        let run = tf2npy([input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
        if c["tf2npy"] == "error" {
            assert_eq!(run.status.code(), Some(1), "{name}: {}", stderr_of(&run));
            let err = stderr_of(&run);
            assert!(err.contains("record 0"), "{name}: {err}");
            assert!(!out.exists(), "{name}: output left behind");
            refused += 1;
            continue;
        }
        assert!(run.status.success(), "{name}: {}", stderr_of(&run));
        let got = read_npz(&out);
        let want = c["tf2npy"].as_object().unwrap();
        if c["tf"] != "error" {
            assert_eq!(c["tf2npy"], c["tf"], "{name}");
        }
        assert_eq!(got.len(), want.len(), "{name}: {got:?}");
        for (k, v) in want {
            let (_, g) = got.iter().find(|(m, _)| m == k).unwrap();
            let bytes: Vec<u8> = v
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|x| (x.as_f64().unwrap() as f32).to_le_bytes())
                .collect();
            assert_eq!(g.descr, "<f4", "{name} `{k}`");
            assert_eq!(g.data, bytes, "{name} `{k}`");
        }
        read += 1;
    }
    assert!(refused >= 4 && read >= 8, "{refused} refused, {read} read");
}
