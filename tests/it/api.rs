//! The library API (`tf2npy::open`, `Reader::read`, the visitors): every fixture tensor
//! reads as the Rust type of its NumPy dtype with the same values, bit for bit, as the
//! expected array numpy/TensorFlow made (`fixtures/manifest.json`); naming options,
//! raw bits, type checks and bad input behave as the CLI's.

use crate::bundle_writer::{write_bundle, Tensor};
use crate::common::*;
use serde_json::Value;
use tf2npy::num_complex::Complex;
use tf2npy::{ElementType, Error, Options, Reader};

/// What `read::<T>` returned for `name`, as `.npy` would hold it: the descr, shape and
/// little-endian payload (strings NUL-padded to the longest, at least 1).
fn read_as_npy(r: &Reader, name: &str) -> (String, Vec<u64>, Vec<u8>) {
    fn le<T: tf2npy::Element, const N: usize>(
        r: &Reader,
        name: &str,
        bytes: fn(&T) -> [u8; N],
    ) -> (Vec<u64>, Vec<u8>) {
        let a = r
            .read::<T>(name)
            .unwrap_or_else(|e| panic!("read `{name}`: {e}"));
        // Row-major: `iter` walks a standard-layout array in memory order.
        assert!(a.is_standard_layout());
        let shape = a.shape().iter().map(|&d| d as u64).collect();
        (shape, a.iter().flat_map(bytes).collect())
    }
    let info = r
        .tensor(name)
        .unwrap_or_else(|| panic!("`{name}` not listed"));
    let (shape, data) = match info.element {
        ElementType::Bool => le::<bool, 1>(r, name, |&b| [u8::from(b)]),
        ElementType::I8 => le::<i8, 1>(r, name, |v| v.to_le_bytes()),
        ElementType::I16 => le::<i16, 2>(r, name, |v| v.to_le_bytes()),
        ElementType::I32 => le::<i32, 4>(r, name, |v| v.to_le_bytes()),
        ElementType::I64 => le::<i64, 8>(r, name, |v| v.to_le_bytes()),
        ElementType::U8 => le::<u8, 1>(r, name, |v| v.to_le_bytes()),
        ElementType::U16 => le::<u16, 2>(r, name, |v| v.to_le_bytes()),
        ElementType::U32 => le::<u32, 4>(r, name, |v| v.to_le_bytes()),
        ElementType::U64 => le::<u64, 8>(r, name, |v| v.to_le_bytes()),
        ElementType::F16 => le::<tf2npy::half::f16, 2>(r, name, |v| v.to_bits().to_le_bytes()),
        ElementType::F32 => le::<f32, 4>(r, name, |v| v.to_bits().to_le_bytes()),
        ElementType::F64 => le::<f64, 8>(r, name, |v| v.to_bits().to_le_bytes()),
        ElementType::Complex64 => le::<Complex<f32>, 8>(r, name, |c| {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&c.re.to_bits().to_le_bytes());
            b[4..].copy_from_slice(&c.im.to_bits().to_le_bytes());
            b
        }),
        ElementType::Complex128 => le::<Complex<f64>, 16>(r, name, |c| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&c.re.to_bits().to_le_bytes());
            b[8..].copy_from_slice(&c.im.to_bits().to_le_bytes());
            b
        }),
        ElementType::Bytes => {
            let a = r.read::<Vec<u8>>(name).unwrap();
            let width = a.iter().map(Vec::len).max().unwrap_or(0).max(1);
            let mut data = Vec::new();
            for s in a.iter() {
                data.extend_from_slice(s);
                data.resize(data.len() + width - s.len(), 0);
            }
            let shape = a.shape().iter().map(|&d| d as u64).collect();
            return (format!("|S{width}"), shape, data);
        }
    };
    let descr = descr_of(info.element).to_string();
    (descr, shape, data)
}

