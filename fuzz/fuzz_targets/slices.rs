//! Fuzz target: slice reassembly planning. The input describes a full shape and a set
//! of slices (extents as stored: start, optional length). Each slice is resolved
//! against the shape, the set is checked for exact cover, and when it passes the tensor
//! is reassembled from synthetic slice data, as bytes and as strings, with fuzzed read
//! sizes. Oracle: a set that passes `check_cover` reassembles to exactly the tensor
//! whose element `i` is `i`; nothing may panic either way.
//!
//! Layout: `flags:u8 rank:u8 dims... nslices:u8 slices...`; with flag bit 0 the dims are
//! raw u64s (huge shapes), otherwise 0..=8; flag bit 1 lets each slice pick its own rank.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tf2npy::error::Ctx;
use tf2npy::formats::checkpoint::slice_key::{
    check_cover, encode_tensor_name_slice, AssembledBytes, AssembledStrings, Extent, RunWalker,
    SliceBox, TensorSlice,
};
use tf2npy::source::{num_elements, StringRead, VecStrings};
use tf2npy::stream::{ByteStream, SliceStream};
use tf2npy_fuzz::{drain_stream, Input};

/// Largest tensor reassembled in full.
const MAX_ASSEMBLE: u64 = 1 << 14;

fn extent(inp: &mut Input<'_>) -> Extent {
    match inp.u8() % 4 {
        0 => Extent {
            start: 0,
            length: None,
        },
        1 => Extent {
            start: i64::from(inp.u8() % 4),
            length: None,
        },
        2 => Extent {
            start: i64::from(inp.u8() % 10),
            length: Some(i64::from(inp.u8() % 10)),
        },
        _ => Extent {
            start: inp.u64() as i64,
            length: Some(inp.u64() as i64),
        },
    }
}

/// Row-major elements of `b` inside `shape`, each its linear index in the full tensor.
fn linear_indices(shape: &[u64], b: &SliceBox) -> Vec<u64> {
    let n = b.iter().map(|&(_, l)| l).product::<u64>();
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut rem = i;
        let mut lin = 0u64;
        let mut stride = 1u64;
        for d in (0..b.len()).rev() {
            let idx = b[d].0 + rem % b[d].1;
            rem /= b[d].1;
            lin += idx * stride;
            stride *= shape[d];
        }
        out.push(lin);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let rank = usize::from(inp.u8() % 5);
    let shape: Vec<u64> = (0..rank)
        .map(|_| {
            if flags & 1 != 0 {
                inp.u64()
            } else {
                u64::from(inp.u8() % 9)
            }
        })
        .collect();
    let nslices = usize::from(inp.u8() % 24);
    let mut slices = Vec::with_capacity(nslices);
    for _ in 0..nslices {
        let r = if flags & 2 != 0 {
            usize::from(inp.u8() % 6)
        } else {
            rank
        };
        slices.push(TensorSlice {
            extents: (0..r).map(|_| extent(&mut inp)).collect(),
        });
    }
    let chunk = 1 + usize::from(inp.u8());

    let mut boxes = Vec::with_capacity(slices.len());
    for s in &slices {
        let _ = s.to_text();
        let _ = encode_tensor_name_slice(b"t", s);
        match s.resolve(&shape) {
            Ok(b) => {
                assert_eq!(b.len(), shape.len());
                for (&(start, len), &dim) in b.iter().zip(&shape) {
                    assert!(start.checked_add(len).is_some_and(|e| e <= dim));
                }
                boxes.push(b);
            }
            Err(_) => return,
        }
    }
    if check_cover(&shape, &boxes, |i| i.to_string()).is_err() {
        return;
    }
    let total = num_elements(&shape).expect("check_cover accepted an overflowing shape");
    if total > MAX_ASSEMBLE {
        // Too big to build: walk the first runs, which must all be inside the tensor.
        let mut w = RunWalker::new(&shape, boxes);
        let mut seen = 0u64;
        for _ in 0..1000 {
            match w.next_run() {
                Ok(Some((k, count))) => {
                    assert!(k < slices.len() && count > 0);
                    seen = seen.checked_add(count).expect("runs overflow");
                    assert!(seen <= total, "runs exceed the tensor");
                }
                Ok(None) => break,
                Err(e) => panic!("walk of an exact cover failed: {e}"),
            }
        }
        return;
    }
    let labels: Vec<String> = (0..boxes.len()).map(|i| i.to_string()).collect();
    let per_box: Vec<Vec<u64>> = boxes.iter().map(|b| linear_indices(&shape, b)).collect();

    let bytes: Vec<Vec<u8>> = per_box
        .iter()
        .map(|v| v.iter().flat_map(|&i| (i as u32).to_le_bytes()).collect())
        .collect();
    let parts: Vec<Box<dyn ByteStream + '_>> = bytes
        .iter()
        .map(|d| Box::new(SliceStream::new(d)) as Box<dyn ByteStream>)
        .collect();
    let mut a = AssembledBytes::new(
        &shape,
        boxes.clone(),
        parts,
        4,
        labels.clone(),
        Ctx::file("t"),
    );
    let got = drain_stream(&mut a, chunk).expect("reassembly of an exact cover failed");
    let want: Vec<u8> = (0..total).flat_map(|i| (i as u32).to_le_bytes()).collect();
    assert!(got == want, "reassembled bytes differ");

    let parts: Vec<Box<dyn StringRead>> = per_box
        .iter()
        .map(|v| {
            Box::new(VecStrings::new(
                v.iter().map(|i| i.to_string().into_bytes()).collect(),
            )) as Box<dyn StringRead>
        })
        .collect();
    let mut s = AssembledStrings::new(&shape, boxes, parts, labels, Ctx::file("t"));
    let _ = s.max_len().expect("max_len");
    let mut one = Vec::new();
    let mut i = 0u64;
    while s.next_into(&mut one).expect("string reassembly failed") {
        assert_eq!(one, i.to_string().into_bytes(), "string {i} misplaced");
        i += 1;
    }
    assert_eq!(i, total, "string count");
});
