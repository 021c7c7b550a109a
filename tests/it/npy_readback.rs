//! ndarray-npy as a second, independent reader of what tf2npy writes, next to numpy's
//! (tests/it/numpy.rs) and our own parser (`common::parse_npy`).
//!
//! `common::parse_npy` hands every `.npy` the tests parse (single files, stdout, and
//! each `.npz` member) to [`check_npy`], and `common::read_npz` hands every archive to
//! [`check_npz`], which reopens it with ndarray-npy's own `NpzReader` (its own ZIP
//! reader, CRC-32 and inflate). So every `.npy` / `.npz` output compared anywhere in
//! the suite is also read by ndarray-npy, and its values must equal the payload bit
//! for bit.
//!
//! What ndarray-npy 0.10 cannot read: it implements `ReadableElement` only for
//! `bool`, the fixed-size integers, `f32`, `f64` and (feature `num-complex-0_4`)
//! `Complex<f32>` / `Complex<f64>`. It has no element type for float16 (`<f2`: there
//! is no `half` support) nor for byte strings (`|S<n>`: no string or custom element
//! support). For those two, [`check_npy`] still parses the header with ndarray-npy's
//! `Header::from_reader` (descr, `fortran_order`, shape) and checks the payload length
//! is exactly the shape's element count times the item size; their values are checked
//! against numpy's only (`common::assert_same`). In a `.npz`, such members are listed
//! by `NpzReader::names` but not read by it.

use crate::common::*;
use ndarray_npy::npy::header::{Header, Layout};
use ndarray_npy::{NpzReader, ReadNpyExt, ReadableElement};
use std::io::Cursor;
use std::path::Path;
use tf2npy::ndarray::{ArrayD, IxDyn, OwnedRepr};
use tf2npy::num_complex::Complex;

/// How far ndarray-npy could check an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// Read whole; values equal the payload bit for bit.
    Values,
    /// `<f2` or `|S<n>`: header parsed and payload length checked only.
    HeaderOnly,
}

/// Little-endian bytes of an element as ndarray-npy decoded it (floats by their bits,
/// so NaN payloads and signed zeros compare exactly).
trait Le: ReadableElement {
    fn put_le(&self, out: &mut Vec<u8>);
}

