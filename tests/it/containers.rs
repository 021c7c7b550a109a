//! SavedModels, frozen GraphDefs and sparse tensors (serialized, and stored as sibling
//! `X/indices`, `X/values`, `X/dense_shape` tensors): every fixture tensor bit-exact,
//! `--list` naming the container kind, `--sparse keep`, and damaged or mislabelled
//! inputs rejected cleanly.

use crate::common::*;
use std::path::PathBuf;

fn fx(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

fn case(id: &str) -> serde_json::Value {
    manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
        .clone()
}

#[test]
fn savedmodel_graphdef_and_sparse_fixtures_convert_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["savedmodel", "graphdef", "sparse"] {
        let mut compared = 0;
        let mut listed = 0;
        for case in cases(kind) {
            compared += check_case_npz(&case, dir.path(), &[]);
            listed += expected_tensors(&case).iter().filter(|t| !t.skip).count();
        }
        assert_eq!(compared, listed, "{kind}");
        assert!(compared > 0, "{kind}");
    }
}

#[test]
fn graphdef_bfloat16_const_with_raw_bits_and_single_npy() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("graphdef/frozen");
    let (input, _) = case_input(&c);
    let mut raw_checked = 0;
    for t in expected_tensors(&c) {
        let out = dir.path().join("t.npy");
        let mut cmd = vec![
            input.as_os_str().to_owned(),
            "--tensor".into(),
            t.name.clone().into(),
            "-o".into(),
            out.as_os_str().to_owned(),
        ];
        ok(&cmd);
        assert_same(
            "graphdef/frozen",
            &t.name,
            &read_npy(&out),
            t.expected.as_ref().unwrap(),
        );
        if let Some(raw) = &t.expected_raw {
            cmd.push("--raw-bits".into());
            ok(&cmd);
            assert_same("graphdef/frozen", &t.name, &read_npy(&out), raw);
            raw_checked += 1;
        }
    }
    assert_eq!(raw_checked, 1);
}

#[test]
fn sparse_fixtures_convert_to_stdout() {
    for case in cases("sparse") {
        let (input, _) = case_input(&case);
        let run = ok([input.as_os_str(), "-o".as_ref(), "-".as_ref()]);
        let t = &expected_tensors(&case)[0];
        assert_same(
            case["id"].as_str().unwrap(),
            &t.name,
            &parse_npy(&run.stdout),
            t.expected.as_ref().unwrap(),
        );
    }
}

#[test]
fn list_names_the_container_kind() {
    for (input, extra, kind, count) in [
        (
            "graphdef/frozen.pb",
            None,
            "TensorFlow GraphDef (frozen graph)",
            4,
        ),
        ("savedmodel/module", None, "TensorFlow SavedModel", 4),
        (
            "savedmodel/module/saved_model.pb",
            None,
            "TensorFlow SavedModel",
            4,
        ),
        (
            "savedmodel/module",
            Some("--constants"),
            "TensorFlow SavedModel",
            20,
        ),
        ("sparse/float32_2d.pb", None, "serialized sparse tensor", 1),
    ] {
        let mut args = vec![fx(input).into_os_string(), "--list".into()];
        args.extend(extra.map(Into::into));
        let text = String::from_utf8(ok(&args).stdout).unwrap();
        assert!(
            text.contains(&format!("{kind}: {count} tensors")),
            "{input}: {text}"
        );
    }
    // The JSON listing of a serialized sparse tensor shows the dense tensor.
    for case in cases("sparse") {
        let (input, _) = case_input(&case);
        let out = ok([input.as_os_str(), "--list".as_ref(), "--json".as_ref()]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let v = &v["entries"];
        let want = &case["tensors"][0];
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["name"], want["name"], "{}", case["id"]);
        assert_eq!(v[0]["dtype"], want["tf_dtype"], "{}", case["id"]);
        assert_eq!(v[0]["shape"], want["shape"], "{}", case["id"]);
    }
}

/// Item size of a `.npy` descr (`<f4` -> 4, `|S7` -> 7).
fn item_bytes(descr: &str) -> usize {
    descr[2..].parse().unwrap()
}

