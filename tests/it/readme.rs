//! The README's examples run as written. Each code block after a
//! `<!-- readme-test: LABEL ... -->` line is run in a fresh folder that holds fixtures
//! under the names the examples use (`model.ckpt`, `train_dir/`, ...): `examples` and
//! `ci` blocks line by line with `sh` (tf2npy on PATH), `make` blocks as a Makefile.
//! Unmarked blocks (the set-up lines, the `tf2npy INPUT [-o OUT]` synopsis) are not run;
//! the set-up lines are checked against `.ci/run` instead.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The marked blocks: (label, lines of the block).
fn marked_blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim().strip_prefix("<!-- readme-test:") else {
            continue;
        };
        let label = rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        while lines.peek().is_some_and(|l| l.trim().is_empty()) {
            lines.next();
        }
        let mut block = Vec::new();
        if lines.peek().is_some_and(|l| l.starts_with("```")) {
            lines.next();
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                block.push(l.to_string());
            }
        } else {
            while let Some(l) = lines.peek() {
                let Some(code) = l.strip_prefix("    ") else {
                    break;
                };
                block.push(code.to_string());
                lines.next();
            }
        }
        assert!(!block.is_empty(), "README: no code block after `{line}`");
        out.push((label, block));
    }
    out
}

/// Copies the V2 checkpoint `prefix` (a fixture) to `to` (a prefix in the fresh folder).
fn copy_prefix(prefix: &str, to: &Path) {
    let src = fixtures().join(prefix);
    let stem = src.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    for e in std::fs::read_dir(src.parent().unwrap()).unwrap().flatten() {
        let name = e.file_name().to_str().unwrap().to_string();
        if let Some(rest) = name.strip_prefix(&format!("{stem}.")) {
            let to_name = format!("{}.{rest}", to.file_name().unwrap().to_str().unwrap());
            std::fs::copy(e.path(), to.with_file_name(to_name)).unwrap();
        }
    }
}

/// A fresh folder with every input the README's examples name.
fn fresh_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_prefix("v2/keras_adam/ckpt", &d.join("model.ckpt"));
    copy_prefix("v2/keras_adam/ckpt", &d.join("download/model.ckpt"));
    copy_tree(&fixtures().join("v2/training_dir"), &d.join("train_dir"));
    copy_tree(&fixtures().join("v2/training_dir"), &d.join("model"));
    copy_tree(
        &fixtures().join("savedmodel/module"),
        &d.join("saved_model"),
    );
    std::fs::copy(fixtures().join("graphdef/frozen.pb"), d.join("frozen.pb")).unwrap();
    std::fs::copy(
        fixtures().join("keras/convnet.keras"),
        d.join("model.keras"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("tensorproto/float32_2x3.pb"),
        d.join("tensor.pb"),
    )
    .unwrap();
    dir
}

/// PATH with the tf2npy under test first.
fn path_env() -> std::ffi::OsString {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tf2npy"));
    let mut dirs = vec![bin.parent().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// Drops a trailing ` # comment` (the examples quote no `#`).
fn command_of(line: &str) -> &str {
    line.split(" #").next().unwrap().trim()
}

/// Runs one example line in `dir` and checks it did what it says: exit 0, and the
/// `-o` output exists.
fn run_line(dir: &Path, line: &str) {
    let cmd = command_of(line);
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"tf2npy"), "README example `{line}`");
    let input = words[1];
    assert!(
        dir.join(input).exists() || dir.join(format!("{input}.index")).exists(),
        "README example `{line}` names `{input}`, which tests/it/readme.rs does not set up"
    );
    let run = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .env("PATH", path_env())
        .output()
        .unwrap();
    let err = stderr_of(&run);
    assert!(run.status.success(), "README example `{cmd}` failed: {err}");
    assert!(!err.contains("error"), "README example `{cmd}`: {err}");
    if let Some(at) = words.iter().position(|w| *w == "-o") {
        let out = words[at + 1];
        if out != "-" {
            assert!(
                dir.join(out).exists(),
                "README example `{cmd}` wrote no {out}"
            );
        }
    } else if !words.contains(&"--check") && !words.contains(&"--verify") {
        // A listing.
        assert!(
            !run.stdout.is_empty(),
            "README example `{cmd}` listed nothing"
        );
    }
}

#[test]
fn readme_examples_run_as_written() {
    let text = readme();
    let blocks = marked_blocks(&text);
    let labels: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["examples", "make", "ci"], "README's marked blocks");
    let mut ran = 0;
    for (label, lines) in &blocks {
        let dir = fresh_folder();
        let d = dir.path();
        match label.as_str() {
            "examples" | "ci" => {
                if label == "ci" {
                    // The committed fixtures that `--check` compares with.
                    std::fs::create_dir_all(d.join("tests/data")).unwrap();
                    ok([
                        d.join("model").as_os_str(),
                        "-o".as_ref(),
                        d.join("tests/data/weights.npz").as_os_str(),
                    ]);
                }
                for line in lines.iter().filter(|l| l.starts_with("tf2npy ")) {
                    run_line(d, line);
                    ran += 1;
                }
            }
            "make" => {
                run_make(d, lines);
                ran += 1;
            }
            other => panic!("README: unknown readme-test label `{other}`"),
        }
    }
    assert!(ran >= 10, "only {ran} README examples ran");
}

