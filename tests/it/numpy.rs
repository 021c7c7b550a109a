//! numpy interop: every output tf2npy writes for the fixtures loads with
//! `np.load(allow_pickle=False)` and equals the expected array. Needs `python3` with
//! numpy (`tests/requirements.txt`); `TF2NPY_PYTHON` overrides the interpreter. A
//! missing numpy fails the test: it is never skipped.

use crate::common::*;
use std::process::Command;

const CHECK: &str = r#"
import sys, json, zipfile, numpy as np
pairs = json.load(open(sys.argv[1]))
n = 0
for out, member, expected in pairs:
    if member is None:
        got = np.load(out, allow_pickle=False)
    else:
        with np.load(out, allow_pickle=False) as z:
            got = z[member]
    want = np.load(expected, allow_pickle=False)
    assert got.dtype == want.dtype, (out, member, got.dtype, want.dtype)
    assert got.shape == want.shape, (out, member, got.shape, want.shape)
    assert got.tobytes() == want.tobytes(), (out, member)
    n += 1
for out in set(p[0] for p in pairs if p[1] is not None):
    assert zipfile.ZipFile(out).testzip() is None, out
print(n)
"#;

pub fn python() -> String {
    std::env::var("TF2NPY_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs the numpy check over `(output, member, expected)` triples; returns the count.
pub fn numpy_check(pairs: &[(String, Option<String>, String)], dir: &std::path::Path) -> usize {
    let list = dir.join("pairs.json");
    std::fs::write(&list, serde_json::to_string(pairs).unwrap()).unwrap();
    let out = Command::new(python())
        .args(["-c", CHECK])
        .arg(&list)
        .output()
        .expect("python3 must be installed for the numpy interop test");
    assert!(
        out.status.success(),
        "numpy check failed (install numpy: pip install -r tests/requirements.txt):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn numpy_loads_every_output_without_pickle() {
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    for kind in [
        "tensorproto",
        "savedmodel",
        "graphdef",
        "sparse",
        "v2",
        "v1",
    ] {
        for case in cases(kind) {
            let id = case["id"].as_str().unwrap().replace('/', "_");
            let (input, args) = case_input(&case);
            let npz = dir.path().join(format!("{id}.npz"));
            let mut cmd = vec![input.to_string_lossy().into_owned()];
            cmd.extend(args);
            cmd.extend([
                "--all".into(),
                "-o".into(),
                npz.to_string_lossy().into_owned(),
            ]);
            ok(&cmd);
            // Sparse sibling parts are densified by default into the case's sparse_dense.
            let dense = &case["sparse_dense"];
            if let (Some(name), Some(e)) = (dense["name"].as_str(), dense["expected"].as_str()) {
                pairs.push((
                    npz.to_string_lossy().into_owned(),
                    Some(name.to_string()),
                    fixtures().join(e).to_string_lossy().into_owned(),
                ));
            }
            let parts: Vec<String> = ["indices", "values", "dense_shape"]
                .iter()
                .filter_map(|p| dense["name"].as_str().map(|n| format!("{n}/{p}/")))
                .collect();
            for t in expected_tensors(&case) {
                if parts.iter().any(|p| t.name.starts_with(p.as_str())) {
                    continue;
                }
                if let Some(e) = t.expected {
                    pairs.push((
                        npz.to_string_lossy().into_owned(),
                        Some(t.name.clone()),
                        e.to_string_lossy().into_owned(),
                    ));
                }
            }
        }
    }
    let n = numpy_check(&pairs, dir.path());
    assert_eq!(n, pairs.len());
}