/// Rebuilds the dense payload from `--sparse keep` parts, numpy style:
/// `dense = zeros(dense_shape); dense[indices[k]] = values[k]`.
fn scatter(indices: &Npy, values: &Npy, dense_shape: &Npy, item: usize) -> (Vec<u64>, Vec<u8>) {
    let ints = |n: &Npy| -> Vec<i64> {
        assert_eq!(n.descr, "<i8");
        n.data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let shape: Vec<u64> = ints(dense_shape).into_iter().map(|d| d as u64).collect();
    let ix = ints(indices);
    let rank = shape.len();
    assert_eq!(indices.shape, [values.shape[0], rank as u64]);
    let total: u64 = shape.iter().product();
    let mut dense = vec![0u8; total as usize * item];
    let vitem = item_bytes(&values.descr);
    for (k, row) in ix
        .chunks(rank.max(1))
        .enumerate()
        .take(values.shape[0] as usize)
    {
        let mut off = 0u64;
        for d in 0..rank {
            off = off * shape[d] + row[d] as u64;
        }
        let n = vitem.min(item);
        let at = off as usize * item;
        dense[at..at + n].copy_from_slice(&values.data[k * vitem..k * vitem + n]);
    }
    (shape, dense)
}

#[test]
fn sparse_keep_writes_the_parts() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases("sparse") {
        let id = case["id"].as_str().unwrap();
        let (input, _) = case_input(&case);
        let t = &expected_tensors(&case)[0];
        let out = dir.path().join(format!("{}.npz", t.name));
        ok([
            input.as_os_str(),
            "--sparse".as_ref(),
            "keep".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let members = read_npz(&out);
        let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
        let want: Vec<String> = ["dense_shape", "indices", "values"]
            .iter()
            .map(|p| format!("{}/{p}", t.name))
            .collect();
        assert_eq!(names, want, "{id}");
        let expected = read_npy(t.expected.as_ref().unwrap());
        let (shape, dense) = scatter(
            &members[1].1,
            &members[2].1,
            &members[0].1,
            item_bytes(&expected.descr),
        );
        assert_eq!(shape, expected.shape, "{id}: dense_shape");
        assert_eq!(
            dense, expected.data,
            "{id}: scattered parts differ from the dense tensor"
        );
        if id.contains("many_") {
            // serialize_many_sparse parts come back like tf.io.deserialize_many_sparse:
            // a leading batch column and the batch dimension first.
            assert_eq!(members[1].1.shape[1], expected.shape.len() as u64, "{id}");
        }
    }
}

#[test]
fn sparse_siblings_in_a_checkpoint_are_densified_or_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("v2/sparse_siblings");
    let (input, _) = case_input(&c);
    let dense = &c["sparse_dense"];
    let dense_file = fixtures().join(dense["expected"].as_str().unwrap());
    let out = dir.path().join("dense.npz");
    ok([
        input.as_os_str(),
        "--all".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let members = read_npz(&out);
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "_CHECKPOINTABLE_OBJECT_GRAPH",
            "other/.ATTRIBUTES/VARIABLE_VALUE",
            "sp"
        ]
    );
    assert_same("v2/sparse_siblings", "sp", &members[2].1, &dense_file);
    for t in expected_tensors(&c) {
        if let Some((_, got)) = members.iter().find(|(n, _)| *n == t.name) {
            assert_same(
                "v2/sparse_siblings",
                &t.name,
                got,
                t.expected.as_ref().unwrap(),
            );
        }
    }
    // By name: the dense tensor, or one part.
    let npy = dir.path().join("sp.npy");
    ok([
        input.as_os_str(),
        "--tensor".as_ref(),
        "sp".as_ref(),
        "-o".as_ref(),
        npy.as_os_str(),
    ]);
    assert_same("v2/sparse_siblings", "sp", &read_npy(&npy), &dense_file);
    let part = expected_tensors(&c)
        .into_iter()
        .find(|t| t.name.starts_with("sp/values"))
        .unwrap();
    ok([
        input.as_os_str(),
        "--tensor".as_ref(),
        part.name.as_ref(),
        "-o".as_ref(),
        npy.as_os_str(),
    ]);
    assert_same(
        "v2/sparse_siblings",
        &part.name,
        &read_npy(&npy),
        part.expected.as_ref().unwrap(),
    );
    // --sparse keep writes exactly the stored tensors.
    assert_eq!(check_case_npz(&c, dir.path(), &["--sparse", "keep"]), 5);
}

#[test]
fn savedmodel_without_variables_and_by_pb_path() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::copy(
        fx("savedmodel/module/saved_model.pb"),
        model.join("saved_model.pb"),
    )
    .unwrap();
    // No variables: nothing to write without --constants, the constants with it.
    let run = tf2npy([
        model.as_os_str(),
        "-o".as_ref(),
        dir.path().join("a.npz").as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr_of(&run));
    let c = case("savedmodel/module_constants");
    let out = dir.path().join("c.npz");
    ok([
        model.join("saved_model.pb").as_os_str(),
        "--constants".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let members = read_npz(&out);
    let consts: Vec<_> = expected_tensors(&c)
        .into_iter()
        .filter(|t| !t.name.contains(".ATTRIBUTES") && !t.hidden)
        .collect();
    assert_eq!(members.len(), consts.len());
    for t in &consts {
        let (_, got) = members.iter().find(|(n, _)| *n == t.name).unwrap();
        assert_same("no-variables", &t.name, got, t.expected.as_ref().unwrap());
    }
    // An empty variables folder is no variables; data files without an index are damage.
    std::fs::create_dir(model.join("variables")).unwrap();
    ok([model.as_os_str(), "--list".as_ref()]);
    std::fs::write(model.join("variables/variables.data-00000-of-00001"), b"x").unwrap();
    let run = tf2npy([model.as_os_str(), "--list".as_ref()]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("variables.index"), "{err}");
}

#[test]
fn savedmodel_graph_in_text_or_chunked_form_points_at_its_variables() {
    let dir = tempfile::tempdir().unwrap();
    let vars = fx("savedmodel/module/variables");
    let c = case("savedmodel/module");
    for (file, form) in [
        ("saved_model.pbtxt", "text-format"),
        ("saved_model.cpb", "chunked"),
    ] {
        let model = dir.path().join(file);
        std::fs::create_dir_all(model.join("variables")).unwrap();
        for f in ["variables.index", "variables.data-00000-of-00001"] {
            std::fs::copy(vars.join(f), model.join("variables").join(f)).unwrap();
        }
        std::fs::write(model.join(file), b"meta_graphs {}\n").unwrap();
        assert_rejected(&model, &[file, form, "variables/variables"], dir.path());
        // The command the message suggests converts the variables exactly.
        let out = dir.path().join(format!("{file}.npz"));
        ok([
            model.join("variables/variables").as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let members = read_npz(&out);
        let want: Vec<_> = expected_tensors(&c)
            .into_iter()
            .filter(|t| !t.hidden && !t.skip)
            .collect();
        assert_eq!(members.len(), want.len(), "{file}");
        for t in &want {
            let (_, got) = members.iter().find(|(n, _)| *n == t.name).unwrap();
            assert_same(file, &t.name, got, t.expected.as_ref().unwrap());
        }
    }
}

#[test]
fn damaged_and_mislabelled_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Truncated GraphDef, truncated saved_model.pb (file and folder), random bytes.
    let graph = std::fs::read(fx("graphdef/frozen.pb")).unwrap();
    let p = d.join("frozen_cut.pb");
    std::fs::write(&p, &graph[..graph.len() - 7]).unwrap();
    assert_rejected(&p, &["frozen_cut.pb"], d);
    let model = d.join("model");
    std::fs::create_dir(&model).unwrap();
    let sm = std::fs::read(fx("savedmodel/module/saved_model.pb")).unwrap();
    std::fs::write(model.join("saved_model.pb"), &sm[..sm.len() / 2]).unwrap();
    assert_rejected(&model, &["saved_model.pb", "not a SavedModel"], d);
    assert_rejected(&model.join("saved_model.pb"), &["saved_model.pb"], d);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let p = d.join("noise.pb");
    std::fs::write(&p, noise).unwrap();
    assert_rejected(
        &p,
        &["noise.pb", "not a TensorProto, GraphDef or SavedModel"],
        d,
    );
    // An .npy file is not a protobuf, whatever it is called.
    let p = d.join("array.pb");
    std::fs::copy(fx("expected/graphdef/frozen/0.npy"), &p).unwrap();
    assert_rejected(
        &p,
        &["array.pb", "not a TensorProto, GraphDef or SavedModel"],
        d,
    );
    // Detection is by content: a GraphDef named like a NumPy file is still a GraphDef.
    let p = d.join("weights.npy");
    std::fs::write(&p, &graph).unwrap();
    let text = String::from_utf8(ok([p.as_os_str(), "--list".as_ref()]).stdout).unwrap();
    assert!(
        text.contains("TensorFlow GraphDef (frozen graph): 4 tensors"),
        "{text}"
    );
}

#[test]
fn sparse_with_bad_indices_fails_naming_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fx("sparse/float32_2d.pb");
    let keep = d.join("keep.npz");
    ok([
        input.as_os_str(),
        "--sparse".as_ref(),
        "keep".as_ref(),
        "-o".as_ref(),
        keep.as_os_str(),
    ]);
    let members = read_npz(&keep);
    let indices = &members[1].1;
    assert_eq!(indices.shape, [3, 2]);
    let bytes = std::fs::read(&input).unwrap();
    let at = bytes
        .windows(indices.data.len())
        .position(|w| w == indices.data)
        .expect("indices content in the file");
    // Column 1 of nonzero 1 set to 99 (the dense shape is [3, 4]).
    let mut out_of_range = bytes.clone();
    out_of_range[at + 24..at + 32].copy_from_slice(&99i64.to_le_bytes());
    let p = d.join("sp_range.pb");
    std::fs::write(&p, out_of_range).unwrap();
    assert_rejected(&p, &["sp_range.pb", "tensor `sp_range`", "out of range"], d);
    // Nonzero 2 given nonzero 0's index.
    let mut duplicate = bytes.clone();
    duplicate.copy_within(at..at + 16, at + 32);
    let p = d.join("sp_dup.pb");
    std::fs::write(&p, duplicate).unwrap();
    assert_rejected(&p, &["sp_dup.pb", "tensor `sp_dup`", "same index"], d);
}
