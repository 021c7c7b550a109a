//! Fuzz target: `tf.train.Example` decoding (the borrowing wire parser and the column
//! sink: kinds, last-entry-wins, packed/unpacked lists, ragged/fixed layout). The input
//! is a sequence of records, each `len:u8` + bytes. Oracles: where prost (the generated
//! reference types) decodes a record and agrees on a feature's kind, and the Feature
//! holds one list (TensorFlow reads the first of several, prost merges them), the
//! values match;
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
use tf2npy::formats::records::wire::{Fields, Value};

/// How many fields the `Feature` of the last map entry for `key` holds (our parser has
/// accepted the record, so every level is well formed).
fn feature_fields(rec: &[u8], key: &[u8]) -> usize {
    let mut n = 0;
    for f in Fields::new(rec).flatten() {
        let (1, Value::Len(features)) = f else {
            continue;
        };
        for e in Fields::new(features).flatten() {
            let (1, Value::Len(entry)) = e else { continue };
            let (mut k, mut v): (&[u8], &[u8]) = (&[], &[]);
            for x in Fields::new(entry).flatten() {
                match x {
                    (1, Value::Len(b)) => k = b,
                    (2, Value::Len(b)) => v = b,
                    _ => {}
                }
            }
            if k == key {
                n = Fields::new(v).count();
            }
        }
    }
    n
}

/// Our values are those of the Feature's first list field (TensorFlow's rule); prost
/// merges or replaces a repeated one, so the two are compared where the Feature holds
/// exactly one list.
fn agree<T: PartialEq + std::fmt::Debug>(
    mine: &[T],
    prost: &[T],
    what: &str,
    key: &str,
    one: bool,
) {
    if one {
        assert_eq!(mine, prost, "{what} values of `{key}`");
    }
}

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
        let one = feature_fields(rec, key.as_bytes()) == 1;
        let mut mine = Vec::new();
        match (kind, pk) {
            (Kind::Float, feature::Kind::FloatList(l)) => {
                if float_values(list, &mut mine).is_ok() {
                    let want: Vec<u8> = l.value.iter().flat_map(|v| v.to_le_bytes()).collect();
                    agree(&mine, &want, "float", key, one);
                }
            }
            (Kind::Int64, feature::Kind::Int64List(l)) => {
                if int64_values(list, &mut mine).is_ok() {
                    let want: Vec<u8> = l.value.iter().flat_map(|v| v.to_le_bytes()).collect();
                    agree(&mine, &want, "int64", key, one);
                }
            }
            (Kind::Bytes, feature::Kind::BytesList(l)) => {
                let mut vals = Vec::new();
                if bytes_values(list, |v| vals.push(v.to_vec())).is_ok() {
                    agree(&vals, &l.value, "bytes", key, one);
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
