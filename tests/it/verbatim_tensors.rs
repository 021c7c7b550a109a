//! Verbatim tensors: a tensor stored as is in a data file (an unsliced float32, say) is
//! read with `pread` into one buffer and checksummed (CRC32C, the ZIP CRC-32, the
//! manifest's SHA-256) and written from that same buffer into `.npz` (stored), `.npy`
//! and folder outputs, on one thread. These tests make sure that
//! path writes exactly the right bytes, still refuses damaged data, and never writes
//! bytes it did not verify when the input changes while tf2npy runs (issue 15 item 12:
//! the kernel-copy path this replaced copied the file while a second thread
//! checksummed its own read, and wrote a flipped byte with exit 0 in 40 of 200 runs).

use crate::bundle_writer::{write_bundle, Tensor};
use crate::common::*;
use std::path::{Path, PathBuf};

/// 3 MiB + 12 bytes of float32 (not a multiple of any buffer size), plus a small tensor
/// before it so the big one starts at an odd offset, and a bfloat16 that needs
/// converting after it.
fn payload() -> Vec<u8> {
    (0..(3 << 20) / 4 + 3u32)
        .flat_map(|i| ((i as f32) * 0.5 - 7.0).to_le_bytes())
        .collect()
}

fn make(dir: &Path) -> (PathBuf, PathBuf) {
    let prefix = dir.join("ckpt");
    let big = payload();
    let n = (big.len() / 4) as i64;
    let data = write_bundle(
        &prefix,
        &[
            Tensor::new("a_small", 3, &[3], vec![1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]),
            Tensor::new("big", 1, &[n], big),
            Tensor::new("c_bf16", 14, &[2], vec![0x80, 0x3f, 0xc0, 0x40]),
        ],
        false,
    );
    (prefix, data)
}

fn outputs(dir: &Path) -> [(PathBuf, Vec<&'static str>); 3] {
    [
        (dir.join("o.npz"), vec![]),
        (dir.join("dir/"), vec![]),
        (dir.join("big.npy"), vec!["--tensor", "big"]),
    ]
}

fn run(prefix: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![prefix.as_os_str(), "-o".as_ref(), out.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    tf2npy(args)
}

fn big_of(out: &Path) -> Npy {
    if out.extension().is_some_and(|e| e == "npz") {
        let members = read_npz(out);
        assert_eq!(members.len(), 3, "{members:?}");
        members.into_iter().find(|(n, _)| n == "big").unwrap().1
    } else if out.extension().is_some_and(|e| e == "npy") {
        read_npy(out)
    } else {
        read_npy(&out.join("big.npy"))
    }
}

#[test]
fn large_verbatim_tensors_are_copied_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (prefix, _) = make(dir.path());
    for (out, extra) in outputs(dir.path()) {
        let r = run(&prefix, &out, &extra);
        assert!(r.status.success(), "{}: {}", out.display(), stderr_of(&r));
        let got = big_of(&out);
        assert_eq!(got.descr, "<f4");
        assert_eq!(got.shape, vec![payload().len() as u64 / 4]);
        assert!(got.data == payload(), "{}: payload differs", out.display());
    }
    // read_npz checked every member's CRC-32; numpy agrees with the archive too.
    assert_zip_valid(&dir.path().join("o.npz"));
}

#[test]
fn a_flipped_byte_in_a_mapped_tensor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (prefix, data) = make(dir.path());
    let mut bytes = std::fs::read(&data).unwrap();
    let at = 12 + (2 << 20) + 5; // inside `big`
    bytes[at] ^= 0x01;
    std::fs::write(&data, bytes).unwrap();
    for (out, extra) in outputs(dir.path()) {
        let r = run(&prefix, &out, &extra);
        let err = stderr_of(&r);
        assert_eq!(r.status.code(), Some(1), "{}: {err}", out.display());
        assert!(err.contains("`big`") || err.contains("big:"), "{err}");
        assert!(err.contains("--no-verify"), "{err}");
        assert!(!out.exists(), "{}: output left behind", out.display());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        // --no-verify copies the damaged bytes as they are.
        let mut extra = extra.clone();
        extra.push("--no-verify");
        let r = run(&prefix, &out, &extra);
        assert!(r.status.success(), "{}", stderr_of(&r));
        let got = big_of(&out);
        let mut want = payload();
        want[at - 12] ^= 0x01;
        assert!(got.data == want, "{}", out.display());
    }
}

/// Flips one byte of `big` in the data file at a time that varies from run to run
/// while tf2npy converts (2 MiB tensor, with a manifest), then restores it. Whatever the
/// timing, a run either fails (checksum mismatch, or "changed while being read") and
/// publishes nothing, or succeeds with exactly the original bytes, and the manifest's
/// SHA-256 is that of the bytes written.
#[test]
fn issue_15_a_byte_flipped_during_the_run_is_never_written_as_verified() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ckpt");
    let big: Vec<u8> = (0..(2u32 << 20) / 4)
        .flat_map(|i| ((i as f32) * 0.25).to_le_bytes())
        .collect();
    let n = (big.len() / 4) as i64;
    let data = write_bundle(&prefix, &[Tensor::new("big", 1, &[n], big.clone())], false);
    let at = (1u64 << 20) + 3;
    let manifest = dir.path().join("m.json");
    let out_of = |i: u64| dir.path().join(if i % 2 == 0 { "o.npz" } else { "o.npy" });
    crate::common::flip_while_running(
        &data,
        at,
        |i| {
            let _ = std::fs::remove_file(&manifest);
            let out = out_of(i);
            let argv = vec![
                prefix.clone().into(),
                "-q".into(),
                "-o".into(),
                out.clone().into(),
                "--manifest".into(),
                manifest.clone().into(),
            ];
            (argv, out)
        },
        |i| {
            let got = big_of_one(&out_of(i));
            assert!(
                got == big,
                "run {i}: exit 0 with bytes that are not the verified ones"
            );
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
            let sha: String = Sha256::digest(&got)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(m["tensors"][0]["sha256"], sha.as_str(), "run {i}");
        },
    );
}

fn big_of_one(out: &Path) -> Vec<u8> {
    if out.extension().is_some_and(|e| e == "npz") {
        read_npz(out).into_iter().next().unwrap().1.data
    } else {
        read_npy(out).data
    }
}
