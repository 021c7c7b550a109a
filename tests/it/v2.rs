//! V2 checkpoints (issue 3): every fixture tensor made by TensorFlow converts
//! bit-exactly through every input form (prefix, `.index`, each `.data-*`, a folder with a
//! `checkpoint` file or one checkpoint) and every output form (`.npz` stored and deflated,
//! folder, `.npy` per tensor, stdout); output is reproducible; names and selection work.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Extra args a case needs so its manifest tensors appear as listed: the sparse siblings
/// case lists the parts, which the default densifies into one array.
fn case_args(case: &Value) -> Vec<&'static str> {
    if case["id"] == "v2/sparse_siblings" {
        vec!["--sparse", "keep"]
    } else {
        vec![]
    }
}

/// The checkpoint prefix behind a case (its input, or the latest in a training folder).
fn prefix_of(case: &Value) -> PathBuf {
    let (input, _) = case_input(case);
    if input.is_dir() {
        let state = std::fs::read_to_string(input.join("checkpoint")).unwrap();
        let line = state
            .lines()
            .find(|l| l.starts_with("model_checkpoint_path"))
            .unwrap();
        let rel = line.split('"').nth(1).unwrap();
        input.join(rel)
    } else {
        input
    }
}

fn data_files(prefix: &Path) -> Vec<PathBuf> {
    let dir = prefix.parent().unwrap();
    let stem = format!("{}.data-", prefix.file_name().unwrap().to_string_lossy());
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&stem))
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

#[test]
fn every_v2_fixture_converts_bit_exactly_to_npz() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for case in cases("v2") {
        total += check_case_npz(&case, dir.path(), &case_args(&case));
    }
    assert!(total >= 90, "only {total} tensors compared");
}

#[test]
fn every_input_form_gives_the_same_npz() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases("v2") {
        let id = case["id"].as_str().unwrap();
        let (input, _) = case_input(&case);
        let prefix = prefix_of(&case);
        let reference = dir.path().join("ref.npz");
        let mut base = vec![
            input.to_string_lossy().into_owned(),
            "--all".into(),
            "--force".into(),
        ];
        base.extend(case_args(&case).iter().map(|s| s.to_string()));
        let mut cmd = base.clone();
        cmd.extend(["-o".into(), reference.to_string_lossy().into_owned()]);
        ok(&cmd);
        let want = std::fs::read(&reference).unwrap();
        let mut forms = vec![
            prefix.clone(),
            PathBuf::from(format!("{}.index", prefix.display())),
        ];
        forms.extend(data_files(&prefix));
        // A folder holding exactly this one checkpoint.
        let lone = dir.path().join(format!("lone_{}", id.replace('/', "_")));
        std::fs::create_dir_all(&lone).unwrap();
        for f in std::fs::read_dir(prefix.parent().unwrap()).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(&format!(
                "{}.",
                prefix.file_name().unwrap().to_string_lossy()
            )) {
                std::fs::copy(&p, lone.join(&name)).unwrap();
            }
        }
        forms.push(lone);
        for form in forms {
            let out = dir.path().join("form.npz");
            let mut cmd = base.clone();
            cmd[0] = form.to_string_lossy().into_owned();
            cmd.extend(["-o".into(), out.to_string_lossy().into_owned()]);
            ok(&cmd);
            assert!(
                std::fs::read(&out).unwrap() == want,
                "{id}: input form {} gives a different .npz",
                form.display()
            );
        }
    }
}

