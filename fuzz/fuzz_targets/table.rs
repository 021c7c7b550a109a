//! Fuzz target: the LevelDB-style table reader (`.index` files, V1 checkpoints).
//! The input is a whole table file. Block checksums are skipped in fuzz builds
//! (`cfg(fuzzing)` in `formats/table.rs`) so mutations reach the block decoding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tf2npy::formats::checkpoint::table::{has_table_magic, BlockHandle, Table};

fuzz_target!(|data: &[u8]| {
    let _ = BlockHandle::decode(data);
    let path = tf2npy_fuzz::put("t.index", data);
    let _ = has_table_magic(&path);
    let Ok(table) = Table::open(&path) else {
        return;
    };
    let file_len = table.file_len();
    for h in table.block_handles() {
        // Handles are only checked when a block is read; listing them must not fail.
        let _ = h.offset.checked_add(h.size);
    }
    let mut keys = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    for kv in table.scan() {
        match kv {
            Ok((k, v)) => {
                if let Some(prev) = &last {
                    assert!(*prev < k, "scan yielded keys out of order");
                }
                assert!(
                    (v.len() as u64) < file_len.max(1) * 64,
                    "value larger than possible"
                );
                last = Some(k.clone());
                if keys.len() < 8 {
                    keys.push(k);
                }
            }
            Err(_) => break,
        }
    }
    for k in &keys {
        let _ = table.get(k);
    }
    let _ = table.get(b"");
    let _ = table.get(&data[..data.len().min(8)]);
});
