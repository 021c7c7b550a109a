//! `.safetensors` output (issue 14): every checkpoint fixture written with
//! `-o X.safetensors` loads with the `safetensors` Python package to the fixtures' expected
//! arrays (bfloat16 / float8 compared as bits through `ml_dtypes`), and is byte-identical
//! to `safetensors.numpy.save_file` of those arrays. Needs `python3` with
//! `tests/requirements.txt` (safetensors, ml_dtypes); a missing package fails the test.

use crate::common::*;
use crate::numpy::python;
use std::process::Command;

/// For each output: load it with safetensors, compare every tensor with the expected
/// arrays, then write the same arrays with `save_file` and compare the files' bytes.
/// TensorFlow dtypes safetensors cannot hold must be absent; every other expected
/// tensor present; nothing else present.
const CHECK: &str = r#"
import sys, json, numpy as np, ml_dtypes
from safetensors import safe_open
from safetensors.numpy import save_file
NOT_HELD = {"string", "complex128", "float8_e4m3b11fnuz", "int4", "uint4", "int2", "uint2",
            "float4_e2m1fn", "variant", "resource"}
BITS = {"bfloat16", "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2fnuz"}
# safetensors 0.8's numpy loader looks the float8 types up as attributes of the numpy
# module (get_pydtype: module.getattr("float8_e4m3fn")), which only ml_dtypes provides.
for name in BITS:
    setattr(np, name, getattr(ml_dtypes, name))
jobs = json.load(open(sys.argv[1]))
n = 0
for job in jobs:
    out, ref = job["out"], job["ref"]
    want = {}
    for t in job["tensors"]:
        if t["tf_dtype"] in NOT_HELD:
            continue
        if t["tf_dtype"] in BITS:
            raw = np.load(t["expected_raw"], allow_pickle=False)
            want[t["name"]] = raw.view(getattr(ml_dtypes, t["tf_dtype"]))
        else:
            want[t["name"]] = np.load(t["expected"], allow_pickle=False)
    with safe_open(out, framework="np") as f:
        keys = set(f.keys())
        assert keys == set(want), (out, sorted(keys ^ set(want)))
        for k, w in want.items():
            got = f.get_tensor(k)
            assert got.dtype == w.dtype, (out, k, got.dtype, w.dtype)
            assert got.shape == w.shape, (out, k, got.shape, w.shape)
            assert got.tobytes() == w.tobytes(), (out, k)
            n += 1
    save_file(want, ref)
    a, b = open(out, "rb").read(), open(ref, "rb").read()
    assert a == b, (out, len(a), len(b), a[:200], b[:200])
print(n)
"#;