macro_rules! le_int {
    ($($t:ty),*) => {$(
        impl Le for $t {
            fn put_le(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_int!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Le for bool {
    fn put_le(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}
impl Le for f32 {
    fn put_le(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_le_bytes());
    }
}
impl Le for f64 {
    fn put_le(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_le_bytes());
    }
}
impl Le for Complex<f32> {
    fn put_le(&self, out: &mut Vec<u8>) {
        self.re.put_le(out);
        self.im.put_le(out);
    }
}
impl Le for Complex<f64> {
    fn put_le(&self, out: &mut Vec<u8>) {
        self.re.put_le(out);
        self.im.put_le(out);
    }
}

/// Compares an array ndarray-npy read with our parse of the same bytes.
fn same<T: Le>(what: &str, a: ArrayD<T>, npy: &Npy) {
    let shape: Vec<u64> = a.shape().iter().map(|&d| d as u64).collect();
    assert_eq!(shape, npy.shape, "{what}: ndarray-npy shape");
    assert!(
        a.is_standard_layout(),
        "{what}: ndarray-npy reads Fortran order"
    );
    let mut bytes = Vec::with_capacity(npy.data.len());
    for x in a.iter() {
        x.put_le(&mut bytes);
    }
    assert!(
        bytes == npy.data,
        "{what}: ndarray-npy reads other values ({} bytes, our payload {})",
        bytes.len(),
        npy.data.len()
    );
}

/// Reads `.npy` bytes with ndarray-npy as `T`.
fn read_as<T: Le>(what: &str, bytes: &[u8], npy: &Npy) {
    let a = ArrayD::<T>::read_npy(Cursor::new(bytes))
        .unwrap_or_else(|e| panic!("{what}: ndarray-npy cannot read it: {e}"));
    same(what, a, npy);
}

/// Checks `.npy` bytes (whose parse by `common::parse_npy` is `npy`) with ndarray-npy.
pub fn check_npy(what: &str, bytes: &[u8], npy: &Npy) -> Checked {
    match npy.descr.as_str() {
        "|b1" => read_as::<bool>(what, bytes, npy),
        "|i1" => read_as::<i8>(what, bytes, npy),
        "<i2" => read_as::<i16>(what, bytes, npy),
        "<i4" => read_as::<i32>(what, bytes, npy),
        "<i8" => read_as::<i64>(what, bytes, npy),
        "|u1" => read_as::<u8>(what, bytes, npy),
        "<u2" => read_as::<u16>(what, bytes, npy),
        "<u4" => read_as::<u32>(what, bytes, npy),
        "<u8" => read_as::<u64>(what, bytes, npy),
        "<f4" => read_as::<f32>(what, bytes, npy),
        "<f8" => read_as::<f64>(what, bytes, npy),
        "<c8" => read_as::<Complex<f32>>(what, bytes, npy),
        "<c16" => read_as::<Complex<f64>>(what, bytes, npy),
        d => {
            // `<f2` and `|S<n>`: ndarray-npy has no element type for them.
            let item: usize = match d {
                "<f2" => 2,
                _ => d
                    .strip_prefix("|S")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{what}: unexpected descr {d}")),
            };
            let mut r = Cursor::new(bytes);
            let h = Header::from_reader(&mut r)
                .unwrap_or_else(|e| panic!("{what}: ndarray-npy cannot parse the header: {e}"));
            assert_eq!(
                h.type_descriptor.to_string(),
                format!("'{d}'"),
                "{what}: ndarray-npy descr"
            );
            assert_eq!(h.layout, Layout::Standard, "{what}");
            let shape: Vec<u64> = h.shape.iter().map(|&s| s as u64).collect();
            assert_eq!(shape, npy.shape, "{what}: ndarray-npy shape");
            let want = h.shape.iter().product::<usize>() * item;
            let rest = bytes.len() - r.position() as usize;
            assert_eq!(
                rest, want,
                "{what}: payload length after ndarray-npy's header"
            );
            return Checked::HeaderOnly;
        }
    }
    Checked::Values
}

/// Reads member `i` of an archive with ndarray-npy's `NpzReader` as `T`.
fn member_as<T: Le>(what: &str, z: &mut NpzReader<std::fs::File>, i: usize, npy: &Npy) {
    let a = z
        .by_index::<OwnedRepr<T>, IxDyn>(i)
        .unwrap_or_else(|e| panic!("{what}: ndarray-npy cannot read the member: {e}"));
    same(what, a, npy);
}

/// Reopens the `.npz` at `path` with ndarray-npy: the member names (and order) must be
/// `members`' and every member it has an element type for must hold the same values.
/// Returns how each member was checked.
pub fn check_npz(path: &Path, members: &[(String, Npy)]) -> Vec<Checked> {
    let what = path.display().to_string();
    let f = std::fs::File::open(path).unwrap();
    let mut z = NpzReader::new(f).unwrap_or_else(|e| panic!("{what}: ndarray-npy: {e}"));
    let names = z.names().unwrap();
    let ours: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ours, "{what}: ndarray-npy member names");
    let mut out = Vec::new();
    for (i, (name, npy)) in members.iter().enumerate() {
        let w = format!("{what} member `{name}`");
        match npy.descr.as_str() {
            "|b1" => member_as::<bool>(&w, &mut z, i, npy),
            "|i1" => member_as::<i8>(&w, &mut z, i, npy),
            "<i2" => member_as::<i16>(&w, &mut z, i, npy),
            "<i4" => member_as::<i32>(&w, &mut z, i, npy),
            "<i8" => member_as::<i64>(&w, &mut z, i, npy),
            "|u1" => member_as::<u8>(&w, &mut z, i, npy),
            "<u2" => member_as::<u16>(&w, &mut z, i, npy),
            "<u4" => member_as::<u32>(&w, &mut z, i, npy),
            "<u8" => member_as::<u64>(&w, &mut z, i, npy),
            "<f4" => member_as::<f32>(&w, &mut z, i, npy),
            "<f8" => member_as::<f64>(&w, &mut z, i, npy),
            "<c8" => member_as::<Complex<f32>>(&w, &mut z, i, npy),
            "<c16" => member_as::<Complex<f64>>(&w, &mut z, i, npy),
            // `<f2`, `|S<n>`: no ndarray-npy element type (see the module comment).
            _ => {
                out.push(Checked::HeaderOnly);
                continue;
            }
        }
        out.push(Checked::Values);
    }
    out
}

/// The member names of the `.npz` at `path` and float32 member `name`, as ndarray-npy
/// reads them (for archives too large for [`check_npz`] to read whole).
pub fn npz_names_and_f32(path: &Path, name: &str) -> (Vec<String>, Vec<f32>) {
    let mut z = NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let names = z.names().unwrap();
    let a: ArrayD<f32> = z
        .by_name(name)
        .unwrap_or_else(|e| panic!("{}: ndarray-npy: {e}", path.display()));
    (names, a.iter().copied().collect())
}

/// Every fixture converted to a stored and a deflated `.npz` and to a folder, each
/// read back by ndarray-npy and compared with the expected arrays: every dtype
/// ndarray-npy can read is read, and only `<f2` and `|S<n>` are header-only.
#[test]
fn every_fixture_output_reads_back_with_ndarray_npy() {
    let dir = tempfile::tempdir().unwrap();
    let mut values = std::collections::BTreeSet::new();
    let mut header_only = std::collections::BTreeSet::new();
    let mut arrays = 0;
    for case in manifest()["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let stem = id.replace('/', "_");
        let (input, mut args) = case_input(case);
        if case["sparse_dense"].is_object() {
            args.extend(["--sparse".into(), "keep".into()]);
        }
        let expected = expected_tensors(case);
        for (form, extra) in [
            ("npz", vec![]),
            ("npz", vec!["--compress"]),
            ("folder", vec![]),
        ] {
            let out = match form {
                "npz" => dir.path().join(format!("{stem}{}.npz", extra.len())),
                _ => dir.path().join(format!("{stem}/")),
            };
            let mut cmd: Vec<String> = vec![input.to_string_lossy().into_owned(), "--all".into()];
            cmd.extend(args.clone());
            cmd.extend(extra.iter().map(|s| s.to_string()));
            cmd.extend(["-q".into(), "-o".into(), out.to_string_lossy().into_owned()]);
            ok(&cmd);
            // `read_npz` runs `check_npz`; run it here too to see the outcomes.
            let (members, checked) = if form == "npz" {
                let m = read_npz(&out);
                let c = check_npz(&out, &m);
                (m, c)
            } else {
                (Vec::new(), Vec::new())
            };
            for t in expected.iter().filter(|t| !t.skip) {
                let want = t.expected.as_ref().unwrap();
                let descr = read_npy(want).descr;
                let how = if form == "npz" {
                    let i = members.iter().position(|(n, _)| *n == t.name).unwrap();
                    assert_same(id, &t.name, &members[i].1, want);
                    checked[i]
                } else {
                    let file = out.join(format!("{}.npy", t.name));
                    let bytes = std::fs::read(&file).unwrap();
                    let npy = parse_npy(&bytes);
                    assert_same(id, &t.name, &npy, want);
                    check_npy(&file.display().to_string(), &bytes, &npy)
                };
                let key = if descr.starts_with("|S") {
                    "|S".to_string()
                } else {
                    descr
                };
                match how {
                    Checked::Values => values.insert(key),
                    Checked::HeaderOnly => header_only.insert(key),
                };
                arrays += 1;
            }
        }
    }
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    assert_eq!(
        values,
        [
            "<c16", "<c8", "<f4", "<f8", "<i2", "<i4", "<i8", "<u2", "<u4", "<u8", "|b1", "|i1",
            "|u1"
        ],
        "dtypes ndarray-npy read"
    );
    let header_only: Vec<&str> = header_only.iter().map(String::as_str).collect();
    assert_eq!(header_only, ["<f2", "|S"], "dtypes checked by header only");
    assert!(arrays >= 3 * 286, "only {arrays} arrays read back");
}

/// The checks can fail: a payload or shape that differs from what ndarray-npy reads is
/// caught, for value-checked and header-only dtypes alike.
#[test]
fn readback_catches_differences() {
    for rel in [
        "expected/tensorproto/float32_2x3.npy",
        "expected/tensorproto/float16_2x2.npy",
    ] {
        let bytes = std::fs::read(fixtures().join(rel)).unwrap();
        let npy = parse_npy(&bytes);
        let mut flipped = npy.data.clone();
        flipped[0] ^= 1;
        let bad_data = Npy {
            data: flipped,
            descr: npy.descr.clone(),
            shape: npy.shape.clone(),
            header: npy.header.clone(),
        };
        let mut bad_shape = Npy {
            data: npy.data.clone(),
            descr: npy.descr.clone(),
            shape: npy.shape.clone(),
            header: npy.header.clone(),
        };
        bad_shape.shape.reverse();
        bad_shape.shape.push(1);
        let value_checked = npy.descr == "<f4";
        let r = std::panic::catch_unwind(|| check_npy(rel, &bytes, &bad_data));
        assert_eq!(r.is_err(), value_checked, "{rel}: changed payload");
        let r = std::panic::catch_unwind(|| check_npy(rel, &bytes, &bad_shape));
        assert!(r.is_err(), "{rel}: changed shape not caught");
        // A truncated file: the payload length no longer fits the header.
        let cut = &bytes[..bytes.len() - 1];
        let short = Npy {
            data: npy.data[..npy.data.len() - 1].to_vec(),
            descr: npy.descr.clone(),
            shape: npy.shape.clone(),
            header: npy.header.clone(),
        };
        let r = std::panic::catch_unwind(|| check_npy(rel, cut, &short));
        assert!(r.is_err(), "{rel}: truncated file not caught");
    }
}
