//! What tripped a new user (issue 11): closed pipes, files tf2npy does not read, missing
//! paths, listings that ignored the selection or hid which checkpoint they read, a Keras
//! 3 export's doubled variables under `--var-names`, and folder output that `ls` shows
//! as empty.

use crate::common::*;
use serde_json::Value;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Runs tf2npy with stdout on a pipe whose reading end is already closed, so every write
/// fails with EPIPE (the deterministic form of `tf2npy ... | true`).
fn into_closed_pipe(args: &[OsString]) -> std::process::Output {
    // The writing end of a pipe whose only reader (`true`) has exited.
    let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let writer = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    Command::new(env!("CARGO_BIN_EXE_tf2npy"))
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[test]
fn every_output_exits_0_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = fixtures().join("v2/training_dir");
    let ckpt = ckpt.to_str().unwrap();
    let tp = fixtures().join("tensorproto/float32_2x3.pb");
    let tp = tp.to_str().unwrap();
    let npz = dir.path().join("w.npz");
    let npz = npz.to_str().unwrap();
    let mut runs: Vec<Vec<&str>> = ["bash", "zsh", "fish", "elvish", "powershell"]
        .iter()
        .map(|s| vec!["completions", s])
        .collect();
    runs.extend([
        vec!["man"],
        vec!["--help"],
        vec!["--version"],
        vec![ckpt],
        vec![ckpt, "--list", "--json"],
        vec![tp, "-o", "-"],
        vec![ckpt, "-o", npz, "--dry-run"],
        vec![ckpt, "--verify"],
    ]);
    for args in runs {
        let run = into_closed_pipe(&os(&args));
        let err = stderr_of(&run);
        assert_eq!(run.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // --check's exit status survives a closed pipe too (1: w.npz does not exist).
    let run = into_closed_pipe(&os(&[ckpt, "-o", npz, "--check"]));
    assert_eq!(run.status.code(), Some(1), "{}", stderr_of(&run));
}

/// Each file of fixtures/foreign (written by numpy, TF, Keras, h5py, safetensors, onnx,
/// or laid out as torch.save and tfjs-converter write them) and the verdict's start.
const FOREIGN: [(&str, &str); 11] = [
    ("model.tflite", "a TensorFlow Lite model"),
    ("model.json", "a TensorFlow.js model"),
    ("group1-shard1of1.bin", "a TensorFlow.js weight file"),
    ("model.onnx", "an ONNX model"),
    ("model.pt", "a PyTorch file (torch.save zip archive)"),
    ("legacy.pth", "a PyTorch file (legacy torch.save pickle)"),
    ("weights.pkl", "a Python pickle"),
    ("weights.npy", "already a NumPy .npy array"),
    ("weights.npz", "already a NumPy .npz archive"),
    ("model.safetensors", "a safetensors file"),
    // The same bytes under a name that says nothing: content decides.
    ("renamed.bin", "a TensorFlow Lite model"),
];

/// Files of fixtures/foreign that tf2npy reads since the HDF5/Keras (issue 13) and
/// TFRecord (issue 12) readers.
const READ_NOW: [&str; 4] = [
    "model.h5",
    "model.weights.h5",
    "model.keras",
    "data.tfrecord",
];

#[test]
fn foreign_files_that_are_read_now_convert() {
    let dir = tempfile::tempdir().unwrap();
    for file in READ_NOW {
        let out = dir.path().join(format!("{file}.npz"));
        ok([
            fixtures().join("foreign").join(file).as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        assert!(!read_npz(&out).is_empty(), "{file}");
    }
}

#[test]
fn foreign_files_are_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("foreign/model.tflite"),
        dir.path().join("renamed.bin"),
    )
    .unwrap();
    for (file, kind) in FOREIGN {
        let path = match file {
            "renamed.bin" => dir.path().join(file),
            _ => fixtures().join("foreign").join(file),
        };
        let out = dir.path().join("out.npz");
        let run = tf2npy([path.as_os_str(), "-o".as_ref(), out.as_os_str()]);
        let err = stderr_of(&run);
        assert_eq!(run.status.code(), Some(1), "{file}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{file}: {err}");
        let want = format!("tf2npy: error: {}: {kind}", path.display());
        assert!(lines[0].starts_with(&want), "{file}: {err}");
        // What to do follows the kind on the same line.
        assert!(lines[0].len() > want.len() + 20, "{file}: {err}");
        // The protobuf detail stays available, behind the verdict.
        assert!(
            lines[1].starts_with("  (as a protobuf: not a TensorProto, GraphDef or SavedModel"),
            "{file}: {err}"
        );
        assert!(!out.exists(), "{file}");
        // Listing gives the same verdict.
        let run = tf2npy([path.as_os_str()]);
        assert!(stderr_of(&run).starts_with(&want), "{file}");
    }
}

#[test]
fn a_missing_path_says_so() {
    for p in ["/nonexistent/foo", "/nonexistent/model.ckpt"] {
        let run = tf2npy([p, "--list"]);
        assert_eq!(run.status.code(), Some(1));
        assert_eq!(
            stderr_of(&run),
            format!("tf2npy: error: {p}: no such file or folder\n")
        );
    }
    // Next to checkpoints, the message still suggests them.
    let p = fixtures().join("v2/training_dir/ckpt-9");
    let err = stderr_of(&tf2npy([p.as_os_str()]));
    assert!(
        err.contains("ckpt-9: no such file or folder; did you mean: ")
            && err.contains("training_dir/ckpt-4"),
        "{err}"
    );
}

#[test]
fn a_stale_state_file_does_not_suggest_its_own_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("checkpoint"), "model_checkpoint_path: \"ckpt-9\"\n").unwrap();
    let err = stderr_of(&tf2npy([d.as_os_str()]));
    assert!(
        err.contains("names this checkpoint, but it does not exist"),
        "{err}"
    );
    assert!(!err.contains("did you mean"), "{err}");
    // With a checkpoint beside it, that one is suggested, not the folder.
    let src = fixtures().join("v2/training_dir");
    for f in ["ckpt-2.index", "ckpt-2.data-00000-of-00001"] {
        std::fs::copy(src.join(f), d.join(f)).unwrap();
    }
    let err = stderr_of(&tf2npy([d.as_os_str()]));
    let hint = err.split("did you mean: ").nth(1).unwrap_or_default();
    assert_eq!(
        hint.trim_end(),
        d.join("ckpt-2").display().to_string(),
        "{err}"
    );
}

