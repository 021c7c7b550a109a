//! Deterministic parallel deflate, pigz-style: the input is cut into fixed-size blocks
//! (the size does not depend on the thread count), each block is compressed on its own
//! as raw deflate and ends with a sync flush (an empty stored block that byte-aligns the
//! output), except the last, which finishes the stream. Concatenated in order, the
//! blocks form one valid deflate stream, and the bytes are the same whichever thread
//! compressed which block.
//!
//! Blocks do not share a dictionary (pigz primes each with the previous 32 KiB); with
//! 1 MiB blocks that costs well under 1% of ratio, and it keeps the compressor usable
//! with every flate2 backend.
//!
//! A block that deflate does not shrink (random float32 mantissas at level 1, say) is
//! replaced by stored deflate blocks (RFC 1951 §3.2.4: a header byte, LEN, NLEN and up
//! to 65,535 raw bytes each; the previous block ended byte-aligned, so none needs
//! padding), which cost 5 bytes per 64 KiB. Level 0 stores every block. The choice
//! depends only on the block's bytes, so the output still does not depend on the
//! thread count.
//!
//! Memory: at most `2 * threads` input blocks and as many compressed blocks are alive.

use crate::error::{Error, Result};
use flate2::{Compress, CompressError, FlushCompress, Status};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

/// Compresses `total` bytes as one raw deflate stream at `level`, in blocks of `block`
/// input bytes, on up to `threads` worker threads (`threads <= 1`: on this thread).
///
/// `fill` must fill the slice it is given completely with the next input bytes (it is
/// called in order, with slices that add up to exactly `total`); `sink` receives the
/// compressed bytes in order. `path` names the output in error messages.
pub fn compress(
    fill: &mut dyn FnMut(&mut [u8]) -> Result<()>,
    total: u64,
    level: u32,
    block: usize,
    threads: usize,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    path: &Path,
) -> Result<()> {
    let block = block.max(1);
    let blocks = total.div_ceil(block as u64).max(1);
    let plan = Plan {
        total,
        block,
        blocks,
        level,
    };
    let workers = threads.min(usize::try_from(blocks).unwrap_or(usize::MAX));
    if workers <= 1 {
        compress_inline(&plan, fill, sink, path)
    } else {
        compress_threaded(&plan, workers, fill, sink, path)
    }
}

/// How a payload is cut into blocks.
struct Plan {
    total: u64,
    block: usize,
    blocks: u64,
    level: u32,
}

impl Plan {
    /// Input bytes in block `seq`.
    fn len(&self, seq: u64) -> usize {
        let start = seq.saturating_mul(self.block as u64);
        // At most `block`, so the cast cannot truncate.
        self.total.saturating_sub(start).min(self.block as u64) as usize
    }

    fn is_last(&self, seq: u64) -> bool {
        seq + 1 == self.blocks
    }

    fn compressor(&self) -> Compress {
        Compress::new(flate2::Compression::new(self.level.min(9)), false)
    }
}

/// Raw bytes per stored deflate block (LEN is 16 bits).
const STORED_MAX: usize = 65_535;

/// The size of `len` bytes as stored deflate blocks.
fn stored_size(len: usize) -> usize {
    len + 5 * len.div_ceil(STORED_MAX).max(1)
}

/// Writes `input` into `out` (cleared first) as stored deflate blocks, the last one
/// final when `last`.
fn store_block(input: &[u8], last: bool, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(stored_size(input.len()));
    let pieces = input.len().div_ceil(STORED_MAX).max(1);
    for i in 0..pieces {
        let piece =
            &input[(i * STORED_MAX).min(input.len())..((i + 1) * STORED_MAX).min(input.len())];
        // BFINAL in bit 0, BTYPE 00, then padding to the byte boundary.
        out.push(u8::from(last && i + 1 == pieces));
        let n = piece.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(piece);
    }
}