/// The `.npy` descr of a fixed-size element type.
fn descr_of(e: ElementType) -> &'static str {
    match e {
        ElementType::Bool => "|b1",
        ElementType::I8 => "|i1",
        ElementType::I16 => "<i2",
        ElementType::I32 => "<i4",
        ElementType::I64 => "<i8",
        ElementType::U8 => "|u1",
        ElementType::U16 => "<u2",
        ElementType::U32 => "<u4",
        ElementType::U64 => "<u8",
        ElementType::F16 => "<f2",
        ElementType::F32 => "<f4",
        ElementType::F64 => "<f8",
        ElementType::Complex64 => "<c8",
        ElementType::Complex128 => "<c16",
        ElementType::Bytes => panic!("strings have no fixed descr"),
    }
}

/// Reads `name` through `read::<T>`, `for_each_chunk` and `for_each`, and checks each
/// against the expected `.npy` bit for bit.
fn check_tensor(id: &str, r: &Reader, name: &str, expected: &std::path::Path) {
    let want = read_npy(expected);
    let (descr, shape, data) = read_as_npy(r, name);
    assert_eq!(descr, want.descr, "{id} `{name}`: descr");
    assert_eq!(shape, want.shape, "{id} `{name}`: shape");
    assert!(data == want.data, "{id} `{name}`: values differ");
    let info = r.tensor(name).unwrap();
    assert_eq!(info.shape, want.shape, "{id} `{name}`: listed shape");
    assert_eq!(
        ElementType::from_descr(&want.descr),
        Some(info.element),
        "{id} `{name}`: listed element type"
    );
    // The byte visitor hands out exactly the .npy payload.
    let mut bytes = Vec::new();
    let (d, n) = r
        .for_each_chunk(name, |b| {
            bytes.extend_from_slice(b);
            Ok::<_, Error>(())
        })
        .unwrap();
    assert_eq!(d, want.descr, "{id} `{name}`: for_each_chunk descr");
    assert_eq!(n, want.data.len() as u64, "{id} `{name}`");
    assert!(bytes == want.data, "{id} `{name}`: for_each_chunk bytes");
}

fn case_opts(case: &Value) -> Options {
    let (_, args) = case_input(case);
    let mut o = Options::new();
    if args.iter().any(|a| a == "--constants") {
        o = o.constants(true);
    }
    if case["sparse_dense"].is_object() {
        // The manifest lists the stored parts of sibling sparse tensors.
        o = o.sparse(tf2npy::api::SparseMode::Keep);
    }
    o
}

#[test]
fn every_fixture_tensor_reads_bit_exactly() {
    let mut compared = 0;
    let mut raw = 0;
    let mut kinds = std::collections::HashSet::new();
    for case in manifest()["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let (input, _) = case_input(case);
        let opts = case_opts(case);
        let r = opts.open(&input).unwrap_or_else(|e| panic!("{id}: {e}"));
        let expected = expected_tensors(case);
        let listed: Vec<&str> = r.tensors().iter().map(|t| t.name.as_str()).collect();
        let want: Vec<&str> = expected
            .iter()
            .filter(|t| !t.skip)
            .map(|t| t.name.as_str())
            .collect();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(listed, want_sorted, "{id}: listed tensors");
        for t in &expected {
            if t.skip {
                assert!(r.tensor(&t.name).is_none(), "{id}: `{}` listed", t.name);
                assert!(
                    r.warnings().iter().any(|w| w.contains(&t.name)),
                    "{id}: no warning names `{}`: {:?}",
                    t.name,
                    r.warnings()
                );
                continue;
            }
            let info = r.tensor(&t.name).unwrap();
            assert_eq!(info.dtype.name(), t.tf_dtype, "{id} `{}`", t.name);
            assert_eq!(info.hidden, t.hidden, "{id} `{}`", t.name);
            assert_eq!(info.key, t.name, "{id}");
            check_tensor(id, &r, &t.name, t.expected.as_ref().unwrap());
            kinds.insert(info.element);
            compared += 1;
            if let Some(path) = &t.expected_raw {
                let rb = case_opts(case).raw_bits(true).open(&input).unwrap();
                check_tensor(id, &rb, &t.name, path);
                raw += 1;
            }
        }
        if let Some(dense) = case["sparse_dense"].as_object() {
            let r = Options::new().open(&input).unwrap();
            let name = dense["name"].as_str().unwrap();
            let info = r.tensor(name).unwrap();
            assert!(info.sparse, "{id}: `{name}` not sparse");
            check_tensor(
                id,
                &r,
                name,
                &fixtures().join(dense["expected"].as_str().unwrap()),
            );
            compared += 1;
        }
    }
    assert!(compared >= 287, "only {compared} tensors compared");
    assert!(raw >= 50, "only {raw} raw-bits tensors compared");
    // Every element type the dtype table produces was read at least once.
    assert_eq!(kinds.len(), 15, "{kinds:?}");
}