/// The examples of `tf2npy --help` ("Examples:" and "Make and CI:") run as written, in
/// order, in a fresh folder: `model.ckpt` is a TF1 checkpoint with the keys they name
/// (fixtures/help), `keras_ckpt` a Keras 3 one.
#[test]
fn help_examples_run_as_written() {
    let help = String::from_utf8(ok(["--help"]).stdout).unwrap();
    let dir = fresh_folder();
    let d = dir.path();
    for f in ["model.ckpt.index", "model.ckpt.data-00000-of-00001"] {
        std::fs::copy(fixtures().join("help").join(f), d.join(f)).unwrap();
    }
    copy_prefix("v2/keras_adam/ckpt", &d.join("keras_ckpt"));
    let mut ran = 0;
    let mut section = "";
    for line in help.lines() {
        if !line.starts_with(' ') {
            section = line;
            continue;
        }
        if !matches!(section, "Examples:" | "Make and CI:") {
            continue;
        }
        let Some(example) = line.trim_start().strip_prefix("tf2npy ") else {
            continue;
        };
        // The description follows the command after a run of spaces.
        let cmd = format!("tf2npy {}", example.split("  ").next().unwrap());
        run_line(d, &cmd);
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} --help examples ran:\n{help}");
}

/// The Makefile example: `make` writes weights.npz and weights.json; after the
/// checkpoint's state file is touched, `make` runs tf2npy again, which leaves the
/// identical weights.npz untouched (its mtime too), as the README says.
fn run_make(dir: &Path, lines: &[String]) {
    std::fs::write(dir.join("Makefile"), lines.join("\n") + "\n").unwrap();
    let make = || {
        let run = Command::new("make")
            .current_dir(dir)
            .env("PATH", path_env())
            .output()
            .expect("make (the README's Makefile example needs it)");
        assert!(run.status.success(), "make: {}", stderr_of(&run));
        String::from_utf8_lossy(&run.stdout).into_owned()
    };
    assert!(make().contains("tf2npy model/"));
    let npz = dir.join("weights.npz");
    assert!(npz.is_file() && dir.join("weights.json").is_file());
    let before = std::fs::metadata(&npz).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let state = std::fs::File::options()
        .append(true)
        .open(dir.join("model/checkpoint"))
        .unwrap();
    state.set_modified(std::time::SystemTime::now()).unwrap();
    drop(state);
    assert!(make().contains("tf2npy model/"), "make did not rerun");
    assert_eq!(std::fs::metadata(&npz).unwrap().modified().unwrap(), before);
}

/// The README starts with exactly two set-up commands: the first builds and runs the tool
/// wherever cargo puts its output (no `./target/...` path, which `CARGO_TARGET_DIR`
/// moves), the second is the test command `.ci/run` runs verbatim.
#[test]
fn readme_set_up_lines_match_ci() {
    let text = readme();
    let setup: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("    "))
        .take_while(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert_eq!(setup.len(), 2, "{setup:?}");
    assert_eq!(setup[0], "cargo run --release --locked -- --help");
    assert!(!setup[0].contains("target/"), "{}", setup[0]);
    let ci =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l == setup[1]),
        ".ci/run lacks `{}`",
        setup[1]
    );
}

/// The README's first line, run as a user with `CARGO_TARGET_DIR` set would: from a copy
/// of the sources with no `target/` beside them. A release build, so `#[ignore]`d (CI
/// runs it with the other slow tests), into its own folder under target/tmp.
#[test]
#[ignore]
fn readme_first_line_works_with_cargo_target_dir() {
    let text = readme();
    let first = text
        .lines()
        .find(|l| l.starts_with("    "))
        .unwrap()
        .trim()
        .to_string();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = tempfile::tempdir().unwrap();
    for f in ["Cargo.toml", "Cargo.lock", "build.rs", "README.md"] {
        std::fs::copy(root.join(f), src.path().join(f)).unwrap();
    }
    for d in ["src", "proto", "tests", "examples", "fixtures"] {
        if root.join(d).is_dir() {
            copy_tree(&root.join(d), &src.path().join(d));
        }
    }
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-first-line");
    let run = Command::new("sh")
        .arg("-c")
        .arg(&first)
        .current_dir(src.path())
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "`{first}` with CARGO_TARGET_DIR: {}",
        stderr_of(&run)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("Usage: tf2npy"));
    assert!(!src.path().join("target").exists());
}
