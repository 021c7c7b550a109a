//! Outputs never clobber, escape or half-publish (issue 15, items 4-11 and 14): inputs
//! are crafted in each test with `bundle_writer` or a hand-made `TensorProto`.

use crate::bundle_writer::{write_bundle, Tensor};
use crate::common::*;
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tf2npy::formats::proto::TensorProto;

const DT_FLOAT: i32 = 1;
const DT_VARIANT: i32 = 21;

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A one-shard bundle at `dir/ckpt` holding a `[2]` float32 tensor per name.
fn bundle(dir: &Path, names: &[&str]) -> PathBuf {
    let prefix = dir.join("ckpt");
    let mut tensors: Vec<Tensor> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Tensor::new(n, DT_FLOAT, &[2], f32s(&[i as f32, 0.5])))
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    write_bundle(&prefix, &tensors, false);
    prefix
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file below `dir` (relative paths, sorted), folders included.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Runs tf2npy through `sh -c SCRIPT` (`$TF2NPY` is the binary), in `cwd`.
fn sh(script: &str, cwd: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("TF2NPY", env!("CARGO_BIN_EXE_tf2npy"))
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Item 4: a failure after some files were staged publishes none of them.
#[test]
fn folder_output_is_atomic_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = bundle(dir.path(), &["a", "b"]);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("a.npy"), b"previous a").unwrap();
    // `b.npy` cannot be replaced: it is a folder with something in it.
    std::fs::create_dir(out.join("b.npy")).unwrap();
    std::fs::write(out.join("b.npy/keep"), b"k").unwrap();
    let run = tf2npy([prefix.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(stderr(&run).contains("b.npy"), "{}", stderr(&run));
    assert_eq!(std::fs::read(out.join("a.npy")).unwrap(), b"previous a");
    assert_eq!(tree(&out), ["a.npy", "b.npy", "b.npy/keep"]);

    // A manifest that cannot be written (its folder is a file) fails before anything
    // is published.
    std::fs::remove_dir_all(out.join("b.npy")).unwrap();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let bad_manifest = dir.path().join("file/m.json");
    let run = tf2npy([
        prefix.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--manifest".as_ref(),
        bad_manifest.as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert_eq!(std::fs::read(out.join("a.npy")).unwrap(), b"previous a");
    assert_eq!(tree(&out), ["a.npy"]);
}

/// Item 5: no written path may be an input or another written path.
#[test]
fn outputs_never_overwrite_inputs_or_each_other() {
    let dir = tempfile::tempdir().unwrap();
    // A TensorProto called t.npy in tp/: its tensor is `t`, written as tp/t.npy.
    let tp = dir.path().join("tp");
    std::fs::create_dir(&tp).unwrap();
    let proto = TensorProto {
        dtype: DT_FLOAT,
        tensor_shape: Some(crate::bundle_writer::shape_proto(&[2])),
        float_val: vec![1.0, 2.0],
        ..Default::default()
    }
    .encode_to_vec();
    let input = tp.join("t.npy");
    std::fs::write(&input, &proto).unwrap();
    for out in [tp.clone(), PathBuf::from(format!("{}/", tp.display()))] {
        let run = tf2npy([input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
        assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
        assert!(stderr(&run).contains("input"), "{}", stderr(&run));
        assert_eq!(std::fs::read(&input).unwrap(), proto);
    }
    // The manifest may not be the checkpoint's index, the output, or a hard link to
    // an input.
    let prefix = bundle(dir.path(), &["a", "b"]);
    let index = dir.path().join("ckpt.index");
    let index_bytes = std::fs::read(&index).unwrap();
    let npz = dir.path().join("out.npz");
    let link = dir.path().join("link.json");
    std::fs::hard_link(&index, &link).unwrap();
    for (manifest, out) in [(&index, &npz), (&npz, &npz), (&link, &npz)] {
        let run = tf2npy([
            prefix.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ]);
        assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
        assert!(!npz.exists());
        assert_eq!(std::fs::read(&index).unwrap(), index_bytes);
    }
    // An output that is a symbolic link to an input is replaced, not followed.
    let linked = dir.path().join("linked.npz");
    std::os::unix::fs::symlink(&index, &linked).unwrap();
    ok([prefix.as_os_str(), "-o".as_ref(), linked.as_os_str()]);
    assert!(!std::fs::symlink_metadata(&linked)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&index).unwrap(), index_bytes);
    // A manifest inside the output folder, named like one of its files.
    let folder = PathBuf::from(format!("{}/", dir.path().join("f").display()));
    let run = tf2npy([
        prefix.as_os_str(),
        "-o".as_ref(),
        folder.as_os_str(),
        "--manifest".as_ref(),
        folder.join("a.npy").as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("same file"), "{}", stderr(&run));
    assert!(!folder.exists());
    // Beside the files it is fine.
    ok([
        prefix.as_os_str(),
        "-o".as_ref(),
        folder.as_os_str(),
        "--manifest".as_ref(),
        folder.join("manifest.json").as_os_str(),
    ]);
    assert_eq!(tree(&folder), ["a.npy", "b.npy", "manifest.json"]);
}

/// Item 6: member names that would escape when unzipped are refused, after renaming.
#[test]
fn npz_member_names_cannot_escape() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("out.npz");
    for name in ["../../x", "/tmp/x", "a/../../b", "..\\..\\x", "a\0b"] {
        let case = tempfile::tempdir().unwrap();
        let prefix = bundle(case.path(), &[name, "ok"]);
        for out in [npz.clone(), dir.path().join("folder/")] {
            let run = tf2npy([prefix.as_os_str(), "-o".as_ref(), out.as_os_str()]);
            let err = stderr(&run);
            assert_eq!(run.status.code(), Some(2), "{name:?}: {err}");
            assert!(
                err.contains("--exclude") && err.contains("--select"),
                "{name:?}: {err}"
            );
            assert!(
                err.contains(&tf2npy::text::escape(name).into_owned()),
                "{err}"
            );
        }
        assert_eq!(tree(dir.path()), Vec::<String>::new(), "{name:?}");
    }
    // --short-names turns harmless keys into `../x` and `/tmp/x`.
    let prefix = bundle(
        dir.path(),
        &[
            ".....Sx/.ATTRIBUTES/VARIABLE_VALUE",
            ".Stmp.Sy/.ATTRIBUTES/VARIABLE_VALUE",
        ],
    );
    ok([prefix.as_os_str(), "-o".as_ref(), npz.as_os_str()]);
    std::fs::remove_file(&npz).unwrap();
    for key in [".....Sx", ".Stmp.Sy"] {
        let run = tf2npy([
            prefix.as_os_str(),
            "--short-names".as_ref(),
            "--select".as_ref(),
            format!("{key}*").as_ref(),
            "-o".as_ref(),
            npz.as_os_str(),
        ]);
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(2), "{err}");
        assert!(err.contains(key) && err.contains("--exclude"), "{err}");
        assert!(!npz.exists());
    }
    // The manifest records only names that obey the rules, whatever the output.
    let case = tempfile::tempdir().unwrap();
    let prefix = bundle(case.path(), &["../m"]);
    let run = tf2npy([
        prefix.as_os_str(),
        "-o".as_ref(),
        dir.path().join("one.npy").as_os_str(),
        "--manifest".as_ref(),
        dir.path().join("m.json").as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
}

/// Item 7: SIGINT, SIGTERM and SIGHUP remove the temporary files and exit 128 + signal.
#[test]
fn signals_remove_temporary_files() {
    const BIG: u64 = 300 << 20;
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("big");
    write_bundle(
        &prefix,
        &[Tensor::zeros(
            "big",
            4,
            vec![BIG as i64],
            BIG,
            vec![(0, vec![1, 2, 3]), (BIG - 1, vec![9])],
        )],
        false,
    );
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("w.npy");
    std::fs::write(&out, b"previous").unwrap();
    for (sig, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tf2npy"))
            .args([
                prefix.as_os_str(),
                "-q".as_ref(),
                "-o".as_ref(),
                out.as_os_str(),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut started = false;
        while std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            let temp = std::fs::read_dir(out_dir.path())
                .unwrap()
                .flatten()
                .filter(|e| e.file_name() != "w.npy")
                .filter_map(|e| e.metadata().ok())
                .any(|m| m.len() > 1 << 20);
            if temp {
                started = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(started, "SIG{sig}: the conversion never started writing");
        crate::common::signal_and_expect(&mut child, sig, code);
        assert_eq!(
            tree(out_dir.path()),
            ["w.npy"],
            "SIG{sig}: temporary file left"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"previous");
    }
}

/// Item 8: new files respect the umask; a replaced file keeps its mode.
#[test]
fn output_modes_follow_the_umask_and_the_replaced_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), &["a"]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for (umask, want) in [("077", 0o600), ("002", 0o664), ("022", 0o644)] {
        for out in ["x.npz", "x.npy", "f/", "-"] {
            let target = if out == "-" { "m.json" } else { out };
            let _ = std::fs::remove_dir_all(dir.path().join("f"));
            let _ = std::fs::remove_file(dir.path().join(target));
            let _ = std::fs::remove_file(dir.path().join("m.json"));
            let run = sh(
                &format!(
                    "umask {umask}; exec \"$TF2NPY\" ckpt -o {out} --manifest m.json >/dev/null"
                ),
                dir.path(),
            );
            assert!(run.status.success(), "{}", stderr(&run));
            let file = match out {
                "f/" => dir.path().join("f/a.npy"),
                "-" => dir.path().join("m.json"),
                _ => dir.path().join(out),
            };
            assert_eq!(mode(&file), want, "umask {umask}, -o {out}");
            assert_eq!(mode(&dir.path().join("m.json")), want);
        }
    }
    // Replacing a 0600 file (with new content) keeps 0600 under umask 022.
    let x = dir.path().join("x.npz");
    std::fs::write(&x, b"old").unwrap();
    std::fs::set_permissions(&x, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = sh("umask 022; exec \"$TF2NPY\" ckpt -o x.npz", dir.path());
    assert!(run.status.success(), "{}", stderr(&run));
    assert_ne!(std::fs::read(&x).unwrap(), b"old");
    assert_eq!(mode(&x), 0o600);
}

/// Item 9: a symbolic link below the output folder is not followed.
#[test]
fn symlinked_folders_below_the_output_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = bundle(dir.path(), &["sdir/x", "y"]);
    let out = dir.path().join("out");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink("../elsewhere", out.join("sdir")).unwrap();
    let run = tf2npy([prefix.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(stderr(&run).contains("symbolic link"), "{}", stderr(&run));
    assert_eq!(tree(&elsewhere), Vec::<String>::new());
    assert_eq!(tree(&out), ["sdir"]);
    // The output folder itself may be a link: the user chose it.
    let linked = dir.path().join("linked");
    std::os::unix::fs::symlink("elsewhere", &linked).unwrap();
    ok([
        prefix.as_os_str(),
        "--exclude".as_ref(),
        "sdir/*".as_ref(),
        "-o".as_ref(),
        linked.as_os_str(),
    ]);
    assert_eq!(tree(&elsewhere), ["y.npy"]);
}

/// Item 10: missing parents are made for every output form, relative paths work, and
/// names up to 255 bytes work (temporary names are short).
#[test]
fn missing_parents_and_long_names_work() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), &["a"]);
    for out in ["newdir/", "sub/w.npz", "sub2/deeper/w.npy"] {
        let run = sh(
            &format!("exec \"$TF2NPY\" ckpt -o {out} --manifest m/{out}.json"),
            dir.path(),
        );
        assert!(run.status.success(), "-o {out}: {}", stderr(&run));
        let file = if out.ends_with('/') {
            dir.path().join(out).join("a.npy")
        } else {
            dir.path().join(out)
        };
        assert!(file.is_file(), "{out}");
        assert!(dir.path().join(format!("m/{out}.json")).is_file());
    }
    // A 251-byte .npz name and a folder file of 255 bytes (a 251-byte tensor name).
    let long = "n".repeat(247);
    let long_prefix = bundle(&dir.path().join("sub"), &[&long]);
    let npz = dir.path().join(format!("{long}.npz"));
    ok([long_prefix.as_os_str(), "-o".as_ref(), npz.as_os_str()]);
    assert!(npz.is_file());
    let name251 = "m".repeat(251);
    let long_prefix = bundle(&dir.path().join("sub2"), &[&name251]);
    let folder = dir.path().join("long/");
    ok([long_prefix.as_os_str(), "-o".as_ref(), folder.as_os_str()]);
    assert!(folder.join(format!("{name251}.npy")).is_file());
    // A run that fails while writing removes the folders it made.
    let data = dir.path().join("ckpt.data-00000-of-00001");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&data, bytes).unwrap();
    for out in ["made/x.npz", "made/x.npy", "made/f/"] {
        let run = sh(&format!("exec \"$TF2NPY\" ckpt -o {out}"), dir.path());
        assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
        assert!(stderr(&run).contains("checksum"), "{}", stderr(&run));
        assert!(!dir.path().join("made").exists(), "{out}");
    }
}

/// Item 11: staging a folder holds no descriptor per file.
#[test]
fn many_tensors_into_a_folder_under_a_low_descriptor_limit() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..N).map(|i| format!("t{i:05}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    bundle(dir.path(), &refs);
    let out = dir.path().join("out");
    let run = sh(
        &format!(
            "ulimit -n 1024 && exec \"$TF2NPY\" ckpt -o '{}/'",
            out.display()
        ),
        dir.path(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let files = std::fs::read_dir(dir.path().join("out")).unwrap().count();
    assert_eq!(files, N);
    let got = read_npy(&dir.path().join("out/t12345.npy"));
    assert_eq!(got.data, f32s(&[12345.0, 0.5]));
}

/// Item 14: names from the input cannot drive the terminal or forge output lines.
#[test]
fn names_are_escaped_in_every_human_readable_output() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "a\x1b]0;owned\x07\n::error::forged\u{202e}";
    let shown = "a\\x1b]0;owned\\x07\\n::error::forged\\u{202e}";
    let prefix = dir.path().join("ckpt");
    let mut tensors = vec![
        Tensor::new(evil, DT_FLOAT, &[2], f32s(&[1.0, 2.0])),
        Tensor::new(&format!("v{evil}"), DT_VARIANT, &[], Vec::new()),
    ];
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    write_bundle(&prefix, &tensors, false);
    let clean = |text: &str, what: &str| {
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}') && !text.contains("\n::"),
            "{what}: {text:?}"
        );
        assert!(text.contains(shown), "{what}: {text:?}");
    };
    let list = ok([prefix.as_os_str()]);
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    clean(&text, "listing");
    assert_eq!(
        text.lines().count(),
        4,
        "a header, two rows, a totals line: {text}"
    );
    // JSON keeps the exact name (serde_json escapes it).
    let json = ok([prefix.as_os_str(), "--list".as_ref(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["entries"][0]["name"], evil);
    // Dry run, warnings (the variant is skipped), --check, errors.
    let npz = dir.path().join("o.npz");
    let folder = dir.path().join("o/");
    let dry = ok([
        prefix.as_os_str(),
        "--dry-run".as_ref(),
        "-o".as_ref(),
        npz.as_os_str(),
    ]);
    clean(&String::from_utf8_lossy(&dry.stdout), "dry run");
    clean(&stderr(&dry), "warning");
    let check = tf2npy([
        prefix.as_os_str(),
        "--check".as_ref(),
        "-o".as_ref(),
        folder.as_os_str(),
    ]);
    assert_eq!(check.status.code(), Some(1));
    let npz_ok = ok([prefix.as_os_str(), "-o".as_ref(), npz.as_os_str()]);
    clean(&stderr(&npz_ok), "warning");
    std::fs::write(dir.path().join("o.npz"), b"").unwrap();
    let unknown = tf2npy([
        prefix.as_os_str(),
        "--tensor".as_ref(),
        "a".as_ref(),
        "-o".as_ref(),
        npz.as_os_str(),
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    clean(&stderr(&unknown), "error");
    // A name that makes a folder file's path: the check lists it escaped.
    std::fs::create_dir_all(dir.path().join("c")).unwrap();
    let check = tf2npy([
        prefix.as_os_str(),
        "--check".as_ref(),
        "-o".as_ref(),
        dir.path().join("c").as_os_str(),
    ]);
    assert_eq!(check.status.code(), Some(1));
    clean(&String::from_utf8_lossy(&check.stdout), "--check");
}
