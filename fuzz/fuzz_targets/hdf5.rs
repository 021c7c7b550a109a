//! Fuzz target: an HDF5 file or `.keras` archive (Keras 3 weights, legacy Keras, h5py)
//! through `formats::open`: superblock, object headers, groups and links, datatypes,
//! layouts, chunk indexes and filters (hdf5-reader) and tf2npy's checks and streams on
//! top (src/formats/hdf5/), then `--var-names`, planning and converting every tensor. A
//! converted payload must have exactly the length its `.npy` header announces.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tf2npy::formats::{self, OpenOptions};
use tf2npy::plan::sparse::SparseMode;
use tf2npy_fuzz::{list_plan_convert, put};

fuzz_target!(|data: &[u8]| {
    let path = put("weights.h5", data);
    let Ok(c) = formats::open(&path, &OpenOptions::default()) else {
        return;
    };
    list_plan_convert(c.as_ref(), SparseMode::default());
});
