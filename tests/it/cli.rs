//! Command-line behaviour: listing, exit codes, errors on bad input, no partial output.

use crate::common::*;

fn tp(name: &str) -> std::path::PathBuf {
    fixtures().join("tensorproto").join(name)
}

#[test]
fn lists_tensorproto_as_table_and_json() {
    let out = ok([tp("float32_2x3.pb")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("float32_2x3"), "{text}");
    assert!(text.contains("float32"), "{text}");
    assert!(text.contains("[2, 3]"), "{text}");
    let out = ok([
        tp("float32_2x3.pb").as_os_str(),
        "--list".as_ref(),
        "--json".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v["entries"].as_array().unwrap()[0];
    assert_eq!(first["name"], "float32_2x3");
    assert_eq!(first["dtype"], "float32");
    assert_eq!(first["shape"], serde_json::json!([2, 3]));
    assert_eq!(first["bytes"], 24);
}

#[test]
fn json_dtype_is_tensorflow_name() {
    for case in cases("tensorproto") {
        let (input, _) = case_input(&case);
        let out = ok([input.as_os_str(), "--list".as_ref(), "--json".as_ref()]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let t = &expected_tensors(&case)[0];
        assert_eq!(
            v["entries"][0]["dtype"],
            t.tf_dtype.as_str(),
            "{}",
            case["id"]
        );
    }
}

#[test]
fn rejects_truncated_and_garbled_tensorproto_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(tp("float32_2x3.pb")).unwrap();
    let mut garbled = good.clone();
    garbled[0] = 0xff;
    let mut bad_len = good.clone();
    bad_len.truncate(good.len() - 3);
    for (label, bytes) in [
        ("truncated", bad_len),
        ("garbled", garbled),
        ("junk", b"\x0a\xff\xff\xff\xff\x0f".to_vec()),
    ] {
        let input = dir.path().join(format!("{label}.pb"));
        std::fs::write(&input, bytes).unwrap();
        let out_path = dir.path().join(format!("{label}.npy"));
        let run = tf2npy([input.as_os_str(), "-o".as_ref(), out_path.as_os_str()]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{label}: {stderr}");
        assert!(
            stderr.contains(&format!("{label}.pb")),
            "{label}: message must name the file: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out_path.exists(), "{label}: output left behind");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let run = tf2npy(["--no-such-flag"]);
    assert_eq!(run.status.code(), Some(2));
    let run = tf2npy([
        tp("float32_2x3.pb").as_os_str(),
        "-o".as_ref(),
        "out.unknown".as_ref(),
    ]);
    assert_eq!(
        run.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run = tf2npy([
        tp("float32_2x3.pb").as_os_str(),
        "--tensor".as_ref(),
        "nope".as_ref(),
        "-o".as_ref(),
        "x.npy".as_ref(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("float32_2x3"));
}

#[test]
fn missing_input_exits_1_naming_it() {
    let run = tf2npy(["/nonexistent/model.ckpt", "--list"]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("/nonexistent/model.ckpt"));
}

#[test]
fn input_holding_only_unconvertible_tensors_is_bad_input() {
    // The TF2 iterator state in all_dtypes is the only variant tensor: select just it.
    let dir = tempfile::tempdir().unwrap();
    let input = fixtures().join("v2/all_dtypes/ckpt-1");
    let run = tf2npy([
        input.as_os_str(),
        "--select".as_ref(),
        "*ITERATOR_STATE".as_ref(),
        "-o".as_ref(),
        dir.path().join("x.npz").as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ITERATOR_STATE") && err.contains("variant"),
        "{err}"
    );
    assert!(!dir.path().join("x.npz").exists());
}