#[test]
fn every_output_form_matches() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases("v2") {
        let id = case["id"].as_str().unwrap();
        let (input, _) = case_input(&case);
        let mut base = vec![input.to_string_lossy().into_owned(), "--all".into()];
        base.extend(case_args(&case).iter().map(|s| s.to_string()));
        // Deflated .npz.
        let z = dir.path().join(format!("{}_c.npz", id.replace('/', "_")));
        let mut cmd = base.clone();
        cmd.extend([
            "--compress".into(),
            "-o".into(),
            z.to_string_lossy().into_owned(),
        ]);
        ok(&cmd);
        let members = read_npz(&z);
        // Folder.
        let folder = dir.path().join(format!("{}_dir", id.replace('/', "_")));
        let mut cmd = base.clone();
        cmd.extend(["-o".into(), format!("{}/", folder.display())]);
        ok(&cmd);
        for t in expected_tensors(&case) {
            let Some(expected) = &t.expected else {
                assert!(t.skip);
                assert!(!folder.join(format!("{}.npy", t.name)).exists());
                continue;
            };
            let (_, got) = members
                .iter()
                .find(|(n, _)| *n == t.name)
                .unwrap_or_else(|| panic!("{id}: {} not in deflated npz", t.name));
            assert_same(id, &t.name, got, expected);
            let file = folder.join(format!("{}.npy", t.name));
            assert_eq!(
                std::fs::read(&file).unwrap(),
                std::fs::read(expected).unwrap(),
                "{id}: folder file {}",
                file.display()
            );
            // One .npy by --tensor, and stdout.
            let npy = dir.path().join("one.npy");
            let mut cmd = base.clone();
            cmd.extend([
                "--tensor".into(),
                t.name.clone(),
                "--force".into(),
                "-o".into(),
                npy.to_string_lossy().into_owned(),
            ]);
            ok(&cmd);
            assert_eq!(
                std::fs::read(&npy).unwrap(),
                std::fs::read(expected).unwrap(),
                "{id}: --tensor {}",
                t.name
            );
            let mut cmd = base.clone();
            cmd.extend(["--tensor".into(), t.name.clone(), "-o".into(), "-".into()]);
            let run = ok(&cmd);
            assert_eq!(
                run.stdout,
                std::fs::read(expected).unwrap(),
                "{id}: stdout {}",
                t.name
            );
        }
    }
}

/// A TF1 saver writes `PREFIX.meta` beside the checkpoint; given it, tf2npy reads the
/// checkpoint, and without a checkpoint beside it says where the values would be.
#[test]
fn meta_graph_file_stands_for_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = fixtures().join("v2/tf1_partitioned/model.ckpt");
    let meta = fixtures().join("v2/tf1_partitioned/model.ckpt.meta");
    let (a, b) = (dir.path().join("a.npz"), dir.path().join("b.npz"));
    ok([prefix.as_os_str(), "-o".as_ref(), a.as_os_str()]);
    ok([meta.as_os_str(), "-o".as_ref(), b.as_os_str()]);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    let lonely = dir.path().join("model.ckpt.meta");
    std::fs::copy(&meta, &lonely).unwrap();
    let out = dir.path().join("c.npz");
    let run = tf2npy([lonely.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("model.ckpt.meta holds a TF1 graph"), "{err}");
    assert!(err.contains(".index and .data-*"), "{err}");
    assert!(!out.exists());
}

#[test]
fn npz_is_reproducible_and_valid_zip() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixtures().join("v2/sharded/ckpt");
    for extra in [&[][..], &["--compress"][..]] {
        let a = dir.path().join("a.npz");
        let b = dir.path().join("b.npz");
        let mut args = vec![input.to_string_lossy().into_owned()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut a_args = args.clone();
        a_args.extend(["-o".into(), a.to_string_lossy().into_owned()]);
        let mut b_args = args.clone();
        b_args.extend(["-o".into(), b.to_string_lossy().into_owned()]);
        ok(&a_args);
        ok(&b_args);
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{extra:?}: not byte-identical"
        );
        let names: Vec<String> = read_npz(&a).into_iter().map(|(n, _)| n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "members not in sorted order");
        assert_zip_valid(&a);
    }
}

