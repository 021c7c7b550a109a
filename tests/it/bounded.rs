//! Bounded work for crafted checkpoints (issue 15): time and memory grow with what the
//! input really holds, not with the slice or entry count it claims. Inputs are made
//! here; the child runs under `ulimit -v` as in `memory.rs`. Time figures live in
//! `bench/slices.py` and BENCHMARKS.md, not here.

use crate::bundle_writer::{mask, shape_proto, table};
use crate::common::run_limited;
use prost::Message;
use std::path::Path;
use tf2npy::formats::checkpoint::slice_key::{encode_tensor_name_slice, Extent, TensorSlice};
use tf2npy::formats::proto::{
    tensor_slice_proto, BundleEntryProto, BundleHeaderProto, TensorSliceProto, VersionDef,
};

/// The test binary's allocator: the system one, counting the bytes each thread has
/// allocated and not freed, and the peak, so a test can bound what a library call
/// holds (`heap_peak_during`).
struct Counting;

thread_local! {
    static LIVE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
    static PEAK: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get() + delta;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        count(-(layout.size() as isize));
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        count(new as isize - layout.size() as isize);
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result and the most heap memory this thread held above
/// what it held before, while `f` ran.
fn heap_peak_during<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let base = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(|p| p.get());
    (out, (peak - base).max(0) as u64)
}

fn slice_proto(b: &[(u64, u64)]) -> TensorSliceProto {
    TensorSliceProto {
        extent: b
            .iter()
            .map(|&(s, l)| tensor_slice_proto::Extent {
                start: s as i64,
                has_length: Some(tensor_slice_proto::extent::HasLength::Length(l as i64)),
            })
            .collect(),
    }
}

/// Writes a one-shard V2 checkpoint holding tensor `name` (`dtype`, `shape`) as the
/// slices `boxes`, slice `i` stored at `ranges[i]` = `(offset, size)` of `data` (ranges
/// may alias), with each slice's CRC computed from its range.
pub fn write_sliced(
    prefix: &Path,
    name: &str,
    dtype: i32,
    shape: &[u64],
    boxes: &[Vec<(u64, u64)>],
    ranges: &[(u64, u64)],
    data: &[u8],
) {
    let header = BundleHeaderProto {
        num_shards: 1,
        endianness: 0,
        version: Some(VersionDef {
            producer: 1,
            min_consumer: 0,
            bad_consumers: vec![],
        }),
    };
    let dims = |s: &[u64]| shape_proto(&s.iter().map(|&d| d as i64).collect::<Vec<_>>());
    let mut entries = vec![(Vec::new(), header.encode_to_vec())];
    let mut full = BundleEntryProto {
        dtype,
        shape: Some(dims(shape)),
        ..Default::default()
    };
    let mut crcs = std::collections::HashMap::new();
    for (b, &(off, size)) in boxes.iter().zip(ranges) {
        let sp = slice_proto(b);
        let ts = TensorSlice {
            extents: b
                .iter()
                .map(|&(s, l)| Extent {
                    start: s as i64,
                    length: Some(l as i64),
                })
                .collect(),
        };
        let crc = *crcs
            .entry((off, size))
            .or_insert_with(|| crc32c::crc32c(&data[off as usize..(off + size) as usize]));
        let se = BundleEntryProto {
            dtype,
            shape: Some(dims(&b.iter().map(|&(_, l)| l).collect::<Vec<_>>())),
            shard_id: 0,
            offset: off as i64,
            size: size as i64,
            crc32c: mask(crc),
            slices: vec![],
        };
        entries.push((
            encode_tensor_name_slice(name.as_bytes(), &ts),
            se.encode_to_vec(),
        ));
        full.slices.push(sp);
    }
    entries.push((name.as_bytes().to_vec(), full.encode_to_vec()));
    // A slice listed twice is stored once (a table holds each key once).
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0);
    std::fs::write(
        format!("{}.index", prefix.display()),
        table(&entries, 16, true),
    )
    .unwrap();
    std::fs::write(format!("{}.data-00000-of-00001", prefix.display()), data).unwrap();
}