fn run_check(jobs: &serde_json::Value, dir: &std::path::Path) -> usize {
    let list = dir.join("jobs.json");
    std::fs::write(&list, serde_json::to_string(jobs).unwrap()).unwrap();
    let out = Command::new(python())
        .args(["-c", CHECK])
        .arg(&list)
        .output()
        .expect("python3 must be installed for the safetensors test");
    assert!(
        out.status.success(),
        "safetensors check failed (pip install -r tests/requirements.txt):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

const NOT_HELD: &[&str] = &[
    "string",
    "complex128",
    "float8_e4m3b11fnuz",
    "int4",
    "uint4",
    "int2",
    "uint2",
    "float4_e2m1fn",
    "variant",
    "resource",
];

#[test]
fn every_checkpoint_fixture_matches_save_file_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    let mut expected_count = 0;
    for kind in ["v2", "v1", "savedmodel"] {
        for case in cases(kind) {
            let id = case["id"].as_str().unwrap().replace('/', "_");
            let (input, args) = case_input(&case);
            let out = dir.path().join(format!("{id}.safetensors"));
            let mut cmd = vec![input.to_string_lossy().into_owned()];
            cmd.extend(args);
            cmd.extend(["-o".into(), out.to_string_lossy().into_owned()]);
            let run = ok(&cmd);
            let stderr = stderr_of(&run);
            // Sparse sibling parts are densified into the case's sparse_dense.
            let dense = &case["sparse_dense"];
            let parts: Vec<String> = ["indices", "values", "dense_shape"]
                .iter()
                .filter_map(|p| dense["name"].as_str().map(|n| format!("{n}/{p}/")))
                .collect();
            let mut tensors = Vec::new();
            if let (Some(name), Some(e)) = (dense["name"].as_str(), dense["expected"].as_str()) {
                tensors.push(serde_json::json!({
                    "name": name, "tf_dtype": dense["tf_dtype"], "expected": fixtures().join(e),
                }));
            }
            for t in expected_tensors(&case) {
                if t.hidden || parts.iter().any(|p| t.name.starts_with(p.as_str())) {
                    continue;
                }
                if t.skip || NOT_HELD.contains(&t.tf_dtype.as_str()) {
                    assert!(
                        stderr.contains(&format!("`{}`", t.name)),
                        "{id}: no warning naming skipped `{}`: {stderr}",
                        t.name
                    );
                    continue;
                }
                expected_count += 1;
                tensors.push(serde_json::json!({
                    "name": t.name, "tf_dtype": t.tf_dtype,
                    "expected": t.expected, "expected_raw": t.expected_raw,
                }));
            }
            if dense["name"].is_string() {
                expected_count += 1;
            }
            let reference = dir.path().join(format!("{id}.ref.safetensors"));
            jobs.push(serde_json::json!({"out": out, "ref": reference, "tensors": tensors}));
        }
    }
    let n = run_check(&serde_json::Value::Array(jobs), dir.path());
    assert_eq!(n, expected_count);
    assert!(n >= 90, "only {n} tensors compared");
}

fn all_dtypes() -> (std::path::PathBuf, serde_json::Value) {
    let case = cases("v2")
        .into_iter()
        .find(|c| c["id"] == "v2/all_dtypes")
        .unwrap();
    (case_input(&case).0, case)
}

#[test]
fn a_tensor_safetensors_cannot_hold_is_an_error_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.safetensors");
    for dtype in ["string", "complex128", "int4", "float4_e2m1fn"] {
        let (input, t) = cases("v2")
            .iter()
            .find_map(|c| {
                let t = expected_tensors(c)
                    .into_iter()
                    .find(|t| t.tf_dtype == dtype)?;
                Some((case_input(c).0, t))
            })
            .unwrap_or_else(|| panic!("no {dtype} fixture"));
        let run = tf2npy([
            input.as_os_str(),
            "--tensor".as_ref(),
            t.name.as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        assert_eq!(run.status.code(), Some(1), "{dtype}");
        let err = stderr_of(&run);
        assert!(
            err.contains(&t.name) && err.contains(&format!("safetensors has no {dtype} dtype")),
            "{err}"
        );
        assert!(!out.exists());
    }
}

#[test]
fn check_manifest_and_untouched_if_identical() {
    let (input, _) = all_dtypes();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.safetensors");
    let manifest = dir.path().join("w.json");
    let args = |extra: &[&str]| {
        let mut a = vec![
            input.to_string_lossy().into_owned(),
            "-q".into(),
            "-o".into(),
            out.to_string_lossy().into_owned(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // --check before the file exists: exit 1, nothing written.
    let run = tf2npy(args(&["--check"]));
    assert_eq!(run.status.code(), Some(1));
    assert!(!out.exists());
    ok(args(&["--manifest", manifest.to_str().unwrap()]));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let bf16 = m["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source_dtype"] == "bfloat16")
        .expect("a bfloat16 record");
    assert_eq!(bf16["dtype"], "BF16", "bfloat16 is written as such");
    let before = std::fs::metadata(&out).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    ok(args(&[]));
    assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), before);
    let run = tf2npy(args(&["--check"]));
    assert_eq!(run.status.code(), Some(0), "{}", stderr_of(&run));
    // Damage one payload byte at the end: --check names the changed tensor.
    let mut bytes = std::fs::read(&out).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&out, &bytes).unwrap();
    let run = tf2npy(args(&["--check"]));
    assert_eq!(run.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        stderr_of(&run)
    );
    assert!(text.contains("changed values"), "{text}");
    // A --select that drops tensors: --check reports them as removed.
    ok(args(&["--force"]));
    let run = tf2npy(args(&["--check", "--select", "*f32*"]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        stderr_of(&run)
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(text.contains("removed"), "{text}");
}

/// Bounded memory: tensors several times larger than an address-space budget stream
/// into a `.safetensors` file (as tests/it/memory.rs does for `.npz`).
#[test]
fn tensors_larger_than_the_memory_budget_stream_to_safetensors() {
    use crate::bundle_writer::{write_bundle, Tensor};
    use std::io::{Read, Seek, SeekFrom};
    const BUDGET_KIB: u64 = 160 * 1024;
    const F32_BYTES: u64 = 640 << 20;
    const BF16_BYTES: u64 = 200 << 20;
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ckpt");
    let tensors = [
        Tensor::zeros(
            "big_f32",
            1,
            vec![(F32_BYTES / 4) as i64],
            F32_BYTES,
            vec![(0u64, 1.5f32.to_le_bytes().to_vec())],
        ),
        Tensor::zeros(
            "big_bf16",
            14,
            vec![(BF16_BYTES / 2) as i64],
            BF16_BYTES,
            vec![(0u64, vec![0x80, 0x3f]), (BF16_BYTES - 2, vec![0xc0, 0x40])],
        ),
    ];
    write_bundle(&prefix, &tensors, false);
    let out = dir.path().join("o.safetensors");
    let control = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {BUDGET_KIB} && exec python3 -c 'bytearray({F32_BYTES})'"
        ))
        .output()
        .unwrap();
    assert!(!control.status.success(), "the budget does not constrain");
    let run = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {BUDGET_KIB} && exec \"$0\" \"$1\" -q -o \"$2\""
        ))
        .arg(env!("CARGO_BIN_EXE_tf2npy"))
        .arg(&prefix)
        .arg(&out)
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr_of(&run));
    let mut f = std::fs::File::open(&out).unwrap();
    let mut n = [0u8; 8];
    f.read_exact(&mut n).unwrap();
    let n = u64::from_le_bytes(n);
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(
        header["big_f32"]["data_offsets"],
        serde_json::json!([0, F32_BYTES])
    );
    assert_eq!(header["big_bf16"]["dtype"], "BF16");
    assert_eq!(f.metadata().unwrap().len(), 8 + n + F32_BYTES + BF16_BYTES);
    let mut four = [0u8; 4];
    f.read_exact(&mut four).unwrap();
    assert_eq!(f32::from_le_bytes(four), 1.5);
    let mut two = [0u8; 2];
    f.seek(SeekFrom::Start(8 + n + F32_BYTES)).unwrap();
    f.read_exact(&mut two).unwrap();
    assert_eq!(two, [0x80, 0x3f], "bfloat16 bits kept, not widened");
    f.seek(SeekFrom::End(-2)).unwrap();
    f.read_exact(&mut two).unwrap();
    assert_eq!(two, [0xc0, 0x40]);
}