/// Compresses one block into `out` (cleared first): a fresh raw deflate stream at
/// `level`, ended with a sync flush, or finished when `last`; stored blocks instead
/// when that is not larger (always at level 0).
fn deflate_block(
    c: &mut Compress,
    level: u32,
    input: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> std::result::Result<(), CompressError> {
    if level == 0 {
        store_block(input, last, out);
        return Ok(());
    }
    deflate_raw(c, input, last, out)?;
    if out.len() >= stored_size(input.len()) {
        store_block(input, last, out);
    }
    Ok(())
}

/// [`deflate_block`] without the stored fallback.
fn deflate_raw(
    c: &mut Compress,
    input: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> std::result::Result<(), CompressError> {
    c.reset();
    out.clear();
    // Comfortably above zlib's deflateBound plus the 5-byte sync marker, so a single
    // call normally does it all.
    out.reserve(input.len() + input.len() / 64 + 256);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut consumed = 0usize;
    loop {
        let before = c.total_in();
        let status = c.compress_vec(&input[consumed..], out, flush)?;
        consumed += usize::try_from(c.total_in() - before).unwrap_or(usize::MAX);
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // A sync flush is complete once all input is in and output space is left.
            _ => consumed >= input.len() && out.len() < out.capacity(),
        };
        if done {
            return Ok(());
        }
        out.reserve(out.capacity().max(64 * 1024));
    }
}

fn compress_error(path: &Path, e: CompressError) -> Error {
    Error::io(path, std::io::Error::other(format!("deflate failed: {e}")))
}

fn compress_inline(
    plan: &Plan,
    fill: &mut dyn FnMut(&mut [u8]) -> Result<()>,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    path: &Path,
) -> Result<()> {
    let mut c = plan.compressor();
    let mut input = vec![0u8; plan.len(0)];
    let mut out = Vec::new();
    for seq in 0..plan.blocks {
        let len = plan.len(seq);
        input.resize(len, 0);
        fill(&mut input)?;
        deflate_block(&mut c, plan.level, &input, plan.is_last(seq), &mut out)
            .map_err(|e| compress_error(path, e))?;
        sink(&out)?;
    }
    Ok(())
}

/// A block for a worker to compress.
struct Job {
    seq: u64,
    input: Vec<u8>,
    out: Vec<u8>,
    last: bool,
}

/// A worker's answer.
enum Done {
    /// Block `seq` compressed into `out` (or failed); `input` is handed back for reuse.
    Block {
        seq: u64,
        input: Vec<u8>,
        out: std::result::Result<Vec<u8>, CompressError>,
    },
    /// The worker panicked (a bug); the main thread must not wait for its block.
    Panicked,
}

/// Tells the main thread when a worker unwinds, so it never waits forever.
struct PanicNotice(Sender<Done>);

impl Drop for PanicNotice {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(Done::Panicked);
        }
    }
}

fn worker(level: u32, jobs: &Mutex<Receiver<Job>>, done: Sender<Done>) {
    let notice = PanicNotice(done);
    let mut c = Compress::new(flate2::Compression::new(level.min(9)), false);
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return, // no more blocks
            }
        };
        let Job {
            seq,
            input,
            mut out,
            last,
        } = job;
        let res = deflate_block(&mut c, level, &input, last, &mut out).map(|()| out);
        if notice
            .0
            .send(Done::Block {
                seq,
                input,
                out: res,
            })
            .is_err()
        {
            return; // the main thread gave up
        }
    }
}

fn compress_threaded(
    plan: &Plan,
    workers: usize,
    fill: &mut dyn FnMut(&mut [u8]) -> Result<()>,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    path: &Path,
) -> Result<()> {
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let done_tx = done_tx.clone();
                let job_rx = &job_rx;
                let level = plan.level;
                s.spawn(move || worker(level, job_rx, done_tx))
            })
            .collect();
        drop(done_tx);
        // `job_tx` moves into `feed` and is dropped when it returns, success or not,
        // which lets the workers run out of jobs and exit.
        let res = feed(plan, workers, job_tx, &done_rx, fill, sink, path);
        let mut panicked = false;
        for h in handles {
            panicked |= h.join().is_err();
        }
        match res {
            Ok(()) if panicked => Err(internal_panic(path)),
            other => other,
        }
    })
}

