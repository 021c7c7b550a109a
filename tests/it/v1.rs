//! V1 checkpoints (SavedTensorSlices): every fixture tensor bit-exact (float16 and
//! partitioned ones included), every input form (file, one shard, folder with a state
//! file holding a glob, glob pattern, relative and absolute, moved folder), `--list`
//! naming the kind, and damaged copies rejected with exit 1, a message naming file and
//! tensor, and no output.

use crate::bundle_writer::table;
use crate::common::*;
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tf2npy::formats::checkpoint::table::Table;
use tf2npy::formats::proto::SavedTensorSlices;

fn fx(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

fn case(id: &str) -> serde_json::Value {
    cases("v1")
        .into_iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

/// Runs tf2npy in `cwd`.
fn tf2npy_in(cwd: &Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tf2npy"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run tf2npy")
}

/// Converts `input` (run in `cwd`) to a `.npz` and checks it holds exactly the tensors
/// of fixture case `id`, bit for bit.
fn converts_like(input: &Path, cwd: &Path, id: &str, out_dir: &Path) {
    let out = out_dir.join("out.npz");
    let _ = std::fs::remove_file(&out);
    let run = tf2npy_in(cwd, &[input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(
        run.status.success(),
        "{} (in {}): {}",
        input.display(),
        cwd.display(),
        stderr_of(&run)
    );
    let members = read_npz(&out);
    let want = expected_tensors(&case(id));
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    let want_names: Vec<&str> = want.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, want_names, "{}", input.display());
    for t in &want {
        let (_, got) = members.iter().find(|(n, _)| *n == t.name).unwrap();
        assert_same(id, &t.name, got, t.expected.as_ref().unwrap());
    }
}

#[test]
fn v1_fixtures_convert_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for c in cases("v1") {
        let n = check_case_npz(&c, dir.path(), &[]);
        assert_eq!(n, expected_tensors(&c).len(), "{}", c["id"]);
        total += n;
    }
    assert_eq!(total, 15);
    // One tensor at a time to .npy, partitioned and float16 ones included.
    let c = case("v1/sharded");
    let (input, _) = case_input(&c);
    for t in expected_tensors(&c) {
        let out = dir.path().join("t.npy");
        ok([
            input.as_os_str(),
            "--tensor".as_ref(),
            t.name.as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        assert_same(
            "v1/sharded",
            &t.name,
            &read_npy(&out),
            t.expected.as_ref().unwrap(),
        );
    }
}

/// Copies the files of fixture folder `rel` whose names satisfy `keep` into `dir`.
fn copy_files(rel: &str, dir: &Path, keep: impl Fn(&str) -> bool) {
    for e in std::fs::read_dir(fx(rel)).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if keep(&n) {
            std::fs::copy(e.path(), dir.join(&n)).unwrap();
        }
    }
}

#[test]
fn every_input_form_reads_the_same() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path();
    let root = fixtures();
    let v1 = fx("v1");
    for (input, cwd, id) in [
        (fx("v1/basic/model.ckpt"), &root, "v1/basic"),
        (fx("v1/basic"), &root, "v1/basic"),
        (fx("v1/basic/"), &root, "v1/basic"),
        (fx("v1/sharded"), &root, "v1/sharded"),
        (
            fx("v1/sharded/model.ckpt-?????-of-00002"),
            &root,
            "v1/sharded",
        ),
        (fx("v1/sharded/model.ckpt-*"), &root, "v1/sharded"),
        (
            fx("v1/sharded/model.ckpt-00000-of-00002"),
            &root,
            "v1/sharded_one_shard",
        ),
        (PathBuf::from("sharded"), &v1, "v1/sharded"),
        (PathBuf::from("basic/model.ckpt"), &v1, "v1/basic"),
        (
            PathBuf::from("sharded/model.ckpt-?????-of-00002"),
            &v1,
            "v1/sharded",
        ),
        (PathBuf::from("."), &fx("v1/sharded"), "v1/sharded"),
    ] {
        converts_like(&input, cwd, id, o);
    }

    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // A state file with an absolute glob, as TF1 savers write by default.
    let a = t.join("abs");
    std::fs::create_dir(&a).unwrap();
    copy_files("v1/sharded", &a, |n| n.starts_with("model.ckpt-"));
    std::fs::write(
        a.join("checkpoint"),
        format!(
            "model_checkpoint_path: \"{}/model.ckpt-?????-of-00002\"\n",
            a.display()
        ),
    )
    .unwrap();
    converts_like(&a, t, "v1/sharded", o);
    // The same folder moved: the old absolute path is gone, the name is found here.
    let moved = t.join("moved");
    std::fs::rename(&a, &moved).unwrap();
    converts_like(&moved, t, "v1/sharded", o);
    converts_like(Path::new("moved"), t, "v1/sharded", o);
    // An unsharded save whose state file names an old absolute path.
    let b = t.join("basic");
    std::fs::create_dir(&b).unwrap();
    copy_files("v1/basic", &b, |n| n == "model.ckpt");
    std::fs::write(
        b.join("checkpoint"),
        "model_checkpoint_path: \"/no/such/old/place/model.ckpt\"\n",
    )
    .unwrap();
    converts_like(&b, t, "v1/basic", o);
    // No state file: the folder's only checkpoint, sharded or not.
    std::fs::remove_file(moved.join("checkpoint")).unwrap();
    converts_like(&moved, t, "v1/sharded", o);
    std::fs::remove_file(b.join("checkpoint")).unwrap();
    converts_like(&b, t, "v1/basic", o);
    // Two checkpoints and no state file: name one.
    copy_files("v1/sharded", &b, |n| n.starts_with("model.ckpt-"));
    let run = tf2npy([b.as_os_str(), "--list".as_ref()]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("holds 2 V1 checkpoints") && err.contains("model.ckpt-?????-of-00002"),
        "{err}"
    );
}

#[test]
fn list_names_the_kind_slices_and_files() {
    let text = String::from_utf8(ok([fx("v1/basic/model.ckpt"), "--list".into()]).stdout).unwrap();
    assert!(
        text.contains(&format!(
            "TensorFlow V1 checkpoint {}: 6 tensors",
            fx("v1/basic/model.ckpt").display()
        )),
        "{text}"
    );
    assert!(text.contains("3 slices in 1 file"), "{text}");
    for c in cases("v1") {
        let (input, _) = case_input(&c);
        let out = ok([input.as_os_str(), "--list".as_ref(), "--json".as_ref()]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let v = &v["entries"];
        let want = c["tensors"].as_array().unwrap();
        assert_eq!(v.as_array().unwrap().len(), want.len(), "{}", c["id"]);
        for (got, want) in v.as_array().unwrap().iter().zip(want) {
            assert_eq!(got["name"], want["name"], "{}", c["id"]);
            assert_eq!(got["dtype"], want["tf_dtype"], "{}", c["id"]);
            assert_eq!(got["shape"], want["shape"], "{}", c["id"]);
        }
    }
    // --verify reads every record of both shards.
    ok([fx("v1/sharded").as_os_str(), "--verify".as_ref()]);
}

/// Every record of a table file, in key order.
fn records(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    Table::open(path)
        .unwrap()
        .scan()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn damaged_v1_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read(fx("v1/basic/model.ckpt")).unwrap();

    // Truncated, and a flipped byte in the (only) block.
    let p = d.join("cut.ckpt");
    std::fs::write(&p, &good[..good.len() - 20]).unwrap();
    assert_rejected(&p, &["cut.ckpt"], d);
    let mut flipped = good.clone();
    flipped[200] ^= 0x04;
    let p = d.join("flipped.ckpt");
    std::fs::write(&p, &flipped).unwrap();
    assert_rejected(&p, &["flipped.ckpt", "checksum mismatch"], d);

    // One record per block: a flipped byte in `i64`'s record is found when reading it.
    let recs = records(&fx("v1/basic/model.ckpt"));
    let spread = table(&recs, 1, false);
    let p = d.join("spread.ckpt");
    std::fs::write(&p, &spread).unwrap();
    let ok_dir = tempfile::tempdir().unwrap();
    converts_like(&p, d, "v1/basic", ok_dir.path());
    let (_, i64_rec) = recs
        .iter()
        .find(|(k, _)| k.starts_with(b"\x00i64\x00\x01"))
        .unwrap();
    let at = spread
        .windows(i64_rec.len())
        .position(|w| w == i64_rec.as_slice())
        .unwrap();
    let mut bad = spread.clone();
    bad[at + i64_rec.len() - 1] ^= 0x01;
    let p = d.join("bad_record.ckpt");
    std::fs::write(&p, &bad).unwrap();
    assert_rejected(
        &p,
        &["bad_record.ckpt", "tensor `i64`", "checksum mismatch"],
        d,
    );

    // A record with one value too few for its slice.
    let mut short = recs.clone();
    for (k, v) in &mut short {
        if k.starts_with(b"\x00i64\x00\x01") {
            let mut sts = SavedTensorSlices::decode(v.as_slice()).unwrap();
            let data = sts.data.as_mut().unwrap().data.as_mut().unwrap();
            assert_eq!(data.int64_val.len(), 4);
            data.int64_val.pop();
            *v = sts.encode_to_vec();
        }
    }
    let p = d.join("short.ckpt");
    std::fs::write(&p, table(&short, 4, false)).unwrap();
    assert_rejected(
        &p,
        &[
            "short.ckpt",
            "tensor `i64`",
            "int64_val holds 3 values",
            "exactly one value",
        ],
        d,
    );

    // A data record missing altogether.
    let missing: Vec<_> = recs
        .iter()
        .filter(|(k, _)| !k.starts_with(b"\x00part_rows\x00\x01"))
        .cloned()
        .collect();
    let p = d.join("missing.ckpt");
    std::fs::write(&p, table(&missing, 4, true)).unwrap();
    assert_rejected(&p, &["missing.ckpt", "tensor `part_rows`", "no record"], d);

    // A missing shard: the state file's glob says 2 shards, one is here.
    let f = d.join("oneshard");
    std::fs::create_dir(&f).unwrap();
    copy_files("v1/sharded", &f, |n| {
        n == "checkpoint" || n == "model.ckpt-00001-of-00002"
    });
    assert_rejected(
        &f,
        &["model.ckpt-00000-of-00002", "shard file is missing"],
        d,
    );
}
