//! Unit tests of the bundle reader on hand-built checkpoints.

use super::*;
use crate::formats::checkpoint::slice_key::{encode_tensor_name_slice, TensorSlice};
use crate::formats::checkpoint::table::tests::TableBuilder;
use crate::formats::io::mask_crc;
use crate::formats::proto::tensor_slice_proto::{extent::HasLength, Extent};
use crate::formats::proto::{BundleEntryProto, BundleHeaderProto};
use crate::formats::proto::{TensorShapeProto, TensorSliceProto, VersionDef};
use prost::Message;
use std::collections::BTreeMap;
use std::io;

fn shape(dims: &[i64]) -> Option<TensorShapeProto> {
    crate::formats::tensor::tensorproto::shape_proto(dims)
}

fn slice_proto(ext: &[(i64, Option<i64>)]) -> TensorSliceProto {
    TensorSliceProto {
        extent: ext
            .iter()
            .map(|&(start, len)| Extent {
                start,
                has_length: len.map(HasLength::Length),
            })
            .collect(),
    }
}

/// The §2.6 layout of `strings` and its entry checksum (masked).
fn string_tensor(strings: &[&[u8]]) -> (Vec<u8>, u32) {
    let p = string_payload(strings);
    let lens: usize = p.len() - 4 - strings.iter().map(|s| s.len()).sum::<usize>();
    let mut crc = 0;
    for s in strings {
        crc = crc32c::crc32c_append(crc, &(s.len() as u32).to_le_bytes());
    }
    crc = crc32c::crc32c_append(crc, &p[lens..]);
    (p, mask_crc(crc))
}

