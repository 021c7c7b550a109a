//! Bounded memory (issue 4): tensors several times larger than a small address-space
//! budget convert correctly. The child runs under `ulimit -v` (virtual memory) with
//! `MALLOC_ARENA_MAX=1`, so a tool that held a tensor whole would fail to allocate.
//! (Peak RSS figures come from the benchmark, not from this test.)

use crate::bundle_writer::{write_bundle, Tensor};
use std::io::{Read, Seek, SeekFrom};
use std::process::Command;

const BUDGET_KIB: u64 = 160 * 1024;
const F32_BYTES: u64 = 640 << 20; // 4x the budget
const BF16_BYTES: u64 = 200 << 20; // widens to 400 MiB

fn run_limited(args: &[&std::ffi::OsStr]) -> std::process::Output {
    crate::common::run_limited(BUDGET_KIB, args)
}

#[test]
fn tensors_larger_than_the_memory_budget_stream() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ckpt");
    let f32_patches = vec![
        (0u64, 1.5f32.to_le_bytes().to_vec()),
        (F32_BYTES - 4, (-7.25f32).to_le_bytes().to_vec()),
        (300 << 20, vec![0x11, 0x22, 0x33, 0x44]),
    ];
    let bf16_patches = vec![(0u64, vec![0x80, 0x3f]), (BF16_BYTES - 2, vec![0xc0, 0x40])];
    let tensors = [
        Tensor::zeros(
            "big_f32",
            1,
            vec![(F32_BYTES / 4) as i64],
            F32_BYTES,
            f32_patches.clone(),
        ),
        Tensor::zeros(
            "big_bf16",
            14,
            vec![(BF16_BYTES / 2) as i64],
            BF16_BYTES,
            bf16_patches,
        ),
    ];
    write_bundle(&prefix, &tensors, false);
    // The budget really is too small to hold the tensor: a control run that must fail.
    let control = Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -v {BUDGET_KIB} && exec python3 -c 'bytearray({F32_BYTES})'"),
        ])
        .output()
        .unwrap();
    assert!(
        !control.status.success(),
        "the budget does not constrain allocations"
    );

    let out = dir.path().join("out/");
    for extra in [&[][..], &["--compress"][..]] {
        let npz = dir.path().join("out.npz");
        let mut args: Vec<&std::ffi::OsStr> = vec![
            prefix.as_os_str(),
            "-q".as_ref(),
            "-o".as_ref(),
            npz.as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let run = run_limited(&args);
        assert!(
            run.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::fs::remove_file(&npz).unwrap();
    }
    let run = run_limited(&[
        prefix.as_os_str(),
        "-q".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // float32: an exact copy; check the marked values and that everything else is zero.
    let mut f = std::fs::File::open(out.join("big_f32.npy")).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 128 + F32_BYTES);
    let mut buf = vec![0u8; 1 << 20];
    let zeros = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    f.seek(SeekFrom::Start(128)).unwrap();
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        // Check the marked bytes, blank them, then compare the chunk with zeros (memcmp).
        for (o, v) in &f32_patches {
            for (k, &want) in v.iter().enumerate() {
                let at = o + k as u64;
                if at >= pos && at < pos + n as u64 {
                    let i = (at - pos) as usize;
                    assert_eq!(buf[i], want, "big_f32 byte {at}");
                    buf[i] = 0;
                }
            }
        }
        assert!(
            buf[..n] == zeros[..n],
            "big_f32: unexpected nonzero bytes near offset {pos}"
        );
        pos += n as u64;
    }
    assert_eq!(pos, F32_BYTES);
    // bfloat16 widened to float32: first 1.0 (0x3f80), last 6.0 (0x40c0).
    let mut g = std::fs::File::open(out.join("big_bf16.npy")).unwrap();
    assert_eq!(g.metadata().unwrap().len(), 128 + BF16_BYTES * 2);
    let mut first = [0u8; 4];
    g.seek(SeekFrom::Start(128)).unwrap();
    g.read_exact(&mut first).unwrap();
    assert_eq!(f32::from_le_bytes(first), 1.0);
    g.seek(SeekFrom::End(-4)).unwrap();
    g.read_exact(&mut first).unwrap();
    assert_eq!(f32::from_le_bytes(first), 6.0);
}