#[test]
fn var_names_and_short_names_read_like_the_cli_names_them() {
    let c = manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "v2/keras_adam")
        .unwrap()
        .clone();
    let (input, _) = case_input(&c);
    let r = Options::new().var_names(true).open(&input).unwrap();
    let mut n = 0;
    for t in expected_tensors(&c) {
        let Some(v) = &t.var_name else { continue };
        let info = r.tensor(v).unwrap_or_else(|| panic!("no `{v}`"));
        assert_eq!(info.key, t.name);
        check_tensor("var_names", &r, v, t.expected.as_ref().unwrap());
        // The key still finds it.
        assert_eq!(r.tensor(&t.name).unwrap().name, *v);
        n += 1;
    }
    assert_eq!(n, 14);
    let r = Options::new().short_names(true).open(&input).unwrap();
    let k = r.read::<f32>("optimizer/_trainable_variables/0").unwrap();
    assert_eq!(k.shape(), &[3, 4]);
    // Two unnamed tf.Variables share the name `Variable`: a usage error, as in the CLI.
    let err = Options::new()
        .var_names(true)
        .open(fixtures().join("v2/all_dtypes/ckpt-1"))
        .unwrap_err();
    assert!(err.is_usage(), "{err}");
    assert!(err.to_string().contains("`Variable`"), "{err}");
}

#[test]
fn wrong_types_and_names_are_usage_errors_naming_the_tensor() {
    let ckpt = fixtures().join("v2/all_dtypes/ckpt-1");
    let r = tf2npy::open(&ckpt).unwrap();
    let f32_key = "model/f32/.ATTRIBUTES/VARIABLE_VALUE";
    let err = r.read::<f64>(f32_key).unwrap_err();
    let msg = err.to_string();
    assert!(err.is_usage(), "{msg}");
    assert!(msg.contains(f32_key) && msg.contains("float32"), "{msg}");
    assert!(msg.contains("as f32, not as f64"), "{msg}");
    // bfloat16 widens to f32; with raw bits it is u16.
    let bf = "model/bf16/.ATTRIBUTES/VARIABLE_VALUE";
    assert!(r
        .read::<u16>(bf)
        .unwrap_err()
        .to_string()
        .contains("as f32"));
    assert_eq!(r.read::<f32>(bf).unwrap().len(), 10);
    let rb = Options::new().raw_bits(true).open(&ckpt).unwrap();
    let msg = rb.read::<f32>(bf).unwrap_err().to_string();
    assert!(msg.contains("as u16 (raw bits), not as f32"), "{msg}");
    // The visitors check the type too.
    let err = r
        .for_each(f32_key, |_: &[i32]| Ok::<_, Error>(()))
        .unwrap_err();
    assert!(err.is_usage(), "{err}");
    // An unknown name: suggestions, as with --tensor.
    let msg = r.read::<f32>("model/f33").unwrap_err().to_string();
    assert!(msg.contains("no tensor named `model/f33`"), "{msg}");
    assert!(msg.contains("did you mean"), "{msg}");
    // A variant tensor asked for by name: unsupported, naming it.
    let it = "model/it/.ATTRIBUTES/ITERATOR_STATE";
    let err = r.read::<u8>(it).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains(it), "{err}");
    // Strings are Vec<u8>, elements exactly as stored.
    let s = r
        .read::<Vec<u8>>("model/s_empty_scalar/.ATTRIBUTES/VARIABLE_VALUE")
        .unwrap();
    assert_eq!(s.ndim(), 0);
    assert_eq!(s[[]], b"");
}