/// The §2.6 layout of `strings`.
fn string_payload(strings: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut crc = 0;
    for s in strings {
        let mut v = s.len() as u64;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        crc = crc32c::crc32c_append(crc, &(s.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&mask_crc(crc).to_le_bytes());
    for s in strings {
        out.extend_from_slice(s);
    }
    out
}

/// A hand-built V2 checkpoint.
struct Ckpt {
    dir: tempfile::TempDir,
    header: BundleHeaderProto,
    entries: BTreeMap<Vec<u8>, BundleEntryProto>,
    data: Vec<Vec<u8>>,
}

impl Ckpt {
    fn new(num_shards: usize) -> Self {
        Ckpt {
            dir: tempfile::tempdir().unwrap(),
            header: BundleHeaderProto {
                num_shards: num_shards as i32,
                endianness: 0,
                version: Some(VersionDef {
                    producer: 1,
                    min_consumer: 0,
                    bad_consumers: vec![],
                }),
            },
            entries: BTreeMap::new(),
            data: vec![Vec::new(); num_shards],
        }
    }

    fn prefix(&self) -> PathBuf {
        self.dir.path().join("model.ckpt")
    }

    fn add(
        &mut self,
        key: &[u8],
        dtype: DataType,
        dims: &[i64],
        payload: &[u8],
        shard: usize,
    ) -> &mut BundleEntryProto {
        let data = &mut self.data[shard];
        data.push(0xee); // padding, as with data_alignment > 1
        let e = BundleEntryProto {
            dtype: dtype.code(),
            shape: shape(dims),
            shard_id: shard as i32,
            offset: data.len() as i64,
            size: payload.len() as i64,
            crc32c: mask_crc(crc32c::crc32c(payload)),
            slices: vec![],
        };
        data.extend_from_slice(payload);
        self.entries.insert(key.to_vec(), e);
        self.entries.get_mut(key).unwrap()
    }

    fn add_strings(&mut self, key: &[u8], dims: &[i64], strings: &[&[u8]], shard: usize) {
        let (payload, crc) = string_tensor(strings);
        self.add(key, DataType::String, dims, &payload, shard)
            .crc32c = crc;
    }

    fn add_f32(&mut self, key: &str, dims: &[i64], vals: &[f32]) -> &mut BundleEntryProto {
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add(key.as_bytes(), DataType::Float, dims, &bytes, 0)
    }

    /// A partitioned tensor of u16 `0..n` (row-major) split into `slices`.
    fn add_sliced_u16(&mut self, key: &str, dims: &[i64], slices: &[&[(i64, Option<i64>)]]) {
        let shape_u: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        let mut full = BundleEntryProto {
            dtype: DataType::Uint16.code(),
            shape: shape(dims),
            ..Default::default()
        };
        for (i, ext) in slices.iter().enumerate() {
            let sp = slice_proto(ext);
            let ts = TensorSlice::from_proto(&sp);
            let bx = ts.resolve(&shape_u).unwrap();
            let mut payload = Vec::new();
            let n: u64 = bx.iter().map(|&(_, l)| l).product();
            for j in 0..n {
                let (mut rem, mut lin) = (j, 0u64);
                for d in (0..bx.len()).rev() {
                    let stride: u64 = shape_u[d + 1..].iter().product();
                    lin += (bx[d].0 + rem % bx[d].1) * stride;
                    rem /= bx[d].1;
                }
                payload.extend_from_slice(&(lin as u16).to_le_bytes());
            }
            let sdims: Vec<i64> = bx.iter().map(|&(_, l)| l as i64).collect();
            let skey = encode_tensor_name_slice(key.as_bytes(), &ts);
            let shard = i % self.data.len();
            self.add(&skey, DataType::Uint16, &sdims, &payload, shard);
            full.slices.push(sp);
        }
        self.entries.insert(key.as_bytes().to_vec(), full);
    }

    fn write(&self) {
        let mut kvs = vec![(Vec::new(), self.header.encode_to_vec())];
        kvs.extend(
            self.entries
                .iter()
                .map(|(k, e)| (k.clone(), e.encode_to_vec())),
        );
        let table = TableBuilder {
            per_block: 3,
            snappy: false,
        }
        .build(&kvs);
        std::fs::write(index_filename(&self.prefix()), table).unwrap();
        let n = self.data.len() as i32;
        for (i, d) in self.data.iter().enumerate() {
            std::fs::write(data_filename(&self.prefix(), i as i32, n), d).unwrap();
        }
    }

    fn open(&self) -> Result<Bundle> {
        self.write();
        Bundle::open(&self.prefix(), &self.prefix())
    }

    fn err(&self) -> String {
        self.open().unwrap_err().to_string()
    }
}

fn fixed_bytes(b: &Bundle, name: &str, verify: bool) -> Result<Vec<u8>> {
    crate::source::testing::read_fixed(b, name, verify)
}

fn strings(b: &Bundle, name: &str, verify: bool) -> Result<(u64, Vec<Vec<u8>>)> {
    crate::source::testing::read_strings(b, name, verify)
}

fn iota_u16(n: u16) -> Vec<u8> {
    (0..n).flat_map(|i| i.to_le_bytes()).collect()
}

fn sample() -> Ckpt {
    let mut c = Ckpt::new(2);
    c.add_f32("a", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    c.add_f32("empty", &[0, 3], &[]);
    let s: [&[u8]; 4] = [b"", b"x", &[0u8, 0xff, 0], &[b'y'; 200]];
    c.add_strings(b"s", &[2, 2], &s, 1);
    c.add_strings(b"s_empty", &[0], &[], 1);
    c.add_strings(OBJECT_GRAPH_KEY.as_bytes(), &[], &[b"graph"], 0);
    c.add(b"var", DataType::Variant, &[1], &[1, 2, 3, 4, 5, 6], 0);
    c.add_sliced_u16(
        "rows",
        &[10, 3],
        &[
            &[(0, Some(4)), (0, Some(3))],
            &[(4, Some(3)), (0, Some(3))],
            &[(7, Some(3)), (0, None)],
        ],
    );
    c.add_sliced_u16(
        "cols",
        &[4, 6],
        &[&[(0, None), (3, Some(3))], &[(0, None), (0, Some(3))]],
    );
    c
}

#[test]
fn reads_plain_string_and_sliced_tensors() {
    let c = sample();
    let b = c.open().unwrap();
    let names: Vec<&str> = b.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            OBJECT_GRAPH_KEY,
            "a",
            "cols",
            "empty",
            "rows",
            "s",
            "s_empty",
            "var"
        ]
    );
    let e = |n: &str| b.entries().iter().find(|e| e.name == n).unwrap().clone();
    assert!(e(OBJECT_GRAPH_KEY).hidden && !e("a").hidden);
    assert_eq!(e("a").location, "shard 0 @ 1");
    assert_eq!(e("rows").location, "3 slices in 2 shards");
    assert_eq!(e("rows").shape, [10, 3]);
    assert_eq!(e("rows").stored_bytes, 60);
    assert_eq!(e("var").dtype, DataType::Variant);
    let a: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(fixed_bytes(&b, "a", true).unwrap(), a);
    assert_eq!(fixed_bytes(&b, "empty", true).unwrap(), Vec::<u8>::new());
    assert_eq!(fixed_bytes(&b, "rows", true).unwrap(), iota_u16(30));
    assert_eq!(fixed_bytes(&b, "cols", true).unwrap(), iota_u16(24));
    let (max, s) = strings(&b, "s", true).unwrap();
    assert_eq!(max, 200);
    assert_eq!(
        s,
        vec![
            b"".to_vec(),
            b"x".to_vec(),
            vec![0, 0xff, 0],
            vec![b'y'; 200]
        ]
    );
    assert_eq!(strings(&b, "s_empty", true).unwrap(), (0, vec![]));
    let i = names.iter().position(|&n| n == "var").unwrap();
    assert!(matches!(b.open(i, true), Err(Error::Unsupported { .. })));
    let files = b.input_files();
    assert_eq!(files.len(), 3);
    assert!(files[0].0.ends_with("model.ckpt.data-00000-of-00002"));
    assert!(files[2].0.ends_with("model.ckpt.index"));
}

#[test]
fn reads_sliced_strings() {
    let mut c = Ckpt::new(1);
    let all: Vec<Vec<u8>> = (0..6).map(|i| vec![b'a' + i as u8; i + 1]).collect();
    let mut full = BundleEntryProto {
        dtype: DataType::String.code(),
        shape: shape(&[2, 3]),
        ..Default::default()
    };
    for ext in [[(0, None), (0, Some(1))], [(0, None), (1, Some(2))]] {
        let sp = slice_proto(&ext);
        let ts = TensorSlice::from_proto(&sp);
        let (c0, cn) = (ext[1].0 as usize, ext[1].1.unwrap() as usize);
        let part: Vec<&[u8]> = (0..2)
            .flat_map(|r| (c0..c0 + cn).map(move |col| (r, col)))
            .map(|(r, col)| all[r * 3 + col].as_slice())
            .collect();
        c.add_strings(
            &encode_tensor_name_slice(b"t", &ts),
            &[2, cn as i64],
            &part,
            0,
        );
        full.slices.push(sp);
    }
    c.entries.insert(b"t".to_vec(), full);
    let b = c.open().unwrap();
    assert_eq!(b.entries().len(), 1);
    let (max, got) = strings(&b, "t", true).unwrap();
    assert_eq!(max, 6);
    assert_eq!(got, all);
}

#[test]
fn rejects_bad_headers() {
    let mut c = sample();
    c.header.endianness = 1;
    assert!(matches!(c.open(), Err(Error::Unsupported { .. })));
    assert!(c.err().contains("big-endian"));
    let mut c = sample();
    c.header.version.as_mut().unwrap().min_consumer = 2;
    assert!(c.err().contains("reader of format version 2"));
    let mut c = sample();
    c.header.version.as_mut().unwrap().bad_consumers = vec![1];
    assert!(c.err().contains("disallows"));
    // A V1 table: the "" value is a SavedTensorSlices (field 1, length-delimited).
    let c = Ckpt::new(1);
    let table = TableBuilder {
        per_block: 3,
        snappy: false,
    }
    .build(&[(Vec::new(), vec![0x0a, 0x00])]);
    std::fs::write(index_filename(&c.prefix()), table).unwrap();
    let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
    assert!(err.to_string().contains("holds a V1 checkpoint"), "{err}");
    let table = TableBuilder {
        per_block: 3,
        snappy: false,
    }
    .build(&[(b"a".to_vec(), vec![])]);
    std::fs::write(index_filename(&c.prefix()), table).unwrap();
    let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
    assert!(err.to_string().contains("not the header entry"), "{err}");
    let table = TableBuilder {
        per_block: 3,
        snappy: false,
    }
    .build(&[(Vec::new(), vec![0x08, 0x01, 0x10, 0x07])]);
    std::fs::write(index_filename(&c.prefix()), table).unwrap();
    let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
    assert!(err.to_string().contains("unknown endianness"), "{err}");
    let table = TableBuilder {
        per_block: 3,
        snappy: false,
    }
    .build(&[(Vec::new(), vec![0x08, 0x01]), (b"x".to_vec(), vec![0xff])]);
    std::fs::write(index_filename(&c.prefix()), table).unwrap();
    let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
    assert!(
        err.to_string()
            .contains("tensor `x`: the index entry is not a BundleEntryProto"),
        "{err}"
    );
}

#[test]
fn rejects_bad_entries() {
    let check = |f: &dyn Fn(&mut Ckpt), want: &str| {
        let mut c = sample();
        f(&mut c);
        let err = c.err();
        assert!(err.contains(want), "want {want:?} in {err}");
    };
    check(
        &|c| c.entries.get_mut(b"a".as_slice()).unwrap().shard_id = 2,
        "shard_id 2 is out of range",
    );
    check(
        &|c| c.entries.get_mut(b"a".as_slice()).unwrap().shard_id = -1,
        "shard_id -1 is out of range",
    );
    check(
        &|c| c.entries.get_mut(b"a".as_slice()).unwrap().offset = 1000,
        "lies past the end of",
    );
    check(
        &|c| c.entries.get_mut(b"a".as_slice()).unwrap().offset = -5,
        "negative data offset",
    );
    check(
        &|c| c.entries.get_mut(b"a".as_slice()).unwrap().offset = i64::MAX,
        "lies past the end of",
    );
    check(
        &|c| c.entries.get_mut(b"a".as_slice()).unwrap().size = 20,
        "the entry says 20 bytes, but 6 float32 elements",
    );
    check(
        &|c| c.entries.get_mut(b"a".as_slice()).unwrap().dtype = 99,
        "invalid or unknown dtype value 99",
    );
    check(
        &|c| c.entries.get_mut(b"a".as_slice()).unwrap().shape = shape(&[-2]),
        "negative dimension",
    );
    check(
        &|c| c.entries.get_mut(b"a".as_slice()).unwrap().shape = shape(&[1 << 40, 1 << 40]),
        "more elements than fit",
    );
    check(
        &|c| c.entries.get_mut(b"s".as_slice()).unwrap().size = 7,
        "too few for 4 strings",
    );
    check(
        &|c| c.entries.get_mut(b"s".as_slice()).unwrap().shape = shape(&[1 << 40]),
        "too few for",
    );
    let rows = |c: &mut Ckpt| {
        c.entries
            .get_mut(b"rows".as_slice())
            .unwrap()
            .slices
            .clone()
    };
    check(
        &|c| {
            let mut s = rows(c);
            s.pop();
            c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
        },
        "the slices hold 21 elements but the tensor has 30",
    );
    check(
        &|c| {
            let mut s = rows(c);
            s.push(s[0].clone());
            c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
        },
        "slices `0,4:0,3` and `0,4:0,3` overlap",
    );
    check(
        &|c| {
            let mut s = rows(c);
            s[0] = slice_proto(&[(0, Some(4))]);
            c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
        },
        "has 1 dimensions but the tensor has 2",
    );
    check(
        &|c| {
            let mut s = rows(c);
            s[2] = slice_proto(&[(7, Some(4)), (0, None)]);
            c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
        },
        "lies outside the tensor's size 10",
    );
    check(
        &|c| {
            let mut s = rows(c);
            // Same rows, spelled differently: the stored key does not match.
            s[2] = slice_proto(&[(7, Some(3)), (0, Some(3))]);
            c.entries.get_mut(b"rows".as_slice()).unwrap().slices = s;
        },
        "slice `7,3:0,3`: no entry under its key",
    );
    let key0 = encode_tensor_name_slice(
        b"rows",
        &TensorSlice::from_proto(&slice_proto(&[(0, Some(4)), (0, Some(3))])),
    );
    let k = key0.clone();
    check(
        &move |c| c.entries.get_mut(&k).unwrap().shape = shape(&[3, 4]),
        "stored with shape [3, 4], but the slice has shape [4, 3]",
    );
    let k = key0.clone();
    check(
        &move |c| c.entries.get_mut(&k).unwrap().dtype = DataType::Int16.code(),
        "stored as int16, but the tensor is uint16",
    );
    let k = key0.clone();
    check(
        &move |c| c.entries.get_mut(&k).unwrap().size = 2,
        "slice `0,4:0,3`: the entry says 2 bytes",
    );
    let k = key0.clone();
    check(
        &move |c| {
            c.entries.get_mut(&k).unwrap().slices = vec![slice_proto(&[(0, None), (0, None)])]
        },
        "itself partitioned",
    );
}

#[test]
fn rejects_missing_shard_naming_it() {
    let c = sample();
    c.write();
    std::fs::remove_file(data_filename(&c.prefix(), 1, 2)).unwrap();
    let err = Bundle::open(&c.prefix(), &c.prefix()).unwrap_err();
    let Error::Io { path, err: io_err } = &err else {
        panic!("{err}")
    };
    assert!(path.ends_with("model.ckpt.data-00001-of-00002"));
    assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains("data file is missing (tensor `"),
        "{err}"
    );
}

