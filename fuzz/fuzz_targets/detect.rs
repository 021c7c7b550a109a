//! Fuzz target: deciding what a protobuf file is (SavedModel, GraphDef, TensorProto,
//! serialized sparse tensor; or a table file by its magic) through `formats::open`, then
//! planning (`plan::build`, which also groups sparse siblings) and converting every
//! planned tensor. The input is the file's bytes; the low bits of its length pick
//! `--constants` and `--sparse keep`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tf2npy::formats::{self, OpenOptions};
use tf2npy::plan::sparse::SparseMode;
use tf2npy_fuzz::{list_plan_convert, put};

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
    list_plan_convert(c.as_ref(), sparse);
});