#[test]
fn short_names_unescape_and_refuse_clashes() {
    let dir = tempfile::tempdir().unwrap();
    let case = cases("v2")
        .into_iter()
        .find(|c| c["id"] == "v2/all_dtypes")
        .unwrap();
    let (input, _) = case_input(&case);
    let out = dir.path().join("s.npz");
    ok([
        input.as_os_str(),
        "--short-names".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let members = read_npz(&out);
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"model/weird.name/x"), "{names:?}");
    assert!(names.contains(&"model/.dotfirst"), "{names:?}");
    assert!(names.contains(&"model/f32"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".ATTRIBUTES/VARIABLE_VALUE")),
        "{names:?}"
    );
    for t in expected_tensors(&case) {
        if t.skip || t.hidden {
            continue;
        }
        let short = t
            .name
            .strip_suffix("/.ATTRIBUTES/VARIABLE_VALUE")
            .unwrap()
            .replace("..", "\u{0}")
            .replace(".S", "/")
            .replace('\u{0}', ".");
        let (_, got) = members
            .iter()
            .find(|(n, _)| *n == short)
            .unwrap_or_else(|| panic!("{short} missing"));
        assert_same("short", &short, got, t.expected.as_ref().unwrap());
    }
}

/// `--var-names` names each tensor by the `full_name` TensorFlow's object graph records
/// (the manifest's `var_name`, decoded by TensorFlow's own proto classes): every V2 and
/// SavedModel fixture either converts with those names bit for bit, or, where two
/// tensors share a name (unnamed `tf.Variable`s are all `Variable`), is refused naming
/// both keys. `--list --json --var-names` reports the same names.
#[test]
fn var_names_follow_the_object_graph() {
    let dir = tempfile::tempdir().unwrap();
    let (mut converted, mut refused) = (0, 0);
    for case in cases("v2").into_iter().chain(cases("savedmodel")) {
        let id = case["id"].as_str().unwrap().to_string();
        let (input, mut args) = case_input(&case);
        args.extend(["--sparse".to_string(), "keep".to_string()]);
        let tensors = expected_tensors(&case);
        // The listing: a var_name for exactly the tensors TensorFlow names.
        let mut list = vec![input.to_string_lossy().into_owned(), "--list".into()];
        list.extend(args.iter().cloned());
        list.extend(["--json".into(), "--var-names".into()]);
        let listed: Value = serde_json::from_slice(&ok(&list).stdout).unwrap();
        let listed = &listed["entries"];
        for t in &tensors {
            let e = listed
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == t.name.as_str())
                .unwrap_or_else(|| panic!("{id}: {} not listed", t.name));
            assert_eq!(
                e["var_name"].as_str(),
                t.var_name.as_deref(),
                "{id}: {}",
                t.name
            );
        }
        // The conversion.
        let written: Vec<(&ExpectedTensor, &str)> = tensors
            .iter()
            .filter(|t| !t.skip && !t.hidden)
            .map(|t| (t, t.var_name.as_deref().unwrap_or(&t.name)))
            .collect();
        let out = dir.path().join(format!("{}.npz", id.replace('/', "_")));
        let mut cmd = vec![input.to_string_lossy().into_owned(), "--var-names".into()];
        cmd.extend(args);
        cmd.extend(["-o".into(), out.to_string_lossy().into_owned()]);
        // The first tensor whose name an earlier one already took (entry order).
        let mut seen = std::collections::HashMap::new();
        let clash = written
            .iter()
            .find_map(|(t, n)| seen.insert(*n, t.name.as_str()).map(|first| (first, t, n)));
        if let Some((first, t, n)) = clash {
            let run = tf2npy(&cmd);
            let err = stderr_of(&run);
            assert_eq!(run.status.code(), Some(2), "{id}: {err}");
            for want in [
                format!("`{first}`"),
                format!("`{}`", t.name),
                format!("`{n}`"),
            ] {
                assert!(err.contains(&want), "{id}: {want} not in {err}");
            }
            assert!(err.contains("--short-names"), "{id}: {err}");
            assert!(!out.exists(), "{id}");
            refused += 1;
            continue;
        }
        ok(&cmd);
        let members = read_npz(&out);
        assert_eq!(members.len(), written.len(), "{id}");
        for (t, n) in &written {
            let (_, got) = members
                .iter()
                .find(|(m, _)| m == n)
                .unwrap_or_else(|| panic!("{id}: {n} missing"));
            assert_same(&id, n, got, t.expected.as_ref().unwrap());
        }
        converted += 1;
    }
    // keras_adam, savedmodel/module, ... convert; all_dtypes, sharded, ... clash.
    assert!(
        converted >= 2 && refused >= 2,
        "{converted} converted, {refused} refused"
    );
}

