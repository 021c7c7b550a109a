//! Shared helpers for the integration tests: run the built binary, read fixtures and
//! their manifest, parse `.npy` files and `.npz` members for comparison (each also read
//! by ndarray-npy, see `npy_readback`).

#![allow(dead_code)]

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The parsed `fixtures/manifest.json`.
pub fn manifest() -> Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}

/// Manifest cases of one kind.
pub fn cases(kind: &str) -> Vec<Value> {
    let m = manifest();
    let all = m["cases"].as_array().expect("cases").clone();
    let v: Vec<Value> = all.into_iter().filter(|c| c["kind"] == kind).collect();
    assert!(!v.is_empty(), "no fixture cases of kind {kind}");
    v
}

/// Runs tf2npy with `args`.
pub fn tf2npy<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_tf2npy"))
        .args(args)
        .output()
        .expect("run tf2npy")
}

/// Runs tf2npy and asserts success, returning stdout.
pub fn ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<std::ffi::OsStr>,
{
    let out = tf2npy(args.clone());
    let shown: Vec<String> = args
        .into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    assert!(
        out.status.success(),
        "tf2npy {:?} failed ({:?}):\n{}",
        shown,
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A parsed `.npy`: descr, shape and payload.
#[derive(Debug, PartialEq)]
pub struct Npy {
    pub descr: String,
    pub shape: Vec<u64>,
    pub header: Vec<u8>,
    pub data: Vec<u8>,
}

/// Parses `.npy` bytes (v1 and v2 headers).
pub fn parse_npy(bytes: &[u8]) -> Npy {
    assert_eq!(&bytes[..6], b"\x93NUMPY", "not an npy file");
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = &bytes[..start + hlen];
    let text = std::str::from_utf8(&bytes[start..start + hlen]).expect("header text");
    let descr = text
        .split("'descr': '")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("descr")
        .to_string();
    assert!(text.contains("'fortran_order': False"), "{text}");
    let shape_txt = text
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape");
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("dim"))
        .collect();
    let npy = Npy {
        descr,
        shape,
        header: header.to_vec(),
        data: bytes[start + hlen..].to_vec(),
    };
    // The second, independent reader: ndarray-npy must read the same array.
    crate::npy_readback::check_npy("a parsed .npy", bytes, &npy);
    npy
}

/// Reads and parses a `.npy` file.
pub fn read_npy(path: &Path) -> Npy {
    parse_npy(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The members of a `.npz` (name without `.npy` -> parsed array), in archive order.
pub fn read_npz(path: &Path) -> Vec<(String, Npy)> {
    let f = std::fs::File::open(path).expect("open npz");
    let mut z = zip::ZipArchive::new(f).expect("zip");
    let mut out = Vec::new();
    for i in 0..z.len() {
        let mut m = z.by_index(i).expect("member");
        let name = m
            .name()
            .expect("utf-8 name")
            .strip_suffix(".npy")
            .expect(".npy member")
            .to_string();
        let mut buf = Vec::new();
        m.read_to_end(&mut buf).expect("read member");
        out.push((name, parse_npy(&buf)));
    }
    crate::npy_readback::check_npz(path, &out);
    out
}

/// Asserts `got` equals the expected `.npy` at `expected` bit for bit: same descr,
/// shape, header bytes (numpy's exact header) and payload.
pub fn assert_same(case: &str, name: &str, got: &Npy, expected: &Path) {
    let want = read_npy(expected);
    assert_eq!(got.descr, want.descr, "{case} `{name}`: descr");
    assert_eq!(got.shape, want.shape, "{case} `{name}`: shape");
    if got.data != want.data {
        let first = got
            .data
            .iter()
            .zip(&want.data)
            .position(|(a, b)| a != b)
            .unwrap_or(got.data.len().min(want.data.len()));
        panic!(
            "{case} `{name}`: payload differs (got {} bytes, want {}; first difference at byte {first}: got {:02x?}, want {:02x?})",
            got.data.len(),
            want.data.len(),
            &got.data[first..(first + 8).min(got.data.len())],
            &want.data[first..(first + 8).min(want.data.len())],
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&got.header),
        String::from_utf8_lossy(&want.header),
        "{case} `{name}`: header text differs from numpy's"
    );
}

/// The expected tensors of a case: (name, expected file, raw-bits file, skip, hidden).
pub struct ExpectedTensor {
    pub name: String,
    pub expected: Option<PathBuf>,
    pub expected_raw: Option<PathBuf>,
    pub skip: bool,
    pub hidden: bool,
    pub tf_dtype: String,
    /// The variable name TensorFlow's object graph records (`full_name`), if any.
    pub var_name: Option<String>,
}

pub fn expected_tensors(case: &Value) -> Vec<ExpectedTensor> {
    case["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .map(|t| ExpectedTensor {
            name: t["name"].as_str().expect("name").to_string(),
            expected: t["expected"].as_str().map(|p| fixtures().join(p)),
            expected_raw: t["expected_raw"].as_str().map(|p| fixtures().join(p)),
            skip: t["skip"].as_bool().unwrap_or(false),
            hidden: t["hidden"].as_bool().unwrap_or(false),
            tf_dtype: t["tf_dtype"].as_str().unwrap_or("").to_string(),
            var_name: t["var_name"].as_str().map(String::from),
        })
        .collect()
}

/// The case's input path and extra args.
pub fn case_input(case: &Value) -> (PathBuf, Vec<String>) {
    let input = fixtures().join(case["input"].as_str().expect("input"));
    let args = case["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    (input, args)
}

/// Converts a whole case to a `.npz` (with `--all` plus `extra` args) and checks every
/// expected tensor bit for bit, that skipped ones are absent and warned about, and that
/// the archive holds nothing unexpected. Returns how many tensors were compared.
pub fn check_case_npz(case: &Value, dir: &Path, extra: &[&str]) -> usize {
    let id = case["id"].as_str().expect("id");
    let (input, args) = case_input(case);
    let out = dir.join(format!("{}.npz", id.replace('/', "_")));
    let mut cmd: Vec<String> = vec![input.to_string_lossy().into_owned()];
    cmd.extend(args);
    cmd.extend([
        "--all".to_string(),
        "-o".to_string(),
        out.to_string_lossy().into_owned(),
    ]);
    cmd.extend(extra.iter().map(|s| s.to_string()));
    let run = ok(&cmd);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    let members = read_npz(&out);
    let mut compared = 0;
    let expected = expected_tensors(case);
    for t in &expected {
        let got = members.iter().find(|(n, _)| *n == t.name);
        if t.skip {
            assert!(
                got.is_none(),
                "{id}: skipped tensor `{}` was written",
                t.name
            );
            assert!(
                stderr.contains(&t.name),
                "{id}: no warning naming `{}`: {stderr}",
                t.name
            );
            continue;
        }
        let (_, got) = got.unwrap_or_else(|| panic!("{id}: `{}` missing from the .npz", t.name));
        assert_same(
            id,
            &t.name,
            got,
            t.expected.as_ref().expect("expected file"),
        );
        compared += 1;
    }
    for (n, _) in &members {
        assert!(
            expected.iter().any(|t| &t.name == n),
            "{id}: unexpected member `{n}` in the .npz"
        );
    }
    compared
}

/// The stderr of a run, as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a conversion of `input` that must fail with exit 1, a message naming `names`,
/// no panic and no output.
pub fn assert_rejected(input: &Path, names: &[&str], dir: &Path) {
    let out = dir.join("out.npz");
    let run = tf2npy([input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(1), "{}: {err}", input.display());
    for n in names {
        assert!(
            err.contains(n),
            "{}: message must name `{n}`: {err}",
            input.display()
        );
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "{}: output left behind", input.display());
}

/// Asserts Python's own ZIP reader accepts the archive at `path` (`python -m zipfile -t`:
/// every member's CRC-32 and sizes).
pub fn assert_zip_valid(path: &Path) {
    let run = std::process::Command::new(crate::numpy::python())
        .args(["-m", "zipfile", "-t"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "python -m zipfile -t {}: {}",
        path.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Runs tf2npy with `args` under a `ulimit -v` of `kib`.
pub fn run_limited(kib: u64, args: &[&std::ffi::OsStr]) -> Output {
    let mut script = format!("ulimit -v {kib} && exec \"$0\"");
    for i in 1..=args.len() {
        script.push_str(&format!(" \"${i}\""));
    }
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_tf2npy"))
        .args(args)
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .unwrap()
}

/// Copies the folder `from` (files and subfolders) to `to`, creating it.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Runs tf2npy 60 times with the arguments `args(i)` gives, flipping bit 4 of byte `at`
/// of `file` 0 to 30 ms after each start (in 0.5 ms steps) and restoring it when the
/// run ends. A failed run must exit 1 and leave `out(i)` absent; a run that succeeds is
/// handed to `check(i)`, which must find exactly the original bytes. Both outcomes
/// must occur over the range of timings, else the test tests nothing.
pub fn flip_while_running(
    file: &Path,
    at: u64,
    args: impl Fn(u64) -> (Vec<std::ffi::OsString>, PathBuf),
    mut check: impl FnMut(u64),
) {
    use std::os::unix::fs::FileExt;
    let mut original = [0u8];
    std::fs::File::open(file)
        .unwrap()
        .read_exact_at(&mut original, at)
        .unwrap();
    let (mut ok, mut refused) = (0, 0);
    for i in 0..60u64 {
        let (argv, out) = args(i);
        let _ = std::fs::remove_file(&out);
        let mut child = Command::new(env!("CARGO_BIN_EXE_tf2npy"))
            .args(&argv)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros((i * 500) % 30_000));
        let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        f.write_all_at(&[original[0] ^ 0x10], at).unwrap();
        let status = child.wait().unwrap();
        f.write_all_at(&original, at).unwrap();
        drop(f);
        if status.success() {
            ok += 1;
            check(i);
        } else {
            refused += 1;
            assert_eq!(status.code(), Some(1), "run {i}");
            assert!(
                !out.exists(),
                "run {i}: a failed run published {}",
                out.display()
            );
        }
    }
    assert!(refused > 0, "no run saw the flipped byte");
    assert!(ok > 0, "no run finished before the flip");
}

/// Sends SIG`sig` (`INT`, `TERM`, ...) to `child` with `kill` and checks that it exits
/// with `code`.
pub fn signal_and_expect(child: &mut std::process::Child, sig: &str, code: i32) {
    let kill = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(code), "SIG{sig}: {status:?}");
}