fn internal_panic(path: &Path) -> Error {
    Error::io(
        path,
        std::io::Error::other("internal error: a compression thread panicked"),
    )
}

/// The main thread's side of the pipeline: reads blocks, hands them out, and writes the
/// compressed blocks in order, keeping at most `2 * workers` blocks in flight.
fn feed(
    plan: &Plan,
    workers: usize,
    jobs: Sender<Job>,
    done: &Receiver<Done>,
    fill: &mut dyn FnMut(&mut [u8]) -> Result<()>,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    path: &Path,
) -> Result<()> {
    let max_in_flight = 2 * workers as u64;
    let mut free_inputs: Vec<Vec<u8>> = Vec::new();
    let mut free_outputs: Vec<Vec<u8>> = Vec::new();
    let mut ready: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut next_write = 0u64;
    let handle = |msg: Done,
                  ready: &mut BTreeMap<u64, Vec<u8>>,
                  free_inputs: &mut Vec<Vec<u8>>|
     -> Result<()> {
        match msg {
            Done::Block { seq, input, out } => {
                free_inputs.push(input);
                ready.insert(seq, out.map_err(|e| compress_error(path, e))?);
                Ok(())
            }
            Done::Panicked => Err(internal_panic(path)),
        }
    };
    let mut flush_ready = |ready: &mut BTreeMap<u64, Vec<u8>>,
                           next_write: &mut u64,
                           free_outputs: &mut Vec<Vec<u8>>|
     -> Result<()> {
        while let Some(out) = ready.remove(next_write) {
            sink(&out)?;
            free_outputs.push(out);
            *next_write += 1;
        }
        Ok(())
    };
    let gone = || {
        Error::io(
            path,
            std::io::Error::other("internal error: the compression threads stopped"),
        )
    };
    for seq in 0..plan.blocks {
        while seq - next_write >= max_in_flight {
            let msg = done.recv().map_err(|_| gone())?;
            handle(msg, &mut ready, &mut free_inputs)?;
            flush_ready(&mut ready, &mut next_write, &mut free_outputs)?;
        }
        let mut input = free_inputs.pop().unwrap_or_default();
        input.resize(plan.len(seq), 0);
        fill(&mut input)?;
        let job = Job {
            seq,
            input,
            out: free_outputs.pop().unwrap_or_default(),
            last: plan.is_last(seq),
        };
        jobs.send(job).map_err(|_| gone())?;
        while let Ok(msg) = done.try_recv() {
            handle(msg, &mut ready, &mut free_inputs)?;
        }
        flush_ready(&mut ready, &mut next_write, &mut free_outputs)?;
    }
    drop(jobs);
    while next_write < plan.blocks {
        let msg = done.recv().map_err(|_| gone())?;
        handle(msg, &mut ready, &mut free_inputs)?;
        flush_ready(&mut ready, &mut next_write, &mut free_outputs)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| ((i as f32 * 0.01).sin() * 100.0).to_le_bytes())
            .take(n)
            .collect()
    }

    fn run(data: &[u8], block: usize, threads: usize) -> Vec<u8> {
        run_at(data, 6, block, threads)
    }

    fn run_at(data: &[u8], level: u32, block: usize, threads: usize) -> Vec<u8> {
        let mut pos = 0;
        let mut fill = |buf: &mut [u8]| {
            buf.copy_from_slice(&data[pos..pos + buf.len()]);
            pos += buf.len();
            Ok(())
        };
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        compress(
            &mut fill,
            data.len() as u64,
            level,
            block,
            threads,
            &mut sink,
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(pos, data.len());
        out
    }

    fn inflate(z: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        flate2::read::DeflateDecoder::new(z)
            .read_to_end(&mut v)
            .unwrap();
        v
    }

    #[test]
    fn blocks_form_one_stream_whatever_the_thread_count() {
        let data = sample(50_000);
        let one = run(&data, 4096, 1);
        assert_eq!(inflate(&one), data);
        for threads in [2, 3, 8] {
            assert_eq!(run(&data, 4096, threads), one, "threads = {threads}");
        }
        // An exact multiple of the block size, one block, and nothing at all.
        let even = sample(4 * 4096);
        assert_eq!(inflate(&run(&even, 4096, 3)), even);
        assert_eq!(run(&even, 4096, 3), run(&even, 4096, 1));
        assert_eq!(inflate(&run(&data, 1 << 20, 2)), data);
        let empty = run(&[], 4096, 2);
        assert_eq!(empty, run(&[], 4096, 1));
        assert!(inflate(&empty).is_empty());
    }

    #[test]
    fn input_and_output_errors_stop_the_pipeline() {
        let data = sample(40_000);
        for threads in [1, 2] {
            let mut calls = 0;
            let mut fill = |buf: &mut [u8]| {
                calls += 1;
                if calls == 3 {
                    return Err(Error::usage("boom"));
                }
                buf.fill(1);
                Ok(())
            };
            let mut sink = |_: &[u8]| Ok(());
            let r = compress(
                &mut fill,
                40_000,
                6,
                1024,
                threads,
                &mut sink,
                Path::new("t"),
            );
            assert!(r.is_err());
            let mut fill = |buf: &mut [u8]| {
                buf.fill(2);
                Ok(())
            };
            let mut sink = |_: &[u8]| Err(Error::usage("disk full"));
            let r = compress(
                &mut fill,
                data.len() as u64,
                6,
                1024,
                threads,
                &mut sink,
                Path::new("t"),
            );
            assert!(r.is_err());
        }
    }

    /// xorshift bytes: incompressible.
    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn every_level_round_trips_and_ignores_the_thread_count() {
        let wave = sample(70_000);
        let rand = noise(200_003);
        let steps: Vec<u8> = (0..70_000u32).map(|i| (i / 7 % 13) as u8).collect();
        for data in [&wave, &rand, &steps] {
            for level in 0..=9 {
                let one = run_at(data, level, 65_536, 1);
                assert!(inflate(&one) == *data, "level {level}");
                assert!(run_at(data, level, 65_536, 3) == one, "level {level}");
                // Never larger than storing: stored blocks cost 5 bytes per 65,535.
                assert!(
                    one.len() <= stored_size(data.len()) + 5 * 4,
                    "level {level}"
                );
            }
        }
        // Level 0 and incompressible data are stored blocks; compressible data shrinks.
        assert_eq!(run_at(&rand, 1, 65_536, 2).len(), {
            // three full blocks of 65,536 (two pieces each) and one of 3 bytes
            200_003 + 5 * (3 * 2 + 1)
        });
        let steps: Vec<u8> = (0..70_000u32).map(|i| (i / 7 % 13) as u8).collect();
        assert!(run_at(&steps, 1, 65_536, 2).len() < steps.len() / 4);
        assert_eq!(
            run_at(&wave, 0, 65_536, 2).len(),
            stored_size_blocks(wave.len(), 65_536)
        );
        // The empty stream is one final empty stored block at level 0.
        assert_eq!(run_at(&[], 0, 4096, 2), vec![1, 0, 0, 0xff, 0xff]);
        assert!(inflate(&run_at(&[], 0, 4096, 1)).is_empty());
    }

    fn stored_size_blocks(len: usize, block: usize) -> usize {
        (0..len.div_ceil(block))
            .map(|i| stored_size(block.min(len - i * block)))
            .sum()
    }
}