/// The object graph is read only for `--var-names`; damaged, it is named in the error.
#[test]
fn var_names_with_a_damaged_object_graph() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("v2/keras_adam");
    for f in ["ckpt.index", "ckpt.data-00000-of-00001"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let prefix = dir.path().join("ckpt");
    let listed: Value = serde_json::from_slice(
        &ok([prefix.as_os_str(), "--list".as_ref(), "--json".as_ref()]).stdout,
    )
    .unwrap();
    let graph = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "_CHECKPOINTABLE_OBJECT_GRAPH")
        .unwrap();
    let at: u64 = graph["location"]
        .as_str()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let data = dir.path().join("ckpt.data-00000-of-00001");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[at as usize + 10] ^= 0x40;
    std::fs::write(&data, bytes).unwrap();
    ok([
        prefix.as_os_str(),
        "-o".as_ref(),
        dir.path().join("plain.npz").as_os_str(),
    ]);
    let out = dir.path().join("named.npz");
    let run = tf2npy([
        prefix.as_os_str(),
        "--var-names".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("_CHECKPOINTABLE_OBJECT_GRAPH"), "{err}");
    assert!(
        err.contains("ckpt.data-00000-of-00001") || err.contains("ckpt.index"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn select_exclude_and_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixtures().join("v2/all_dtypes/ckpt-1");
    let out = dir.path().join("sel.npz");
    ok([
        input.as_os_str(),
        "--select".as_ref(),
        "model/f*".as_ref(),
        "--exclude".as_ref(),
        "*special*".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let names: Vec<String> = read_npz(&out).into_iter().map(|(n, _)| n).collect();
    assert!(!names.is_empty());
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("model/f") && !n.contains("special")),
        "{names:?}"
    );
    let out2 = dir.path().join("all.npz");
    ok([input.as_os_str(), "-o".as_ref(), out2.as_os_str()]);
    assert!(!read_npz(&out2)
        .iter()
        .any(|(n, _)| n == "_CHECKPOINTABLE_OBJECT_GRAPH"));
    // A variant asked for by name is an error, not a skip.
    let run = tf2npy([
        input.as_os_str(),
        "--tensor".as_ref(),
        "model/it/.ATTRIBUTES/ITERATOR_STATE".as_ref(),
        "-o".as_ref(),
        dir.path().join("v.npy").as_os_str(),
    ]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("variant"));
    // Several candidates for a .npy: an error listing them.
    let run = tf2npy([
        input.as_os_str(),
        "-o".as_ref(),
        dir.path().join("x.npy").as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("model/f32/.ATTRIBUTES/VARIABLE_VALUE"));
}

#[test]
fn listing_has_totals_locations_and_json() {
    let input = fixtures().join("v2/sharded/ckpt");
    let run = ok([input.as_os_str()]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("TensorFlow V2 checkpoint"), "{text}");
    assert!(text.contains("slices"), "{text}");
    assert!(
        text.contains("tensors,") && text.contains("elements") && text.contains("bytes"),
        "{text}"
    );
    let run = ok([input.as_os_str(), "--list".as_ref(), "--json".as_ref()]);
    let v: Value = serde_json::from_slice(&run.stdout).unwrap();
    let v = &v["entries"];
    let case = cases("v2")
        .into_iter()
        .find(|c| c["id"] == "v2/sharded")
        .unwrap();
    for t in expected_tensors(&case) {
        let e = v
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == t.name.as_str())
            .unwrap_or_else(|| panic!("{} not listed", t.name));
        assert_eq!(e["dtype"], t.tf_dtype.as_str());
    }
}

#[test]
fn wrong_path_suggests_checkpoints_nearby() {
    let run = tf2npy([
        fixtures().join("v2/training_dir/ckpt-9").as_os_str(),
        "--list".as_ref(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("ckpt-9") && err.contains("ckpt-4"), "{err}");
}
