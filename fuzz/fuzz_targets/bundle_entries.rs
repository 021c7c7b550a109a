//! Fuzz target: V2 bundle header and entry decoding and validation, then reading every
//! listed tensor. The input is carved into a header value, up to 63 `(key, value)`
//! entries and two data shards; a valid table is built from them, so the fuzzer spends
//! its effort on `BundleHeaderProto` / `BundleEntryProto` contents rather than on table
//! framing (the `table` target covers that).
//!
//! Layout: `flags:u8  n:u8  split:u16  hlen:u16 header[hlen]
//! n × (klen:u8 key[klen] vlen:u16 value[vlen])  data...` where `data[..split]` is
//! shard 0 and the rest shard 1.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use tf2npy::formats::checkpoint::bundle::Bundle;
use tf2npy::source::Container;
use tf2npy_fuzz::bundle_writer::table;
use tf2npy_fuzz::{clear_scratch, drain, put, scratch, Input};

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let n = inp.u8() % 64;
    let split = usize::from(inp.u16());
    let hlen = usize::from(inp.u16());
    let header = inp.bytes(hlen).to_vec();
    let mut entries: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    entries.insert(Vec::new(), header);
    for _ in 0..n {
        let klen = usize::from(inp.u8());
        let key = inp.bytes(klen).to_vec();
        let vlen = usize::from(inp.u16());
        let value = inp.bytes(vlen).to_vec();
        if !key.is_empty() {
            entries.entry(key).or_insert(value);
        }
    }
    let rest = inp.rest();
    let (d0, d1) = rest.split_at(split.min(rest.len()));
    let entries: Vec<(Vec<u8>, Vec<u8>)> = entries.into_iter().collect();

    clear_scratch();
    put(
        "ckpt.index",
        &table(&entries, 1 + usize::from(flags % 4), false),
    );
    put("ckpt.data-00000-of-00001", d0);
    if flags & 0x10 != 0 {
        put("ckpt.data-00001-of-00002", d1);
    }
    let prefix = scratch().join("ckpt");
    let Ok(bundle) = Bundle::open(&prefix, &prefix) else {
        return;
    };
    let names = bundle.variable_names().ok();
    let _ = tf2npy::listing::to_table(&bundle, names.as_deref());
    let _ = tf2npy::listing::to_json(&bundle, None);
    let _ = bundle.input_files();
    let chunk = 1 + usize::from(flags >> 5) * 37;
    for i in 0..bundle.entries().len() {
        for verify in [true, false] {
            if let Ok(raw) = bundle.open(i, verify) {
                let _ = drain(raw, chunk);
            }
        }
    }
});
