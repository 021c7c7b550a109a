//! Makefile/CI features (issue 7): --check, untouched identical output, --force,
//! --manifest, --verify, --dry-run, completions, man page, NO_COLOR.

use crate::common::*;
use std::time::{Duration, SystemTime};

fn input() -> std::path::PathBuf {
    fixtures().join("tensorproto").join("float32_2x3.pb")
}

fn other_input() -> std::path::PathBuf {
    fixtures().join("tensorproto").join("float16_2x2.pb")
}

fn args(parts: &[&std::ffi::OsStr]) -> Vec<std::ffi::OsString> {
    parts.iter().map(|p| p.to_os_string()).collect()
}

#[test]
fn check_reports_missing_identical_and_changed_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.npz");
    let run = tf2npy(args(&[
        input().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--check".as_ref(),
    ]));
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("missing"),
        "{run:?}"
    );
    assert!(!out.exists(), "--check must not write");

    ok(args(&[input().as_os_str(), "-o".as_ref(), out.as_os_str()]));
    let run = tf2npy(args(&[
        input().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--check".as_ref(),
    ]));
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    assert!(run.stdout.is_empty());

    // Same member name, different values: rename a different tensor to the same stem.
    let renamed = dir.path().join("float32_2x3.pb");
    std::fs::copy(
        fixtures().join("tensorproto").join("float32_scalar.pb"),
        &renamed,
    )
    .unwrap();
    let run = tf2npy(args(&[
        renamed.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--check".as_ref(),
    ]));
    assert_eq!(run.status.code(), Some(1));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("changed shape: float32_2x3"), "{text}");

    let run = tf2npy(args(&[
        other_input().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--check".as_ref(),
    ]));
    assert_eq!(run.status.code(), Some(1));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("added: float16_2x2"), "{text}");
    assert!(text.contains("removed: float32_2x3"), "{text}");
}

#[test]
fn check_reports_changed_values_and_dtype_in_folders() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f/");
    ok(args(&[input().as_os_str(), "-o".as_ref(), out.as_os_str()]));
    let file = out.join("float32_2x3.npy");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let run = tf2npy(args(&[
        input().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--check".as_ref(),
    ]));
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stdout).contains("changed values: float32_2x3"));
    let run = tf2npy(args(&[
        input().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--check".as_ref(),
        "--raw-bits".as_ref(),
    ]));
    assert_eq!(run.status.code(), Some(1));
}

#[test]
fn identical_output_is_left_untouched_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.npz", "a.npy", "d/"] {
        let out = dir.path().join(name);
        ok(args(&[input().as_os_str(), "-o".as_ref(), out.as_os_str()]));
        let file = if name.ends_with('/') {
            out.join("float32_2x3.npy")
        } else {
            out.clone()
        };
        let old = SystemTime::now() - Duration::from_secs(3600);
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(old).unwrap();
        drop(f);
        ok(args(&[input().as_os_str(), "-o".as_ref(), out.as_os_str()]));
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            old,
            "{name}: rewritten"
        );
        ok(args(&[
            input().as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--force".as_ref(),
        ]));
        assert_ne!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            old,
            "{name}: --force did not rewrite"
        );
    }
}

#[test]
fn manifest_is_deterministic_and_hashes_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.npz");
    let m1 = dir.path().join("m1.json");
    let m2 = dir.path().join("m2.json");
    ok(args(&[
        input().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--manifest".as_ref(),
        m1.as_os_str(),
    ]));
    ok(args(&[
        input().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--force".as_ref(),
        "--manifest".as_ref(),
        m2.as_os_str(),
    ]));
    let a = std::fs::read(&m1).unwrap();
    assert_eq!(a, std::fs::read(&m2).unwrap());
    let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
    let t = &v["tensors"][0];
    assert_eq!(t["name"], "float32_2x3");
    assert_eq!(t["source_dtype"], "float32");
    assert_eq!(t["dtype"], "<f4");
    assert_eq!(t["shape"], serde_json::json!([2, 3]));
    let expected = read_npy(&fixtures().join("expected/tensorproto/float32_2x3.npy"));
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&expected.data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(t["sha256"], digest.as_str());
    assert_eq!(
        v["input_files"][0]["bytes"],
        std::fs::metadata(input()).unwrap().len()
    );
}

#[test]
fn dry_run_lists_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.npz");
    let run = ok(args(&[
        input().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--dry-run".as_ref(),
    ]));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("float32_2x3  <f4  [2, 3]  24 bytes"),
        "{text}"
    );
    assert!(!out.exists());
}

#[test]
fn verify_reads_everything_and_reports() {
    let run = ok(args(&[input().as_os_str(), "--verify".as_ref()]));
    assert!(String::from_utf8_lossy(&run.stdout).contains("verified 1 tensors"));
}

#[test]
fn completions_and_man_page_are_generated() {
    let run = ok(["completions", "bash"]);
    assert!(String::from_utf8_lossy(&run.stdout).contains("tf2npy"));
    let run = ok(["man"]);
    assert!(String::from_utf8_lossy(&run.stdout).contains(".TH tf2npy"));
}

#[test]
fn help_has_examples_and_no_color_on_a_pipe() {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_tf2npy"))
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("Examples:") && text.contains("--check"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "escape codes in help");
    let run = ok(["--version"]);
    assert!(String::from_utf8_lossy(&run.stdout).starts_with("tf2npy "));
}

#[test]
fn verify_catches_a_flipped_data_byte() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("v2/all_dtypes");
    for f in std::fs::read_dir(&src).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let prefix = dir.path().join("ckpt-1");
    let run = ok(args(&[prefix.as_os_str(), "--verify".as_ref()]));
    assert!(String::from_utf8_lossy(&run.stdout).contains(": OK"));
    // Find where model/f32 lives from the listing, then flip its first byte.
    let list = ok(args(&[
        prefix.as_os_str(),
        "--list".as_ref(),
        "--json".as_ref(),
    ]));
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let name = "model/f32/.ATTRIBUTES/VARIABLE_VALUE";
    let e = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap();
    let loc = e["location"].as_str().unwrap();
    let offset: usize = loc.rsplit('@').next().unwrap().trim().parse().unwrap();
    let data = dir.path().join("ckpt-1.data-00000-of-00001");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[offset] ^= 0x40;
    std::fs::write(&data, bytes).unwrap();
    let run = tf2npy(args(&[prefix.as_os_str(), "--verify".as_ref()]));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains(name) && err.contains("checksum"), "{err}");
    assert!(err.contains("ckpt-1.data-00000-of-00001"), "{err}");
}
