//! The binary's error chains (`anyhow` in `main.rs`): one line `tf2npy: error: DOING:
//! CAUSE` where the cause does not name the input or output itself (`tf2npy: error:
//! FILE: CAUSE` where it does), with the exit status the library error decides (1 bad
//! input, 2 usage) and a closed stdout pipe still a success.

use crate::bundle_writer::{write_bundle, Tensor};
use crate::common::*;
use std::io::Read;
use std::process::{Command, Stdio};

fn error_line(out: &std::process::Output) -> String {
    let err = stderr_of(out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0]
        .strip_prefix("tf2npy: error: ")
        .unwrap_or_else(|| panic!("no error prefix: {err}"))
        .to_string()
}

#[test]
fn errors_say_what_the_run_was_doing_and_keep_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = fixtures().join("v2/keras_adam/ckpt");
    let out = dir.path().join("w.npy");
    // Usage: exit 2. The cause (several tensors for one .npy) names neither the input
    // nor the output, so the chain says what the run was doing first.
    let run = tf2npy([ckpt.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(run.status.code(), Some(2));
    let msg = error_line(&run);
    let head = format!("converting {} to {}: ", ckpt.display(), out.display());
    assert!(msg.starts_with(&head), "{msg}");
    assert!(msg.contains("a .npy holds one tensor"), "{msg}");
    // A cause that names the input comes alone: no path twice.
    let run = tf2npy([
        ckpt.as_os_str(),
        "--tensor".as_ref(),
        "nope".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    let msg = error_line(&run);
    assert!(msg.starts_with("no tensor named `nope`"), "{msg}");
    // Bad input: exit 1. The cause names the input, so it comes first, once.
    let missing = dir.path().join("missing.ckpt");
    let run = tf2npy([missing.as_os_str()]);
    assert_eq!(run.status.code(), Some(1));
    let msg = error_line(&run);
    assert_eq!(
        msg,
        format!("{}: no such file or folder", missing.display()),
        "{msg}"
    );
    let run = tf2npy([missing.as_os_str(), "--verify".as_ref()]);
    assert_eq!(run.status.code(), Some(1));
    assert!(error_line(&run).starts_with(&missing.display().to_string()));
}

#[test]
fn closed_stdout_pipe_is_success() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("big");
    // 16 MiB: far more than a pipe buffer, so the writer meets the closed pipe.
    write_bundle(
        &prefix,
        &[Tensor::new("w", 1, &[4 << 20], vec![7u8; 16 << 20])],
        false,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tf2npy"))
        .args([prefix.as_os_str(), "-o".as_ref(), "-".as_ref()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The read end is dropped here: the rest of the write fails with EPIPE.
    let out = child.wait_with_output().unwrap();
    assert_eq!(&head[..6], b"\x93NUMPY");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), "");
}