/// Writes a V1 checkpoint (`SavedTensorSlices` table) at `path` holding float tensor
/// `name` of `shape` as the slices `boxes`, slice `i` holding `values(i)`.
pub fn write_v1_sliced(
    path: &Path,
    name: &str,
    shape: &[u64],
    boxes: &[Vec<(u64, u64)>],
    values: impl Fn(usize) -> Vec<f32>,
) {
    use tf2npy::formats::proto::{
        SavedSlice, SavedSliceMeta, SavedTensorSliceMeta, SavedTensorSlices, TensorProto,
    };
    let dims = |s: &[u64]| shape_proto(&s.iter().map(|&d| d as i64).collect::<Vec<_>>());
    let meta = SavedTensorSlices {
        meta: Some(SavedTensorSliceMeta {
            tensor: vec![SavedSliceMeta {
                name: name.into(),
                shape: Some(dims(shape)),
                r#type: 1,
                slice: boxes.iter().map(|b| slice_proto(b)).collect(),
            }],
            versions: Some(VersionDef {
                producer: 1,
                ..Default::default()
            }),
        }),
        data: None,
    };
    let mut entries = vec![(Vec::new(), meta.encode_to_vec())];
    for (i, b) in boxes.iter().enumerate() {
        let ts = TensorSlice {
            extents: b
                .iter()
                .map(|&(s, l)| Extent {
                    start: s as i64,
                    length: Some(l as i64),
                })
                .collect(),
        };
        let rec = SavedTensorSlices {
            meta: None,
            data: Some(SavedSlice {
                name: name.into(),
                slice: Some(slice_proto(b)),
                data: Some(TensorProto {
                    dtype: 1,
                    tensor_shape: Some(dims(&b.iter().map(|&(_, l)| l).collect::<Vec<_>>())),
                    float_val: values(i),
                    ..Default::default()
                }),
            }),
        };
        entries.push((
            encode_tensor_name_slice(name.as_bytes(), &ts),
            rec.encode_to_vec(),
        ));
    }
    // A slice listed twice is stored once (a table holds each key once).
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0);
    std::fs::write(path, table(&entries, 16, true)).unwrap();
}