#[test]
fn sparse_parts_read_by_name_and_dense_by_prefix() {
    let ckpt = fixtures().join("v2/sparse_siblings/ckpt");
    let r = tf2npy::open(&ckpt).unwrap();
    let dense = r.read::<f32>("sp").unwrap();
    assert_eq!(dense.shape(), &[3, 4]);
    // A part is not listed while densifying, but reads by name like --tensor.
    let part = "sp/indices/.ATTRIBUTES/VARIABLE_VALUE";
    assert!(r.tensor(part).is_none());
    assert_eq!(r.read::<i64>(part).unwrap().shape(), &[4, 2]);
}

#[test]
fn damaged_tensor_is_corrupt_naming_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("v2/keras_adam");
    for f in ["ckpt.index", "ckpt.data-00000-of-00001"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let data = dir.path().join("ckpt.data-00000-of-00001");
    let mut bytes = std::fs::read(&data).unwrap();
    // `optimizer/_trainable_variables/0` is stored at offset 220 (48 bytes).
    bytes[230] ^= 0x40;
    std::fs::write(&data, &bytes).unwrap();
    let key = "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE";
    let r = tf2npy::open(dir.path().join("ckpt")).unwrap();
    for err in [
        r.read::<f32>(key).unwrap_err(),
        r.for_each(key, |_: &[f32]| Ok::<_, Error>(())).unwrap_err(),
        r.for_each_chunk(key, |_| Ok::<_, Error>(())).unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(matches!(err, Error::Corrupt { .. }), "{msg}");
        assert!(msg.contains("ckpt.data-00000-of-00001"), "{msg}");
        assert!(msg.contains(&format!("tensor `{key}`")), "{msg}");
    }
    // Other tensors still read; without verification the damaged one reads too.
    assert_eq!(
        r.read::<f32>("optimizer/_trainable_variables/1/.ATTRIBUTES/VARIABLE_VALUE")
            .unwrap()
            .len(),
        4
    );
    let nv = Options::new()
        .verify(false)
        .open(dir.path().join("ckpt"))
        .unwrap();
    assert_eq!(nv.read::<f32>(key).unwrap().len(), 12);
}