#[test]
fn finds_renumbered_shards() {
    let c = sample();
    c.write();
    let from = data_filename(&c.prefix(), 1, 2);
    std::fs::rename(&from, data_filename(&c.prefix(), 1, 3)).unwrap();
    let b = Bundle::open(&c.prefix(), &c.prefix()).unwrap();
    assert_eq!(strings(&b, "s", true).unwrap().1.len(), 4);
}

/// Flips one bit of shard `shard` at `offset`.
fn flip(c: &Ckpt, shard: i32, offset: u64) {
    let p = data_filename(&c.prefix(), shard, c.data.len() as i32);
    let mut d = std::fs::read(&p).unwrap();
    d[offset as usize] ^= 0x10;
    std::fs::write(&p, d).unwrap();
}

#[test]
fn rejects_checksum_mismatches() {
    let c = sample();
    c.write();
    let a = c.entries[b"a".as_slice()].clone();
    flip(&c, 0, a.offset as u64 + 5);
    let b = Bundle::open(&c.prefix(), &c.prefix()).unwrap();
    let err = fixed_bytes(&b, "a", true).unwrap_err().to_string();
    assert!(
        err.contains("model.ckpt.data-00000-of-00002: tensor `a`: checksum mismatch"),
        "{err}"
    );
    assert!(
        err.contains("use --no-verify only to recover data"),
        "{err}"
    );
    assert_eq!(fixed_bytes(&b, "a", false).unwrap().len(), 24);

    // A slice's checksum.
    let key0 = encode_tensor_name_slice(
        b"rows",
        &TensorSlice::from_proto(&slice_proto(&[(4, Some(3)), (0, Some(3))])),
    );
    let e = c.entries[&key0].clone();
    flip(&c, e.shard_id, e.offset as u64);
    let err = fixed_bytes(&b, "rows", true).unwrap_err().to_string();
    assert!(
        err.contains("tensor `rows`: slice `4,3:0,3`: checksum mismatch"),
        "{err}"
    );
    assert_eq!(fixed_bytes(&b, "rows", false).unwrap().len(), 60);

    // String bytes, then string lengths.
    let s = c.entries[b"s".as_slice()].clone();
    let sb = |c: &Ckpt| Bundle::open(&c.prefix(), &c.prefix()).unwrap();
    flip(&c, 1, s.offset as u64 + 10);
    let err = strings(&sb(&c), "s", true).unwrap_err().to_string();
    assert!(err.contains("tensor `s`: checksum mismatch"), "{err}");
    assert!(strings(&sb(&c), "s", false).is_ok());
    flip(&c, 1, s.offset as u64 + 10);
    flip(&c, 1, s.offset as u64 + 6);
    let err = strings(&sb(&c), "s", true).unwrap_err().to_string();
    assert!(err.contains("string length checksum mismatch"), "{err}");
}

