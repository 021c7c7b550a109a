//! Fuzz target: deciding what a protobuf file is (SavedModel, GraphDef, TensorProto,
//! serialized sparse tensor; or a table file by its magic) through `formats::open`, then
//! planning (`plan::build`, which also groups sparse siblings) and converting every
//! planned tensor. The input is the file's bytes; the low bits of its length pick
//! `--constants` and `--sparse keep`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tf2npy::error::Ctx;
use tf2npy::formats::{self, OpenOptions};
use tf2npy::plan::convert::{to_numpy, ConvertOptions};
use tf2npy::plan::sparse::SparseMode;
use tf2npy::plan::{self, SelectOptions};
use tf2npy_fuzz::{drain_stream, put, DRAIN_CAP};

fuzz_target!(|data: &[u8]| {
    let path = put("model.pb", data);
    let sparse = if data.len() & 2 != 0 {
        SparseMode::Keep
    } else {
        SparseMode::Densify
    };
    let opts = OpenOptions {
        constants: data.len() & 1 != 0,
        sparse,
        records: Default::default(),
    };
    let Ok(c) = formats::open(&path, &opts) else {
        return;
    };
    let _ = tf2npy::listing::to_json(c.as_ref(), None);
    if let Ok(names) = c.variable_names() {
        assert_eq!(names.len(), c.entries().len());
        let _ = tf2npy::listing::to_table(c.as_ref(), Some(&names));
    }
    let select = SelectOptions {
        all: true,
        sparse,
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
