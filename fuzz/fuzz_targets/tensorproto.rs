//! Fuzz target: serialized `TensorProto` decoding (`tensor_content`, typed fields with
//! the broadcast rules, string lists) and conversion to NumPy, plus serialized sparse
//! tensor detection. The input is the proto's bytes. Oracle: a converted stream yields
//! exactly the bytes its `.npy` header announces.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tf2npy::error::Ctx;
use tf2npy::formats::tensor::serialized_sparse;
use tf2npy::formats::tensor::tensorproto::TensorProtoFile;
use tf2npy::plan::convert::{to_numpy, ConvertOptions};
use tf2npy::source::Container;
use tf2npy_fuzz::{drain, drain_stream, DRAIN_CAP};

/// Converts every entry of `c` and checks each payload's length against its header.
fn convert_all(c: &dyn Container, raw_bits: bool, chunk: usize) {
    let ctx = Ctx::file(c.path());
    for (i, entry) in c.entries().iter().enumerate() {
        let Ok(raw) = c.open(i, true) else { continue };
        let Ok(arr) = to_numpy(entry, raw, ConvertOptions { raw_bits }, &ctx) else {
            continue;
        };
        let want = arr.header.byte_len();
        let mut data = arr.data;
        if let Ok(got) = drain_stream(&mut data, chunk) {
            if (got.len() as u64) < DRAIN_CAP {
                assert_eq!(Some(got.len() as u64), want, "payload length != header");
            }
        }
        if let Ok(raw) = c.open(i, false) {
            let _ = drain(raw, chunk);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.pb");
    let Ok(file) = TensorProtoFile::parse(path, data) else {
        return;
    };
    let raw_bits = data.len() % 2 == 1;
    let chunk = 1 + data.len() % 61;
    convert_all(&file, raw_bits, chunk);
    for keep in [false, true] {
        if let Ok(Some(sp)) = serialized_sparse::detect(&file, keep) {
            let _ = tf2npy::listing::to_table(&sp, None);
            convert_all(&sp, raw_bits, chunk);
        }
    }
});
