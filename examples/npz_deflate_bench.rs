//! Times `.npz --compress` through [`NpzWriter`] on a generated float32 payload:
//!
//! ```text
//! cargo run --release --example npz_deflate_bench -- [MIB] [THREADS...]
//! ```
//!
//! Defaults: 1024 MiB, threads 1 and 2. The payload is a sine wave with noise in the low
//! mantissa bits (like trained weights, it deflates only a little), streamed from a
//! 16 MiB table so generating it costs next to nothing. Prints seconds, MiB/s and the
//! compressed size per thread count, and checks that every run wrote the same bytes.

use std::io::Read;
use std::time::Instant;
use tf2npy::stream::ByteStream;
use tf2npy::write::npz::{Compression, NpzWriter};
use tf2npy::write::{ArrayHeader, ArrayWriter};

struct Wave<'a> {
    table: &'a [u8],
    pos: usize,
    left: u64,
}

impl ByteStream for Wave<'_> {
    fn read(&mut self, buf: &mut [u8]) -> tf2npy::Result<usize> {
        let n = buf
            .len()
            .min(self.table.len() - self.pos)
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.table[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % self.table.len();
        self.left -= n as u64;
        Ok(n)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib: u64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(1024);
    let mut threads: Vec<usize> = args[1.min(args.len())..]
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    if threads.is_empty() {
        threads = vec![1, 2];
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let table: Vec<u8> = (0..(16u64 << 20) / 4)
        .flat_map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let x = ((i as f64 * 0.0007).sin() as f32).to_bits() ^ (seed as u32 & 0x3ff);
            x.to_le_bytes()
        })
        .collect();
    let elems = (mib << 20) / 4;
    let header = ArrayHeader {
        descr: "<f4".into(),
        shape: vec![elems],
        item_bytes: 4,
    };
    let dir = tempfile::tempdir_in(std::env::current_dir()?)?;
    let mut first: Option<(std::path::PathBuf, u64)> = None;
    let mut secs = Vec::new();
    for &t in &threads {
        let path = dir.path().join(format!("t{t}.npz"));
        let start = Instant::now();
        let mut w = Box::new(NpzWriter::create(
            &path,
            Compression::Deflate {
                threads: t,
                level: tf2npy::write::npz::DEFLATE_LEVEL,
            },
            true,
        )?);
        let mut data = Wave {
            table: &table,
            pos: 0,
            left: elems * 4,
        };
        w.add("wave", &header, &mut data)?;
        w.finish()?;
        let s = start.elapsed().as_secs_f64();
        let size = std::fs::metadata(&path)?.len();
        println!(
            "threads {t}: {s:.2} s, {:.0} MiB/s, {size} bytes ({:.1}% of input)",
            mib as f64 / s,
            100.0 * size as f64 / (mib << 20) as f64
        );
        secs.push(s);
        match &first {
            None => first = Some((path, size)),
            Some((p, sz)) => {
                let same = *sz == size && same_bytes(p, &path)?;
                println!("  identical to threads {}: {same}", threads[0]);
                std::fs::remove_file(&path)?;
            }
        }
    }
    if secs.len() > 1 {
        println!(
            "speed-up threads {} vs {}: {:.2}x",
            threads[1],
            threads[0],
            secs[0] / secs[1]
        );
    }
    Ok(())
}

fn same_bytes(a: &std::path::Path, b: &std::path::Path) -> std::io::Result<bool> {
    let mut fa = std::io::BufReader::new(std::fs::File::open(a)?);
    let mut fb = std::io::BufReader::new(std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(fb.read(&mut bb)? == 0);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}