#[test]
fn rejects_bad_string_layouts() {
    let check = |payload: Vec<u8>, n: i64, want: &str| {
        let mut c = Ckpt::new(1);
        c.add(b"s", DataType::String, &[n], &payload, 0);
        let b = c.open().unwrap();
        let err = strings(&b, "s", false).unwrap_err().to_string();
        assert!(err.contains(want), "want {want:?} in {err}");
    };
    // Lengths claim more bytes than follow.
    let mut p = string_payload(&[b"abc", b"de"]);
    p.truncate(p.len() - 1);
    check(p, 2, "add up to 5 bytes, but only 4 bytes follow");
    // A varint running past the data.
    check(
        vec![0x80, 0x80, 0x80, 0x80, 0x80],
        1,
        "is malformed or runs past",
    );
    // A length as large as u64 allows.
    let mut p = vec![0xff; 9];
    p.extend_from_slice(&[0x01, 0, 0, 0, 0]);
    check(p, 1, "add up to 18446744073709551615 bytes");
    // Lengths that overflow when summed.
    let mut p = vec![0xff; 9];
    p.push(0x01);
    p.extend_from_slice(&[0xff; 9]);
    p.push(0x01);
    p.extend_from_slice(&[0, 0, 0, 0]);
    check(p, 2, "overflow");
    // The length checksum cut off.
    check(
        vec![0x80, 0x00, 0x80, 0x00, 0x00, 0x00],
        2,
        "checksum is missing",
    );
}

