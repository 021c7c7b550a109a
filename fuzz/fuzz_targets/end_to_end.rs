//! Fuzz target: the whole pipeline on a V2 checkpoint made of the input bytes: an
//! `.index` file and one data file, opened by prefix, `.index` or `.data-*` path,
//! planned, dry-run, then converted to a `.npz` when small enough. Oracles: a failed
//! conversion leaves no output and no temporary file; a dry run's byte count is what the
//! conversion writes.
//!
//! Layout: `flags:u8 ilen:u16 index[ilen] data...`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tf2npy::plan::convert::ConvertOptions;
use tf2npy::plan::sparse::SparseMode;
use tf2npy::plan::SelectOptions;
use tf2npy::run::{self, Job, Mode, OutputTarget, Silent};
use tf2npy_fuzz::{clear_scratch, put, scratch, Input};

/// Largest conversion actually written.
const MAX_OUTPUT: u64 = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let ilen = usize::from(inp.u16());
    let index = inp.bytes(ilen);
    let shard = inp.rest();
    clear_scratch();
    let index_path = put("ckpt.index", index);
    let data_path = put("ckpt.data-00000-of-00001", shard);
    let input = match flags % 3 {
        0 => scratch().join("ckpt"),
        1 => index_path,
        _ => data_path,
    };
    let out = scratch().join("out.npz");
    let mut job = Job {
        input,
        output: OutputTarget::Npz(out.clone()),
        select: SelectOptions {
            all: flags & 4 != 0,
            short_names: flags & 8 != 0,
            var_names: flags & 64 != 0, // (shares its bit with `compress`)
            sparse: if flags & 16 != 0 {
                SparseMode::Keep
            } else {
                SparseMode::Densify
            },
            ..Default::default()
        },
        convert: ConvertOptions {
            raw_bits: flags & 32 != 0,
        },
        compress: flags & 64 != 0,
        compress_level: None,
        threads: 1,
        verify: flags & 128 == 0,
        constants: false,
        records: Default::default(),
        force: true,
        manifest: None,
        max_output: None,
        mode: Mode::DryRun,
    };
    let Ok(dry) = run::convert(&job, &mut Silent) else {
        assert!(!out.exists(), "a failed dry run wrote output");
        return;
    };
    if dry.bytes > MAX_OUTPUT {
        return;
    }
    job.mode = Mode::Convert;
    match run::convert(&job, &mut Silent) {
        Ok(done) => {
            assert!(out.exists(), "a successful conversion wrote no output");
            assert_eq!(done.bytes, dry.bytes, "dry run and conversion disagree");
        }
        Err(_) => {
            assert!(!out.exists(), "a failed conversion left its output");
            let leftovers = std::fs::read_dir(scratch())
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with(".tf2npy-"))
                        .count()
                })
                .unwrap_or(0);
            assert_eq!(leftovers, 0, "a failed conversion left a temporary file");
        }
    }
});
