//! Fuzz target: `tf.train.Example` decoding (the borrowing wire parser and the column
//! sink: kinds, last-entry-wins, packed/unpacked lists, ragged/fixed layout). The input
//! is a sequence of records, each `len:u8` + bytes. Oracles: where prost (the generated
//! reference types) decodes a record and agrees on a feature's kind, the values match;
//! the layout's entries have the element counts their shapes announce.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::path::PathBuf;
use std::sync::Arc;
use tf2npy::formats::proto::{feature, Example};
use tf2npy::formats::records::columns::ExampleSink;
use tf2npy::formats::records::example::{
    bytes_values, float_values, int64_values, parse_example, Kind,
};
use tf2npy::formats::records::sink::{Cols, Place, Sink};

fn check_against_prost(rec: &[u8]) {
    let mut refs = Vec::new();
    if parse_example(rec, &mut refs).is_err() {
        return;
    }
    let Ok(ex) = Example::decode(rec) else {
        return;
    };
    let map = ex.features.map(|f| f.feature).unwrap_or_default();
    // The last entry of each key wins, as in protobuf's map.
    for (i, &(key, kind)) in refs.iter().enumerate() {
        if refs[i + 1..].iter().any(|(k, _)| *k == key) {
            continue;
        }
        let Ok(key) = std::str::from_utf8(key) else {
            continue;
        };
        let Some(pf) = map.get(key) else { continue };
        let (Some((kind, list)), Some(pk)) = (kind, &pf.kind) else {
            continue;
        };
        let mut mine = Vec::new();
        match (kind, pk) {
            (Kind::Float, feature::Kind::FloatList(l)) => {
                if float_values(list, &mut mine).is_ok() {
                    let want: Vec<u8> = l.value.iter().flat_map(|v| v.to_le_bytes()).collect();
                    assert_eq!(mine, want, "float values of `{key}`");
                }
            }
            (Kind::Int64, feature::Kind::Int64List(l)) => {
                if int64_values(list, &mut mine).is_ok() {
                    let want: Vec<u8> = l.value.iter().flat_map(|v| v.to_le_bytes()).collect();
                    assert_eq!(mine, want, "int64 values of `{key}`");
                }
            }
            (Kind::Bytes, feature::Kind::BytesList(l)) => {
                let mut vals = Vec::new();
                if bytes_values(list, |v| vals.push(v.to_vec())).is_ok() {
                    assert_eq!(vals, l.value, "bytes values of `{key}`");
                }
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut records = Vec::new();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = (n as usize).min(tail.len());
        records.push(&tail[..n]);
        rest = &tail[n..];
    }
    let ragged = data.len() % 2 == 1;
    let mut sink = Box::new(ExampleSink::new(Cols::new(None), ragged));
    let file = Arc::new(PathBuf::from("f.tfrecord"));
    for (i, rec) in records.iter().enumerate() {
        check_against_prost(rec);
        let at = Place {
            file: file.clone(),
            index: i as u64,
            origin: None,
        };
        if sink.record(rec, &at).is_err() {
            return;
        }
    }
    let Ok(layout) = sink.finish() else { return };
    assert_eq!(layout.records, records.len() as u64);
    for (e, _) in &layout.entries {
        let n = e.shape.iter().product::<u64>();
        assert_eq!(
            n * e.dtype.storage_bytes().unwrap_or(1),
            e.stored_bytes,
            "{}",
            e.name
        );
    }
});