fn listed_names(args: &[&std::ffi::OsStr]) -> Vec<String> {
    let mut all: Vec<&std::ffi::OsStr> = args.to_vec();
    all.extend(["--list".as_ref(), "--json".as_ref()] as [&std::ffi::OsStr; 2]);
    let v: Value = serde_json::from_slice(&ok(&all).stdout).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn listing_shows_only_the_selected_tensors() {
    let ck = fixtures().join("v2/training_dir");
    let ck = ck.as_os_str();
    let w = "model/w/.ATTRIBUTES/VARIABLE_VALUE";
    assert_eq!(listed_names(&[ck]).len(), 4);
    assert_eq!(listed_names(&[ck, "--tensor".as_ref(), w.as_ref()]), [w]);
    assert_eq!(
        listed_names(&[
            ck,
            "--short-names".as_ref(),
            "--tensor".as_ref(),
            "model/w".as_ref()
        ]),
        [w]
    );
    assert_eq!(
        listed_names(&[ck, "--select".as_ref(), "model/*".as_ref()]),
        ["model/step/.ATTRIBUTES/VARIABLE_VALUE", w]
    );
    assert_eq!(
        listed_names(&[
            ck,
            "--select".as_ref(),
            "model/*".as_ref(),
            "--exclude".as_ref(),
            "*step*".as_ref()
        ]),
        [w]
    );
    // A sparse tensor's name lists its parts.
    let sp = fixtures().join("v2/sparse_siblings/ckpt");
    assert_eq!(
        listed_names(&[sp.as_os_str(), "--tensor".as_ref(), "sp".as_ref()]).len(),
        3
    );
    // The table says how many of how many.
    let text = String::from_utf8(ok([ck, "--tensor".as_ref(), w.as_ref()]).stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains(": 1 tensors (of 4), 6 elements, 24 bytes"),
        "{text}"
    );
    // An unknown --tensor is a usage error with the did-you-mean list, as when converting.
    for list in [&["--list"][..], &[][..], &["--list", "--json"][..]] {
        let mut args: Vec<&std::ffi::OsStr> = vec![ck, "--tensor".as_ref(), "nope".as_ref()];
        args.extend(list.iter().map(|s| std::ffi::OsStr::new(*s)));
        let run = tf2npy(&args);
        let err = stderr_of(&run);
        assert_eq!(run.status.code(), Some(2), "{err}");
        assert!(err.contains("no tensor named `nope`"), "{err}");
        assert!(err.contains("did you mean: ") && err.contains(w), "{err}");
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn listing_names_the_checkpoint_it_read() {
    let dir = fixtures().join("v2/training_dir");
    let latest = dir.join("ckpt-4");
    let text = String::from_utf8(ok([dir.as_os_str()]).stdout).unwrap();
    let summary = text.lines().last().unwrap();
    assert_eq!(
        summary,
        format!(
            "TensorFlow V2 checkpoint {}: 4 tensors, 9 elements, 326 bytes",
            latest.display()
        )
    );
    let v: Value =
        serde_json::from_slice(&ok([dir.as_os_str(), "--json".as_ref()]).stdout).unwrap();
    assert_eq!(v["input"], dir.to_str().unwrap());
    assert_eq!(v["kind"], "TensorFlow V2 checkpoint");
    assert_eq!(v["checkpoint"], latest.to_str().unwrap());
    assert_eq!(v["entries"].as_array().unwrap().len(), 4);
    // A V1 checkpoint names its files; a file that is what it is has none.
    let v1 = fixtures().join("v1/sharded");
    let v: Value = serde_json::from_slice(&ok([v1.as_os_str(), "--json".as_ref()]).stdout).unwrap();
    assert_eq!(
        v["checkpoint"],
        format!(
            "{0}/model.ckpt-00000-of-00002, {0}/model.ckpt-00001-of-00002",
            v1.display()
        )
    );
    let tp = fixtures().join("tensorproto/float32_2x3.pb");
    let v: Value = serde_json::from_slice(&ok([tp.as_os_str(), "--json".as_ref()]).stdout).unwrap();
    assert_eq!(v["checkpoint"], Value::Null);
    assert_eq!(v["kind"], "TensorProto");
}

fn export() -> PathBuf {
    fixtures().join("keras_export/model")
}

/// A Keras 3 `model.export()` stores each variable under `_all_variables/N` and
/// `variables/N`; `--var-names` writes each once, equal to TensorFlow's own reading
/// (fixtures/keras_export/expected.npz, by full_name), and says so once.
#[test]
fn var_names_write_a_doubly_stored_variable_once() {
    let keys: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("keras_export/keys.json")).unwrap(),
    )
    .unwrap();
    assert!(keys
        .as_object()
        .unwrap()
        .values()
        .all(|k| k.as_array().unwrap().len() == 2));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.npz");
    let run = ok([
        export().as_os_str(),
        "--var-names".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let err = stderr_of(&run);
    assert_eq!(err.matches("stored twice").count(), 1, "{err}");
    assert!(err.contains("4 variables are stored twice"), "{err}");
    let got = read_npz(&out);
    let want = read_npz(&fixtures().join("keras_export/expected.npz"));
    assert_eq!(got.len(), 4);
    assert_eq!(
        got.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        want.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        assert_eq!(
            (&g.descr, &g.shape, &g.data),
            (&w.descr, &w.shape, &w.data),
            "{name}"
        );
    }
    // One of them by name.
    let one = dir.path().join("k.npy");
    ok([
        export().as_os_str(),
        "--var-names".as_ref(),
        "--tensor".as_ref(),
        "sequential/dense/kernel".as_ref(),
        "-o".as_ref(),
        one.as_os_str(),
    ]);
    let (_, w) = want
        .iter()
        .find(|(n, _)| n == "sequential/dense/kernel")
        .unwrap();
    assert_eq!(read_npy(&one).data, w.data);
}

/// Two keys under one variable name with different data remain a clash: the export with
/// one byte of one copy changed. (The comparison does not check checksums; only the
/// bytes matter.)
#[test]
fn var_names_still_refuse_a_real_clash() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    copy_tree(&export(), &model);
    let listed: Value = serde_json::from_slice(
        &ok([model.as_os_str(), "--json".as_ref(), "--all".as_ref()]).stdout,
    )
    .unwrap();
    let key = "variables/0/.ATTRIBUTES/VARIABLE_VALUE";
    let e = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == key)
        .unwrap()
        .clone();
    let at: usize = e["location"]
        .as_str()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let data_path = model.join("variables/variables.data-00000-of-00001");
    let mut data = std::fs::read(&data_path).unwrap();
    data[at] ^= 0x01;
    std::fs::write(&data_path, data).unwrap();
    let out = dir.path().join("w.npz");
    let run = tf2npy([
        model.as_os_str(),
        "--var-names".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`_all_variables/0/.ATTRIBUTES/VARIABLE_VALUE` and `variables/0/.ATTRIBUTES/VARIABLE_VALUE` would both be written as `sequential/dense/kernel`"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn folder_output_says_where_hidden_files_went() {
    let dir = tempfile::tempdir().unwrap();
    let ck = fixtures().join("v2/training_dir");
    let out = dir.path().join("out");
    let out_arg = format!("{}/", out.display());
    let run = ok([ck.as_os_str(), "-o".as_ref(), out_arg.as_ref()]);
    let err = stderr_of(&run);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    let note = lines[0];
    assert!(
        note.starts_with("tf2npy: note: 3 of 3 files went into `.ATTRIBUTES` folders"),
        "{note}"
    );
    // Every path it names is real.
    let example = out.join("model/step/.ATTRIBUTES/VARIABLE_VALUE.npy");
    assert!(note.contains(&example.display().to_string()), "{note}");
    assert!(example.is_file());
    assert!(note.contains("--short-names writes"), "{note}");
    assert!(
        note.contains(&out.join("model/step.npy").display().to_string()),
        "{note}"
    );
    // What it suggests gives plain names, and no note.
    let short = dir.path().join("short");
    let run = ok([
        ck.as_os_str(),
        "--short-names".as_ref(),
        "-o".as_ref(),
        format!("{}/", short.display()).as_ref(),
    ]);
    assert_eq!(stderr_of(&run), "");
    assert!(short.join("model/step.npy").is_file());
    // -q silences it; a .npz has no folders.
    let run = ok([
        ck.as_os_str(),
        "-q".as_ref(),
        "-o".as_ref(),
        out_arg.as_ref(),
    ]);
    assert_eq!(stderr_of(&run), "");
}

/// A folder without a checkpoint that holds a file tf2npy can name (a TF.js model
/// folder) says what that file is, preferring a verdict by content over one by name.
#[test]
fn a_folder_of_foreign_files_names_one() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.json", "group1-shard1of1.bin"] {
        std::fs::copy(fixtures().join("foreign").join(f), dir.path().join(f)).unwrap();
    }
    let run = tf2npy([dir.path().as_os_str()]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no checkpoint here")
            && err.contains("; model.json here is a TensorFlow.js model"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
