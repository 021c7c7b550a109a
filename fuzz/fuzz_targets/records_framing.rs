//! Fuzz target: TFRecord framing under each compression (GZIP with concatenated
//! members, ZLIB, TensorFlow's SNAPPY blocks). The first input byte picks the
//! compression and `--no-verify`; the rest is the file. Oracles: an uncompressed stream
//! that reads cleanly is exactly the concatenation of its records re-framed; a failure
//! names the record and offset; nothing panics or allocates by a claimed length.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tf2npy::formats::records::compression::{Compression, SnappyBlocks};
use tf2npy::formats::records::framing::{frame, RecordReader};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let compression = match flags & 3 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Zlib,
        _ => Compression::Snappy,
    };
    let verify = flags & 4 == 0;
    let owned = file.to_vec();
    let inner: Box<dyn std::io::Read + Send> = match compression {
        Compression::None => Box::new(std::io::Cursor::new(owned)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(
            owned,
        ))),
        Compression::Zlib => Box::new(flate2::read::ZlibDecoder::new(std::io::Cursor::new(owned))),
        Compression::Snappy => Box::new(SnappyBlocks::new(std::io::Cursor::new(owned))),
    };
    let file_len = (compression == Compression::None).then_some(file.len() as u64);
    let mut r = RecordReader::new(
        inner,
        Path::new("f.tfrecord"),
        compression,
        file_len,
        verify,
    );
    let mut buf = Vec::new();
    let mut reframed = Vec::new();
    // Bounded decompression: stop after 64 MiB of records.
    while reframed.len() < 64 << 20 {
        let (index, offset) = (r.index(), r.offset());
        // Records borrowed from the read buffer and records read whole must agree.
        match r.next_record(&mut buf) {
            Ok(Some((rec, _))) => {
                if compression == Compression::None && verify {
                    reframed.extend(frame(rec));
                }
            }
            Ok(None) => {
                if compression == Compression::None && verify {
                    assert_eq!(reframed, file, "clean stream != its records re-framed");
                }
                return;
            }
            Err(e) => {
                let msg = e.to_string();
                let place = format!("record {index} at byte {offset}");
                assert!(msg.contains(&place) || msg.contains("f.tfrecord"), "{msg}");
                return;
            }
        }
    }
});
