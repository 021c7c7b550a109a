//! Keras and h5py HDF5 files (issue 13): every fixture dataset made by Keras 3, tf_keras
//! and h5py converts bit-exactly (expected arrays read back by h5py, checked against
//! `model.get_weights()` by fixtures/gen_keras.py); bfloat16 widens (or keeps its bits
//! with `--raw-bits`); `--var-names` gives the Keras names; `--list` names the kind;
//! external links, soft links out of the file, external storage and virtual datasets are
//! refused without opening any other file; a shape larger than the stored bytes is refused.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn keras_manifest() -> Value {
    let text = std::fs::read_to_string(fixtures().join("keras/manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}

fn keras_cases() -> Vec<Value> {
    keras_manifest()["cases"].as_array().expect("cases").clone()
}

fn keras_case(id: &str) -> Value {
    keras_cases()
        .into_iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

fn hostile(name: &str) -> PathBuf {
    fixtures().join("keras/hostile").join(name)
}

#[test]
fn every_keras_and_h5py_fixture_converts_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    let mut listed = 0;
    let cases = keras_cases();
    assert!(cases.len() >= 9, "{}", cases.len());
    for case in &cases {
        compared += check_case_npz(case, dir.path(), &[]);
        listed += expected_tensors(case).iter().filter(|t| !t.skip).count();
    }
    assert_eq!(compared, listed);
    assert!(compared > 150, "{compared}");
}

#[test]
fn bfloat16_raw_bits_keep_the_stored_bits() {
    let dir = tempfile::tempdir().unwrap();
    let case = keras_case("keras/convnet_keras");
    let (input, _) = case_input(&case);
    let out = dir.path().join("raw.npz");
    ok([
        input.as_os_str(),
        "--raw-bits".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let members = read_npz(&out);
    let mut raw = 0;
    for t in expected_tensors(&case) {
        let Some(want) = &t.expected_raw else {
            continue;
        };
        assert_eq!(t.tf_dtype, "bfloat16");
        let (_, got) = members.iter().find(|(n, _)| *n == t.name).unwrap();
        assert_same("convnet --raw-bits", &t.name, got, want);
        raw += 1;
    }
    assert!(raw >= 6, "{raw}");
}

/// The `--var-names` name fixtures/gen_keras.py expects for each tensor of `case`
/// (`keras_name`, else the path), and Keras's own variable path (`keras_path`, recorded
/// from Keras by the generator) where the case has one.
fn wanted_names(case: &Value) -> Vec<(String, String, Option<String>)> {
    case["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["skip"].as_bool().unwrap_or(false))
        .map(|t| {
            let name = t["name"].as_str().unwrap().to_string();
            let want = t["keras_name"].as_str().unwrap_or(&name).to_string();
            (name, want, t["keras_path"].as_str().map(String::from))
        })
        .collect()
}

#[test]
fn var_names_give_keras_names() {
    // Every case with Keras names: Keras 3 (.keras archives: the variable paths Keras
    // shows, from config.json; bare .weights.h5 and sharded saves: `layer/index`) and
    // tf_keras (`weight_names`).
    let dir = tempfile::tempdir().unwrap();
    let (mut named, mut as_keras, mut cases) = (0, 0, 0);
    for case in keras_cases() {
        let wanted = wanted_names(&case);
        if !wanted.iter().any(|(n, w, p)| n != w || p.is_some()) {
            continue;
        }
        cases += 1;
        let id = case["id"].as_str().unwrap();
        let (input, _) = case_input(&case);
        let out = dir.path().join("names.npz");
        let run = ok([
            input.as_os_str(),
            "--var-names".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let members = read_npz(&out);
        for (t, (name, want, path)) in expected_tensors(&case).iter().zip(&wanted) {
            assert_eq!(&t.name, name);
            let (_, got) = members
                .iter()
                .find(|(n, _)| n == want)
                .unwrap_or_else(|| panic!("{id}: no member `{want}`: {}", stderr_of(&run)));
            assert_same(id, want, got, t.expected.as_ref().unwrap());
            named += usize::from(want != name);
            as_keras += usize::from(path.as_ref() == Some(want));
        }
        assert_eq!(members.len(), wanted.len(), "{id}");
        // --list --json shows the same names.
        let listed = ok([
            input.as_os_str(),
            "--list".as_ref(),
            "--json".as_ref(),
            "--var-names".as_ref(),
        ]);
        let json: Value = serde_json::from_slice(&listed.stdout).unwrap();
        let entries = json["entries"].as_array().unwrap();
        for (name, want, _) in &wanted {
            let e = entries
                .iter()
                .find(|e| e["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{id}: {name} not listed"));
            let shown = e["var_name"].as_str().unwrap_or(name);
            assert_eq!(shown, want, "{id}: {name}");
        }
    }
    assert!(cases >= 10, "{cases}");
    assert!(named > 150, "{named}");
    // Keras 3 variable paths from config.json: every layer variable of the archives
    // (convnet, textnet, its deflated copy, zoo) but the zoo's Normalization.
    assert!(as_keras >= 60, "{as_keras}");
}

#[test]
fn keras3_names_fall_back_to_layer_index_with_one_warning_per_layer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.npz");
    // zoo.keras: a Normalization layer, which tf2npy has no variable table for, keeps
    // `norm/<i>`, with one warning naming it and why.
    let run = ok([
        fixtures().join("keras/zoo.keras").as_os_str(),
        "--var-names".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let err = stderr_of(&run);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    for n in [
        "layer `norm` (`layers/normalization/vars`) keeps `norm/<index>`",
        "class `Normalization`",
    ] {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert_eq!(
        read_npz(&out)
            .iter()
            .filter(|(n, _)| n.starts_with("norm/"))
            .count(),
        3
    );
    // A bare .weights.h5: no config.json, one warning for the file.
    let run = ok([
        fixtures().join("keras/convnet.weights.h5").as_os_str(),
        "--var-names".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let err = stderr_of(&run);
    assert_eq!(err.matches("no config.json").count(), 1, "{err}");
    assert!(err.contains("`dense_bf16`"), "{err}");
    // Without --var-names: no warning.
    let run = ok([
        fixtures().join("keras/zoo.keras").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!stderr_of(&run).contains("norm"), "{}", stderr_of(&run));
    // A listing with --var-names warns as the conversion does (and -q silences it).
    let list = ok([
        fixtures().join("keras/zoo.keras").as_os_str(),
        "--var-names".as_ref(),
    ]);
    let err = stderr_of(&list);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(err.contains("keeps `norm/<index>`"), "{err}");
    let quiet = ok([
        fixtures().join("keras/zoo.keras").as_os_str(),
        "--var-names".as_ref(),
        "-q".as_ref(),
    ]);
    assert!(stderr_of(&quiet).is_empty(), "{}", stderr_of(&quiet));
}

#[test]
fn list_names_each_kind() {
    for (file, kind) in [
        ("keras/convnet.keras", "Keras 3 .keras"),
        ("keras/textnet_deflated.keras", "Keras 3 .keras"),
        ("keras/convnet.weights.h5", "Keras .weights.h5"),
        ("keras/legacy_model.h5", "HDF5 (legacy Keras)"),
        ("keras/legacy_weights.h5", "HDF5 (legacy Keras)"),
        ("keras/h5py_types.h5", "HDF5:"),
        (
            "keras/sharded/m.weights.json",
            "Keras sharded .weights.json",
        ),
    ] {
        let run = ok([fixtures().join(file).as_os_str(), "--list".as_ref()]);
        let text = String::from_utf8_lossy(&run.stdout);
        assert!(text.contains(kind), "{file}: {text}");
    }
}

#[test]
fn stored_keras_member_is_read_in_place() {
    // Data offsets lie inside the archive (past the ZIP headers), not in a copy.
    let run = ok([
        fixtures().join("keras/convnet.keras").as_os_str(),
        "--list".as_ref(),
    ]);
    let text = String::from_utf8_lossy(&run.stdout);
    let plain = ok([
        fixtures().join("keras/convnet.weights.h5").as_os_str(),
        "--list".as_ref(),
    ]);
    let plain = String::from_utf8_lossy(&plain.stdout);
    let at = |t: &str| -> Vec<u64> {
        t.lines()
            .filter_map(|l| l.split("@ ").nth(1))
            .map(|n| n.trim().parse().unwrap())
            .collect()
    };
    let (a, b) = (at(&text), at(&plain));
    assert_eq!(a.len(), b.len());
    assert!(!a.is_empty());
    assert!(a.iter().zip(&b).all(|(x, y)| x > y), "{a:?} vs {b:?}");
}

#[test]
fn hard_link_cycles_terminate_and_soft_links_inside_the_file_are_followed() {
    let run = ok([
        fixtures().join("keras/h5py_types.h5").as_os_str(),
        "--list".as_ref(),
    ]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("nested/deeper/x"), "{text}");
    assert!(text.contains("soft_inside"), "{text}");
    assert!(!text.contains("loop"), "{text}");
}

#[test]
fn unsupported_dtypes_are_skipped_with_a_warning_or_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixtures().join("keras/h5py_types.h5");
    let out = dir.path().join("o.npz");
    let run = ok([input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(stderr_of(&run).contains("`complex`"), "{}", stderr_of(&run));
    let run = tf2npy([
        input.as_os_str(),
        "--tensor".as_ref(),
        "complex".as_ref(),
        "-o".as_ref(),
        dir.path().join("c.npy").as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr_of(&run));
    assert!(stderr_of(&run).contains("complex"), "{}", stderr_of(&run));
}

/// Copies `name` from the hostile fixtures into a fresh folder where every file it
/// could refer to (`secret.h5`, `raw.bin`) is a FIFO: opening one for reading would
/// block, so a run that finishes proves no other file was opened.
fn isolated(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::copy(hostile(name), &path).unwrap();
    for other in ["secret.h5", "raw.bin"] {
        let st = Command::new("mkfifo")
            .arg(dir.path().join(other))
            .status()
            .unwrap();
        assert!(st.success());
    }
    (dir, path)
}

/// Runs a conversion of `input` that must fail quickly with exit 1 naming `names`.
fn refused_without_opening_others(input: &Path, names: &[&str]) {
    let out = input.with_extension("npz");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tf2npy"))
        .arg(input)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!(
                "{}: hung (opened a FIFO standing in for another file?)",
                input.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    for n in names {
        assert!(
            err.contains(n),
            "{}: must name `{n}`: {err}",
            input.display()
        );
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists());
}

#[test]
fn external_links_are_refused_without_opening_the_target() {
    let (_d, p) = isolated("external_link.h5");
    refused_without_opening_others(&p, &["external link", "secret.h5", "never opens"]);
}

#[test]
fn soft_links_leaving_the_file_are_refused() {
    let (_d, p) = isolated("soft_link_out.h5");
    refused_without_opening_others(&p, &["soft link", "secret.h5"]);
}

#[test]
fn external_storage_is_refused() {
    let (_d, p) = isolated("external_storage.h5");
    refused_without_opening_others(&p, &["`efl`", "external files", "never opens"]);
}

#[test]
fn virtual_datasets_are_refused() {
    let (_d, p) = isolated("virtual.h5");
    refused_without_opening_others(&p, &["virtual dataset", "vds", "never opens"]);
}

#[test]
fn a_shape_larger_than_the_stored_bytes_is_refused_before_allocation() {
    // CVE-2026-0897: 2^40 float32 elements claimed, 4936 bytes stored. Under a 256 MiB
    // address-space limit an allocation of the claimed size could not even be tried.
    let dir = tempfile::tempdir().unwrap();
    let input = hostile("huge_shape.h5");
    let out = dir.path().join("o.npz");
    let run = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 262144; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tf2npy"))
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    for n in ["`w`", "4398046511104 bytes", "stores 4936"] {
        assert!(err.contains(n), "must name `{n}`: {err}");
    }
    assert!(!out.exists());
    assert_rejected(&input, &["huge_shape.h5", "`w`"], dir.path());
}

#[test]
fn keras_name_clashes_are_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.npz");
    let run = tf2npy([
        fixtures().join("keras/name_clash.weights.h5").as_os_str(),
        "--var-names".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let err = stderr_of(&run);
    assert!(!run.status.success(), "{err}");
    for n in [
        "`layers/dense/vars/0`",
        "`layers/dense_1/vars/0`",
        "`dense/0`",
    ] {
        assert!(err.contains(n), "must name {n}: {err}");
    }
    assert!(!out.exists());
    // Without --var-names the paths are unique.
    ok([
        fixtures().join("keras/name_clash.weights.h5").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
}

/// Replaces every occurrence of the 8-byte little-endian `old` in `bytes` by `new`;
/// returns how many there were.
fn patch_u64(bytes: &mut [u8], old: u64, new: u64) -> usize {
    let (o, n) = (old.to_le_bytes(), new.to_le_bytes());
    let mut count = 0;
    let mut i = 0;
    while i + 8 <= bytes.len() {
        if bytes[i..i + 8] == o {
            bytes[i..i + 8].copy_from_slice(&n);
            count += 1;
            i += 8;
        } else {
            i += 1;
        }
    }
    count
}

#[test]
fn a_dataset_larger_than_the_memory_budget_streams() {
    // fixtures/keras/grow.h5: one float32 dataset of 1234 elements whose data ends the
    // file. Grown to 640 MiB (shape and layout size patched, the file extended), it must
    // convert under a 160 MiB address-space limit.
    const N: u64 = 160 << 20;
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixtures().join("keras/grow.h5")).unwrap();
    let data_at = bytes.len() as u64 - 4936;
    assert!(patch_u64(&mut bytes[..data_at as usize], 1234, N) >= 1);
    assert_eq!(patch_u64(&mut bytes[..data_at as usize], 4936, N * 4), 1);
    let path = dir.path().join("big.h5");
    std::fs::write(&path, &bytes).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(data_at + N * 4).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&(-7.25f32).to_le_bytes(), data_at + N * 4 - 4)
        .unwrap();
    let out = dir.path().join("big.npz");
    let run = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 163840; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tf2npy"))
        .arg(&path)
        .arg("-q")
        .arg("-o")
        .arg(&out)
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr_of(&run));
    // The member holds the whole tensor: first element 1.5, last -7.25.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut m = zip.by_name("w.npy").unwrap();
    assert!(m.size() > N * 4);
    let header = m.size() - N * 4;
    let mut head = vec![0u8; header as usize + 4];
    std::io::Read::read_exact(&mut m, &mut head).unwrap();
    assert_eq!(&head[header as usize..], &1.5f32.to_le_bytes());
    let mut rest = std::io::sink();
    let mut tail = std::io::Read::take(&mut m, N * 4 - 8);
    std::io::copy(&mut tail, &mut rest).unwrap();
    let mut last = [0u8; 4];
    std::io::Read::read_exact(&mut m, &mut last).unwrap();
    assert_eq!(last, (-7.25f32).to_le_bytes());
}

#[test]
fn sharding_maps_naming_files_outside_their_folder_are_refused() {
    for shard in ["../secret.h5", "/etc/passwd", "sub/x.h5", ".."] {
        let (dir, _) = isolated("external_link.h5");
        let map = dir.path().join("m.weights.json");
        let json = format!("{{\"metadata\": {{}}, \"weight_map\": {{\"/vars\": [\"{shard}\"]}}}}");
        std::fs::write(&map, json).unwrap();
        refused_without_opening_others(&map, &[shard, "not a plain file name"]);
    }
}

/// A `large` entry of the manifest: a small committed file whose dataset is large once
/// read, with the SHA-256 of the bytes h5py reads.
fn large(key: &str) -> (PathBuf, String, Vec<u64>, String, String) {
    let m = &keras_manifest()["large"][key];
    let shape = m["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect();
    (
        fixtures().join(m["input"].as_str().unwrap()),
        m["dataset"].as_str().unwrap().to_string(),
        shape,
        m["descr"].as_str().unwrap().to_string(),
        m["sha256"].as_str().unwrap().to_string(),
    )
}

/// Converts `key`'s dataset to a `.npy` under `kib` KiB of address space and checks the
/// header's dtype and shape and the SHA-256 of the data against h5py's.
fn converts_within(key: &str, kib: u64) {
    let (input, name, shape, descr, sha) = large(key);
    let bytes: u64 = shape.iter().product::<u64>() * descr[2..].parse::<u64>().unwrap();
    assert!(
        bytes >= 4 * (kib << 10),
        "{key}: {bytes} is not several times the budget"
    );
    // The budget really is too small to hold the data: a control run that must fail.
    let control = Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -v {kib} && exec python3 -c 'bytearray({bytes})'"),
        ])
        .output()
        .unwrap();
    assert!(!control.status.success(), "the budget does not constrain");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.npy");
    let run = run_limited(
        kib,
        &[
            input.as_os_str(),
            "--tensor".as_ref(),
            name.as_ref(),
            "-q".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    );
    assert!(run.status.success(), "{key}: {}", stderr_of(&run));
    let mut f = std::fs::File::open(&out).unwrap();
    let mut head = [0u8; 10];
    std::io::Read::read_exact(&mut f, &mut head).unwrap();
    assert_eq!(&head[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([head[8], head[9]]) as usize;
    let mut header = vec![0u8; hlen];
    std::io::Read::read_exact(&mut f, &mut header).unwrap();
    let header = String::from_utf8(header).unwrap();
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    assert!(header.contains(&format!("'descr': '{descr}'")), "{header}");
    assert!(
        header.contains(&format!("'shape': ({},)", dims.join(", "))),
        "{header}"
    );
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        copied += n as u64;
    }
    assert_eq!(copied, bytes, "{key}");
    let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, sha, "{key}: data differs from h5py's");
}

#[test]
fn a_chunked_gzip_dataset_larger_than_the_memory_budget_streams() {
    // fixtures/keras/large_gzip.h5: 260 KB holding a 256 MiB int32 dataset (1 Mi-element
    // gzip + shuffle chunks, made by h5py); converted under 64 MiB of address space.
    converts_within("chunked_gzip", 64 << 10);
}

#[test]
fn variable_length_strings_stream_one_element_at_a_time() {
    // fixtures/keras/hostile/vlen_shared.h5: 2048 references to one 128 KiB heap
    // object, 256 MiB of strings from a 160 KB file; converted under 64 MiB.
    converts_within("vlen_shared", 64 << 10);
}

#[test]
fn variable_length_string_claims_are_checked_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    for (file, names) in [
        (
            "vlen_liar.h5",
            &["`s`", "claims 4294967295 bytes", "holds 2"][..],
        ),
        (
            "vlen_heap_huge.h5",
            &["`s`", "claims 1099511627776 bytes", "global heap"][..],
        ),
    ] {
        let input = hostile(file);
        let out = dir.path().join("o.npz");
        let run = run_limited(
            64 << 10,
            &[input.as_os_str(), "-o".as_ref(), out.as_os_str()],
        );
        let err = stderr_of(&run);
        assert_eq!(run.status.code(), Some(1), "{file}: {err}");
        for n in names {
            assert!(err.contains(n), "{file}: must name {n}: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn a_deflated_keras_member_leaves_no_temporary_file_on_signals() {
    // A `.keras` archive whose weights member (grow.h5 grown to 384 MiB) is deflated:
    // tf2npy decompresses it to a temporary file in TMPDIR. Interrupted while it holds
    // that file open, by SIGINT or SIGTERM, it must exit 128 + signal and leave TMPDIR
    // empty.
    const N: u64 = 96 << 20;
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixtures().join("keras/grow.h5")).unwrap();
    let data_at = bytes.len() as u64 - 4936;
    assert!(patch_u64(&mut bytes[..data_at as usize], 1234, N) >= 1);
    assert_eq!(patch_u64(&mut bytes[..data_at as usize], 4936, N * 4), 1);
    bytes.truncate(data_at as usize);
    let archive = dir.path().join("big.keras");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&archive).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1))
            .large_file(true);
        zip.start_file("model.weights.h5", opts).unwrap();
        std::io::Write::write_all(&mut zip, &bytes).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(N * 4) >> 20 {
            std::io::Write::write_all(&mut zip, &zeros).unwrap();
        }
        zip.finish().unwrap();
    }
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let tmp = tempfile::tempdir().unwrap();
        let out = dir.path().join("o.npz");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tf2npy"))
            .arg(&archive)
            .args(["-q", "-o"])
            .arg(&out)
            .env("TMPDIR", tmp.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Started: the child holds a file of TMPDIR open (/proc/<pid>/fd).
        let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut started = false;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            started = std::fs::read_dir(&fds)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.starts_with(tmp.path())));
            if started {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(started, "SIG{sig}: never saw the temporary file open");
        crate::common::signal_and_expect(&mut child, sig, code);
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert!(left.is_empty(), "SIG{sig}: left in TMPDIR: {left:?}");
        assert!(!out.exists());
    }
}

#[test]
fn a_quantized_layer_keeps_layer_index_names() {
    // fixtures/keras/quantized.keras: Dense `q` quantized to int8 (kernel, bias,
    // kernel_scale) beside a float Dense `f`.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.npz");
    let run = ok([
        fixtures().join("keras/quantized.keras").as_os_str(),
        "--var-names".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let err = stderr_of(&run);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(
        err.contains("layer `q` (`layers/dense/vars`) keeps `q/<index>`"),
        "{err}"
    );
    assert!(err.contains("quantized"), "{err}");
    let names: Vec<String> = read_npz(&out).into_iter().map(|(n, _)| n).collect();
    for n in ["q/0", "q/1", "q/2", "f/kernel", "f/bias"] {
        assert!(names.iter().any(|m| m == n), "{n}: {names:?}");
    }
}