/// A visitor's own error stops the stream and comes back as it was.
#[test]
fn visitor_errors_stop_the_stream() {
    #[derive(Debug)]
    enum Mine {
        Stop(u64),
        Lib(Error),
    }
    impl From<Error> for Mine {
        fn from(e: Error) -> Self {
            Mine::Lib(e)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("big");
    // 6 Mi float32: large enough to go through the read-ahead thread.
    let n = 6 << 20;
    let data: Vec<u8> = (0..n as u32)
        .flat_map(|i| (i as f32).to_le_bytes())
        .collect();
    write_bundle(&prefix, &[Tensor::new("w", 1, &[n as i64], data)], false);
    let r = tf2npy::open(&prefix).unwrap();
    let mut seen = 0u64;
    let err = r
        .for_each("w", |xs: &[f32]| {
            seen += xs.len() as u64;
            if seen > 100_000 {
                return Err(Mine::Stop(seen));
            }
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Mine::Stop(s) if s == seen), "{err:?}");
    assert!(seen < n);
    // The library's own errors convert into the visitor's type.
    match r.for_each("nope", |_: &[f32]| Ok::<_, Mine>(())) {
        Err(Mine::Lib(e)) => assert!(e.is_usage(), "{e}"),
        other => panic!("{other:?}"),
    }
    // Streamed whole: every element in order, in bounded slices and chunks.
    let mut next = 0u32;
    let mut largest = 0;
    let count = r
        .for_each("w", |xs: &[f32]| {
            largest = largest.max(xs.len());
            for &x in xs {
                assert_eq!(x, next as f32);
                next += 1;
            }
            Ok::<_, Error>(())
        })
        .unwrap();
    assert_eq!(count, n);
    assert!(largest <= 65_536, "{largest}");
    let mut biggest = 0;
    let (descr, bytes) = r
        .for_each_chunk("w", |b| {
            biggest = biggest.max(b.len());
            Ok::<_, Error>(())
        })
        .unwrap();
    assert_eq!((descr.as_str(), bytes), ("<f4", 4 * n));
    assert!(biggest <= 1 << 20, "{biggest}");
    // Readers are shared across threads.
    fn shared<T: Send + Sync>(_: &T) {}
    shared(&r);
    let sums: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| r.read::<f32>("w").unwrap().len()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sums, [n as usize, n as usize]);
}

/// Address-space budget of the child that streams (as in tests/it/memory.rs).
const BUDGET_KIB: u64 = 160 * 1024;
/// A float32 tensor 4x the budget, streamed as bytes.
const F32_BYTES: u64 = 640 << 20;
/// A bfloat16 tensor whose widened float32 form (200 MiB) exceeds the budget, streamed
/// as typed `f32` slices.
const BF16_BYTES: u64 = 100 << 20;
const CHILD_ENV: &str = "TF2NPY_API_MEMORY_CHILD";

/// The visitors' memory does not grow with the tensor: this test re-runs itself under
/// `ulimit -v` (the child streams, the parent checks what it saw).
#[test]
fn visitors_stream_tensors_larger_than_the_memory_budget() {
    if let Some(prefix) = std::env::var_os(CHILD_ENV) {
        let r = tf2npy::open(&prefix).unwrap();
        let (mut first, mut last, mut chunks) = (Vec::new(), Vec::new(), 0u64);
        let (descr, bytes) = r
            .for_each_chunk("big_f32", |b| {
                if first.is_empty() {
                    first = b[..4].to_vec();
                }
                last = b[b.len() - 4..].to_vec();
                chunks += 1;
                Ok::<_, Error>(())
            })
            .unwrap();
        let (mut head, mut tail) = (f32::NAN, f32::NAN);
        let n = r
            .for_each("big_bf16", |xs: &[f32]| {
                if head.is_nan() {
                    head = xs[0];
                }
                tail = xs[xs.len() - 1];
                Ok::<_, Error>(())
            })
            .unwrap();
        println!(
            "child: {descr} {bytes} {chunks} {:?} {:?} | {n} {head} {tail}",
            f32::from_le_bytes(first.try_into().unwrap()),
            f32::from_le_bytes(last.try_into().unwrap()),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ckpt");
    let sparse = |name: &str, dtype, elems: u64, len: u64, patches| {
        Tensor::zeros(name, dtype, vec![elems as i64], len, patches)
    };
    let tensors = [
        sparse(
            "big_f32",
            1,
            F32_BYTES / 4,
            F32_BYTES,
            vec![
                (0, 1.5f32.to_le_bytes().to_vec()),
                (F32_BYTES - 4, (-7.25f32).to_le_bytes().to_vec()),
            ],
        ),
        // bfloat16 1.0 (0x3f80) first, -6.0 (0xc0c0) last.
        sparse(
            "big_bf16",
            14,
            BF16_BYTES / 2,
            BF16_BYTES,
            vec![(0, vec![0x80, 0x3f]), (BF16_BYTES - 2, vec![0xc0, 0xc0])],
        ),
    ];
    write_bundle(&prefix, &tensors, false);
    // The budget really is too small to hold the widened tensor.
    let control = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -v {BUDGET_KIB} && exec python3 -c 'bytearray({})'",
                BF16_BYTES * 2
            ),
        ])
        .output()
        .unwrap();
    assert!(!control.status.success(), "the budget does not constrain");
    let me = std::env::current_exe().unwrap();
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {BUDGET_KIB} && exec \"$0\" \"$@\""))
        .arg(&me)
        .args([
            "api::visitors_stream_tensors_larger_than_the_memory_budget",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &prefix)
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "child failed under the budget: {stdout}\n{}",
        stderr_of(&run)
    );
    let want = format!(
        "child: <f4 {F32_BYTES} {} 1.5 -7.25 | {} 1 -6",
        F32_BYTES >> 20,
        BF16_BYTES / 2
    );
    assert!(stdout.contains(&want), "want `{want}` in: {stdout}");
}
