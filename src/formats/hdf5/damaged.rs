//! Damaged-file suite for the HDF5 reader: every fixture truncated at many lengths and
//! with single bytes overwritten all over it must open-or-fail cleanly and, when it
//! opens, list and stream every tensor without a panic. Failures must be `Corrupt` or
//! `Unsupported` errors naming the file.

use crate::error::Error;
use crate::formats::{open, OpenOptions};
use crate::source::RawTensor;
use crate::stream::ByteStream;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/keras")
        .join(name)
}

/// Opens `path` and reads every entry; returns a description of a panic, if any.
fn exercise(path: &Path) -> Option<String> {
    let run = std::panic::catch_unwind(|| {
        let c = match open(path, &OpenOptions::default()) {
            Ok(c) => c,
            Err(e) => {
                check_error(&e, path);
                return;
            }
        };
        let _ = c.variable_names();
        for i in 0..c.entries().len() {
            let raw = match c.open(i, true) {
                Ok(r) => r,
                Err(e) => {
                    check_error(&e, path);
                    continue;
                }
            };
            let mut buf = vec![0u8; 4093];
            match raw {
                RawTensor::Fixed(mut s) => {
                    let mut total = 0u64;
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) => {
                                // A stream that ends cleanly delivered the whole tensor.
                                let e = &c.entries()[i];
                                let want = e.dtype.storage_bytes().map(|b| b * e.num_elements());
                                assert_eq!(Some(total), want, "{}", e.name);
                                break;
                            }
                            Ok(n) => total += n as u64,
                            Err(e) => {
                                check_error(&e, path);
                                break;
                            }
                        }
                    }
                }
                RawTensor::Strings(mut s) => {
                    let mut e = Vec::new();
                    while let Ok(true) = s.next_into(&mut e) {}
                }
            }
        }
    });
    run.err().map(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn check_error(e: &Error, path: &Path) {
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            Error::Corrupt { .. } | Error::Unsupported { .. } | Error::Io { .. }
        ),
        "{msg}"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

fn damage_all(name: &str, step: usize) -> usize {
    let bytes = std::fs::read(fixture(name)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut try_bytes = |b: &[u8], what: String| {
        std::fs::write(&path, b).unwrap();
        cases += 1;
        if let Some(p) = exercise(&path) {
            failures.push(format!("{what}: {p}"));
        }
    };
    for len in (0..bytes.len()).step_by(step.max(1) * 3) {
        try_bytes(&bytes[..len], format!("truncated to {len}"));
    }
    for pos in (0..bytes.len()).step_by(step) {
        for v in [0x00u8, 0xff, bytes[pos] ^ 0x80, bytes[pos].wrapping_add(1)] {
            if v == bytes[pos] {
                continue;
            }
            let mut b = bytes.clone();
            b[pos] = v;
            try_bytes(&b, format!("byte {pos} = {v:#04x}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {cases} damaged copies panicked:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    cases
}

#[test]
fn damaged_h5py_files_fail_cleanly() {
    assert!(damage_all("h5py_types.h5", 13) > 1000);
    assert!(damage_all("h5py_latest.h5", 7) > 500);
}

#[test]
fn damaged_keras_files_fail_cleanly() {
    assert!(damage_all("textnet.weights.h5", 29) > 1000);
    assert!(damage_all("legacy_weights.h5", 29) > 1000);
    assert!(damage_all("textnet_deflated.keras", 7) > 500);
}