/// 2,048 slices side by side, all aliasing one 64 KiB range: every line of the tensor
/// crosses every slice, so all are read at once. Each slice used to get its own 64 KiB
/// buffer (128 MiB here; 1.31 GB for the 20,000 slices of the report); the slices of a
/// tensor now share a 16 MiB budget.
#[test]
fn slices_aliasing_one_range_share_a_buffer_budget() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ckpt");
    let (rows, n, w) = (2048u64, 2048u64, 8u64);
    let data: Vec<u8> = (0..rows * w)
        .flat_map(|i| (i as u32).to_le_bytes())
        .collect();
    let boxes: Vec<Vec<(u64, u64)>> = (0..n).map(|j| vec![(0, rows), (j * w, w)]).collect();
    let ranges = vec![(0, data.len() as u64); n as usize];
    write_sliced(&prefix, "t", 22, &[rows, n * w], &boxes, &ranges, &data);
    let out = run_limited(
        96 * 1024,
        &[prefix.as_os_str(), "--verify".as_ref(), "-q".as_ref()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Not a test: writes the inputs of `bench/slices.py` into `$TF2NPY_BENCH_DIR` for
/// `$TF2NPY_BENCH_N` slices or entries (run by the script with `--ignored`):
/// `rows` (`[N, 1]` uint32, one slice per row), `cols` (`[1, N]`, one slice per
/// column), `v1rows.ckpt` (V1 `[N, 1]` float, one slice per row) and `empty` (N empty
/// float tensors, snappy index).
#[test]
#[ignore]
fn make_bench_inputs() {
    let (Ok(dir), Ok(n)) = (
        std::env::var("TF2NPY_BENCH_DIR"),
        std::env::var("TF2NPY_BENCH_N"),
    ) else {
        panic!("set TF2NPY_BENCH_DIR and TF2NPY_BENCH_N");
    };
    let dir = Path::new(&dir);
    let n: u64 = n.parse().unwrap();
    let data: Vec<u8> = (0..n).flat_map(|i| (i as u32).to_le_bytes()).collect();
    let ranges: Vec<(u64, u64)> = (0..n).map(|i| (4 * i, 4)).collect();
    let rows: Vec<Vec<(u64, u64)>> = (0..n).map(|i| vec![(i, 1), (0, 1)]).collect();
    write_sliced(&dir.join("rows"), "t", 22, &[n, 1], &rows, &ranges, &data);
    let cols: Vec<Vec<(u64, u64)>> = (0..n).map(|i| vec![(0, 1), (i, 1)]).collect();
    write_sliced(&dir.join("cols"), "t", 22, &[1, n], &cols, &ranges, &data);
    write_v1_sliced(&dir.join("v1rows.ckpt"), "t", &[n, 1], &rows, |i| {
        vec![i as f32]
    });
    let empty: Vec<crate::bundle_writer::Tensor> = (0..n)
        .map(|i| {
            crate::bundle_writer::Tensor::new(&format!("layer_{i:08}/kernel"), 1, &[0], vec![])
        })
        .collect();
    crate::bundle_writer::write_bundle(&dir.join("empty"), &empty, true);
}

/// Opening an index of 100,000 empty tensors holds at most 256 bytes per listed tensor
/// at any time (name, shape, location and data range included). It used to keep every
/// decoded index entry, then a second list of entries with a location string each
/// (about 3.75 GB for the 6 MB snappy index of the report).
#[test]
fn listing_a_huge_index_holds_little_per_entry() {
    use tf2npy::source::Container;
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ckpt");
    let n = 100_000usize;
    let empty: Vec<crate::bundle_writer::Tensor> = (0..n)
        .map(|i| {
            crate::bundle_writer::Tensor::new(&format!("layer_{i:08}/kernel"), 1, &[0], vec![])
        })
        .collect();
    crate::bundle_writer::write_bundle(&prefix, &empty, true);
    drop(empty);
    let (bundle, peak) = heap_peak_during(|| {
        tf2npy::formats::checkpoint::bundle::Bundle::open(&prefix, &prefix).unwrap()
    });
    assert_eq!(bundle.entries().len(), n);
    assert_eq!(bundle.entries()[7].location, "shard 0 @ 0");
    let per_entry = peak / n as u64;
    assert!(
        per_entry <= 192,
        "{peak} bytes at peak: {per_entry} per entry"
    );
}

/// 1M repeated empty messages (2 bytes each on the wire) are refused before decoding:
/// as a SavedModel (each would be a 272-byte `MetaGraphDef`) and as a GraphDef (each a
/// 144-byte `NodeDef`). Decoding them took 2.68 GB for a 20 MB file before "not a
/// SavedModel".
#[test]
fn repeated_empty_messages_are_refused_before_decoding() {
    use tf2npy::formats::graph::{graphdef, savedmodel};
    let n = 1 << 20;
    let metas: Vec<u8> = [0x08, 0x01]
        .iter()
        .chain(&[0x12, 0x00].repeat(n))
        .copied()
        .collect();
    let (res, peak) = heap_peak_during(|| savedmodel::decode(&metas).map(|_| ()));
    let err = res.unwrap_err();
    assert!(err.contains("MiB of memory"), "{err}");
    assert!(
        peak < 1 << 20,
        "{peak} bytes to refuse {} bytes",
        metas.len()
    );
    let nodes = [0x0a, 0x00].repeat(n);
    let (res, peak) = heap_peak_during(|| graphdef::decode(&nodes).map(|_| ()));
    let err = res.unwrap_err();
    assert!(err.contains("MiB of memory"), "{err}");
    assert!(
        peak < 1 << 20,
        "{peak} bytes to refuse {} bytes",
        nodes.len()
    );

    // The command names the file and the reason.
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("saved_model.pb");
    std::fs::write(&pb, &metas).unwrap();
    let out = run_limited(512 * 1024, &[dir.path().as_os_str(), "--list".as_ref()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("saved_model.pb") && stderr.contains("not a SavedModel"),
        "{stderr}"
    );
    assert!(stderr.contains("MiB of memory"), "{stderr}");
}
