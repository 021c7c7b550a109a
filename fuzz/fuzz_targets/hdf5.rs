//! Fuzz target: an HDF5 file or `.keras` archive (Keras 3 weights, legacy Keras, h5py)
//! through `formats::open`: superblock, object headers, groups and links, datatypes,
//! layouts, chunk indexes and filters (hdf5-reader) and tf2npy's checks and streams on
//! top (src/formats/hdf5/), then `--var-names`, planning and converting every tensor. A
//! converted payload must have exactly the length its `.npy` header announces.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tf2npy::error::Ctx;
use tf2npy::formats::{self, OpenOptions};
use tf2npy::plan::convert::{to_numpy, ConvertOptions};
use tf2npy::plan::{self, SelectOptions};
use tf2npy_fuzz::{drain_stream, put, DRAIN_CAP};

fuzz_target!(|data: &[u8]| {
    let path = put("weights.h5", data);
    let Ok(c) = formats::open(&path, &OpenOptions::default()) else {
        return;
    };
    let _ = tf2npy::listing::to_json(c.as_ref(), None);
    if let Ok(names) = c.variable_names() {
        assert_eq!(names.len(), c.entries().len());
        let _ = tf2npy::listing::to_table(c.as_ref(), Some(&names));
    }
    let select = SelectOptions {
        all: true,
        ..Default::default()
    };
    let Ok(plan) = plan::build(c.as_ref(), &select) else {
        return;
    };
    let ctx = Ctx::file(c.path());
    for t in &plan.tensors {
        let Ok((entry, raw)) = t.source.open(c.as_ref(), true) else {
            continue;
        };
        let Ok(arr) = to_numpy(&entry, raw, ConvertOptions::default(), &ctx) else {
            continue;
        };
        let want = arr.header.byte_len();
        let mut stream = arr.data;
        if let Ok(got) = drain_stream(&mut stream, 4093) {
            if (got.len() as u64) < DRAIN_CAP {
                assert_eq!(Some(got.len() as u64), want, "payload length != header");
            }
        }
    }
});