#[test]
fn accepts_full_slices_from_the_full_entry() {
    let mut c = Ckpt::new(1);
    c.add("f".as_bytes(), DataType::Uint16, &[3], &iota_u16(3), 0)
        .slices = vec![slice_proto(&[(0, None)])];
    let b = c.open().unwrap();
    assert_eq!(b.entries()[0].location, "1 slice in 1 shard");
    assert_eq!(fixed_bytes(&b, "f", true).unwrap(), iota_u16(3));
}

/// A checksum error names the file, the tensor and the stored checksum, never the one
/// computed from the data: a CRC32C of a few bytes gives the bytes away (a data shard
/// can be a symlink to any file).
#[test]
fn checksum_errors_do_not_leak_the_data() {
    let secret = *b"k3y!";
    let mut c = Ckpt::new(1);
    c.add(b"t", DataType::Uint32, &[1], &secret, 0).crc32c = mask_crc(0x1234_5678);
    let b = c.open().unwrap();
    let err = fixed_bytes(&b, "t", true).unwrap_err().to_string();
    let computed = crc32c::crc32c(&secret);
    for form in [
        format!("{computed:#010x}"),
        format!("{computed:x}"),
        computed.to_string(),
    ] {
        assert!(!err.contains(&form), "{err} leaks {form}");
    }
    assert!(
        err.contains("model.ckpt.data-00000-of-00001: tensor `t`"),
        "{err}"
    );
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains("expected 0x12345678"), "{err}");

    // The string length checksum, and the checksum of the string bytes.
    let mut c = Ckpt::new(1);
    c.add_strings(b"s", &[1], &[&secret], 0);
    c.write();
    let s = c.entries[b"s".as_slice()].clone();
    let p = data_filename(&c.prefix(), 0, 1);
    let mut d = std::fs::read(&p).unwrap();
    d[s.offset as usize + 1] ^= 1; // the stored length checksum
    std::fs::write(&p, &d).unwrap();
    let b = Bundle::open(&c.prefix(), &c.prefix()).unwrap();
    let err = strings(&b, "s", true).unwrap_err().to_string();
    let len_crc = crc32c::crc32c(&4u32.to_le_bytes());
    assert!(err.contains("string length checksum mismatch"), "{err}");
    assert!(!err.contains(&format!("{len_crc:#010x}")), "{err}");
}
