//! Partitioned (sliced) tensors, shared by the V2 bundle reader and V1 checkpoints
//! (tf-formats.md §3): the slice geometry ([`TensorSlice`]), the slice key encoding
//! `checkpoint::EncodeTensorNameSlice` ([`encode_tensor_name_slice`], §3.3), the check
//! that the slices tile the full tensor exactly once ([`check_cover`]), and streaming
//! reassembly ([`AssembledBytes`], [`AssembledStrings`]).
//!
//! Reassembly never holds the tensor: it walks the full tensor in row-major order as a
//! sequence of runs, each run a contiguous stretch of one slice, and pulls each slice's
//! data sequentially from that slice's own stream (the row-major order of a box is the
//! restriction of the full tensor's row-major order, so every slice is consumed in its
//! own storage order). Where a slice's bytes come from is the caller's business: any
//! [`ByteStream`] or [`StringRead`] will do.

use crate::error::{Ctx, Result};
use crate::formats::proto::TensorSliceProto;
use crate::source::StringRead;
use crate::stream::ByteStream;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[cfg(test)]
thread_local! {
    /// Steps taken by the cover check and the walker (box visits, comparisons, queue
    /// operations), for tests that bound the work.
    static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `n` steps of work (tests only).
#[inline]
fn tick(_n: u64) {
    #[cfg(test)]
    WORK.with(|w| w.set(w.get() + _n));
}

/// One dimension of a slice exactly as stored: `length` is `None` for "the whole
/// dimension" (`kFullExtent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// First index (0 when absent in the proto).
    pub start: i64,
    /// Number of indices, or `None` for the full dimension.
    pub length: Option<i64>,
}

/// A slice of a tensor as stored in a checkpoint (`TensorSliceProto`), one extent per
/// dimension of the full tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSlice {
    /// The extents, outermost dimension first.
    pub extents: Vec<Extent>,
}

/// A resolved slice: `(start, length)` per dimension, inside the full shape.
pub type SliceBox = Vec<(u64, u64)>;

impl TensorSlice {
    /// The slice a `TensorSliceProto` describes, with presence of `length` kept.
    pub fn from_proto(p: &TensorSliceProto) -> Self {
        use crate::formats::proto::tensor_slice_proto::extent::HasLength;
        TensorSlice {
            extents: p
                .extent
                .iter()
                .map(|e| Extent {
                    start: e.start,
                    length: e.has_length.map(|HasLength::Length(l)| l),
                })
                .collect(),
        }
    }

    /// TensorFlow's text form (`TensorSlice::DebugString`): `0,4:-` (start,length per
    /// dimension, `-` for a full one).
    pub fn to_text(&self) -> String {
        let parts: Vec<String> = self
            .extents
            .iter()
            .map(|e| match e.length {
                None if e.start == 0 => "-".to_string(),
                None => format!("{},-", e.start),
                Some(l) => format!("{},{l}", e.start),
            })
            .collect();
        parts.join(":")
    }

    /// Checks the slice against the full tensor's `shape` (same rank, non-negative
    /// starts and lengths, inside every dimension) and returns its box. The error says
    /// what is wrong, for the caller to wrap.
    pub fn resolve(&self, shape: &[u64]) -> std::result::Result<SliceBox, String> {
        if self.extents.len() != shape.len() {
            return Err(format!(
                "slice `{}` has {} dimensions but the tensor has {}",
                self.to_text(),
                self.extents.len(),
                shape.len()
            ));
        }
        let mut out = Vec::with_capacity(shape.len());
        for (d, (e, &dim)) in self.extents.iter().zip(shape).enumerate() {
            let bad = |why: &str| format!("slice `{}`: dimension {d}: {why}", self.to_text());
            let start = u64::try_from(e.start).map_err(|_| bad("negative start"))?;
            let (start, len) = match e.length {
                None if start == 0 => (0, dim),
                None => return Err(bad("a start but no length")),
                Some(l) => {
                    let len = u64::try_from(l).map_err(|_| bad("negative length"))?;
                    (start, len)
                }
            };
            if start.checked_add(len).is_none_or(|end| end > dim) {
                return Err(bad(&format!(
                    "[{start}, {start} + {len}) lies outside the tensor's size {dim}"
                )));
            }
            out.push((start, len));
        }
        Ok(out)
    }
}

/// Appends `OrderedCode::WriteNumIncreasing(v)`: a length byte, then `v` big-endian
/// without leading zero bytes.
fn write_num_increasing(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    out.push((8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends `OrderedCode::WriteString(s)`: `00` → `00 ff`, `ff` → `ff 00`, then `00 01`.
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            0x00 => out.extend_from_slice(&[0x00, 0xff]),
            0xff => out.extend_from_slice(&[0xff, 0x00]),
            b => out.push(b),
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Appends `OrderedCode::WriteSignedNumIncreasing(v)` (§3.3).
fn write_signed_num_increasing(out: &mut Vec<u8>, v: i64) {
    const HEADER: [[u8; 2]; 11] = [
        [0, 0],
        [0x80, 0],
        [0xc0, 0],
        [0xe0, 0],
        [0xf0, 0],
        [0xf8, 0],
        [0xfc, 0],
        [0xfe, 0],
        [0xff, 0],
        [0xff, 0x80],
        [0xff, 0xc0],
    ];
    let x = if v < 0 { !v } else { v } as u64;
    if x < 64 {
        out.push(0x80 ^ (v as u8));
        return;
    }
    let bits = 64 - x.leading_zeros() as usize;
    let len = bits / 7 + 1; // kBitsToLength[bits]: 2..=10
    let sign = if v < 0 { 0xff } else { 0x00 };
    let mut buf = [sign; 10];
    buf[2..].copy_from_slice(&v.to_be_bytes());
    let begin = 10 - len;
    buf[begin] ^= HEADER[len][0];
    buf[begin + 1] ^= HEADER[len][1];
    out.extend_from_slice(&buf[begin..]);
}

/// The table key under which a slice of tensor `name` is stored
/// (`checkpoint::EncodeTensorNameSlice`): the extents are encoded exactly as stored,
/// a full dimension as `(0, -1)`.
pub fn encode_tensor_name_slice(name: &[u8], slice: &TensorSlice) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 4 + 4 * slice.extents.len());
    write_num_increasing(&mut out, 0);
    write_string(&mut out, name);
    write_num_increasing(&mut out, slice.extents.len() as u64);
    for e in &slice.extents {
        write_signed_num_increasing(&mut out, e.start);
        write_signed_num_increasing(&mut out, e.length.unwrap_or(-1));
    }
    out
}

/// Elements in a box (`None` on overflow).
pub fn box_volume(b: &[(u64, u64)]) -> Option<u64> {
    b.iter().try_fold(1u64, |acc, &(_, l)| acc.checked_mul(l))
}

/// Most `u64` words the exact cover test may use for its corner terms (128 MiB, e.g.
/// a 2,000 x 1,000 grid of slices); a layout needing more is checked pairwise within
/// [`MAX_PAIR_CHECKS`] instead, and refused if that does not decide.
const MAX_TERM_WORDS: u64 = 1 << 24;
/// Most box comparisons made to find an overlapping pair.
const MAX_PAIR_CHECKS: u64 = 1 << 24;

/// Checks that `boxes` (already inside `shape`) cover every element of `shape` exactly
/// once. `describe` names slice `i` in the error.
///
/// The test is exact and takes O(n log n) for n boxes partitioned along a few
/// dimensions: restricted to the tensor, a box's indicator function is a product over
/// its dimensions of `1`, `H(x - start)`, `1 - H(x - end)` or `H(x - start) - H(x - end)`
/// (`H` the step function), so it expands into at most `2^p` signed "corner" terms
/// `prod H(x_d - c_d)`, `p` the number of dimensions the box does not span. These terms
/// are linearly independent on the grid, so the boxes tile the tensor exactly when
/// their terms cancel out except for the constant `1`. Corners are sorted and summed;
/// nothing is compared pairwise. Only a failed check looks for a pair to name.
pub fn check_cover(
    shape: &[u64],
    boxes: &[SliceBox],
    describe: impl Fn(usize) -> String,
) -> std::result::Result<(), String> {
    let total = crate::source::num_elements(shape).ok_or("element count overflows")?;
    let mut sum = 0u64;
    for b in boxes {
        sum = box_volume(b)
            .and_then(|v| sum.checked_add(v))
            .ok_or("slice volumes overflow")?;
    }
    tick(boxes.len() as u64);
    if total == 0 {
        return Ok(());
    }
    let exact = if sum == total {
        tiles(shape, boxes)
    } else {
        Some(false)
    };
    if exact == Some(true) {
        return Ok(());
    }
    // Overlaps first: a duplicated slice is reported as such rather than as a miscount.
    match find_overlap(boxes) {
        Overlap::Found(i, j) => Err(format!(
            "slices `{}` and `{}` overlap",
            describe(i.min(j)),
            describe(i.max(j))
        )),
        _ if sum != total => Err(format!(
            "the slices hold {sum} elements but the tensor has {total}: they do not cover it"
        )),
        // Too many corner terms, but no two boxes overlap and the volumes add up.
        Overlap::None if exact.is_none() => Ok(()),
        Overlap::None => Err(format!(
            "the {} slices hold {sum} elements, as many as the tensor, but overlap and leave \
             gaps",
            boxes.len()
        )),
        Overlap::Unknown if exact.is_none() => Err(format!(
            "{} slices split along this many dimensions are too many to check for an exact \
             cover within tf2npy's work limits",
            boxes.len()
        )),
        Overlap::Unknown => Err(format!(
            "the {} slices hold {sum} elements, as many as the tensor, but overlap and leave \
             gaps",
            boxes.len()
        )),
    }
}

/// What the search for overlapping slices found.
enum Overlap {
    /// These two overlap.
    Found(usize, usize),
    /// No two overlap (the search was complete).
    None,
    /// The search stopped at [`MAX_PAIR_CHECKS`].
    Unknown,
}

/// Whether `boxes` tile `shape` exactly (the corner test of [`check_cover`]), or `None`
/// when the test would need more than [`MAX_TERM_WORDS`] of memory; then a pairwise
/// check decides.
fn tiles(shape: &[u64], boxes: &[SliceBox]) -> Option<bool> {
    let live: Vec<&SliceBox> = boxes.iter().filter(|b| box_volume(b) != Some(0)).collect();
    let spans = |b: &SliceBox, d: usize| b[d] == (0, shape[d]);
    // Dimensions some box does not span; the others factor out.
    let dims: Vec<usize> = (0..shape.len())
        .filter(|&d| live.iter().any(|b| !spans(b, d)))
        .collect();
    let k = dims.len();
    let mut words = 0u64;
    for b in &live {
        let p = dims.iter().filter(|&&d| !spans(b, d)).count() as u32;
        let terms = 1u64.checked_shl(p).filter(|&t| t <= MAX_TERM_WORDS)?;
        words = words.checked_add(terms * k as u64)?;
    }
    if words > MAX_TERM_WORDS {
        return None;
    }
    // Each term: k coordinates (0 = that dimension's factor is the constant 1) and a sign.
    let mut keys: Vec<u64> = Vec::with_capacity(words as usize);
    let mut signs: Vec<i8> = Vec::with_capacity((words as usize) / k.max(1));
    let mut constant = 0i64;
    let mut key = vec![0u64; k];
    for b in &live {
        // Factor options per dimension: (coordinate, sign), coordinate 0 for "1".
        let mut opts: Vec<[(u64, i8); 2]> = Vec::with_capacity(k);
        let mut nopts: Vec<usize> = Vec::with_capacity(k);
        for &d in &dims {
            let (s, l) = b[d];
            let e = s + l;
            let (o, n) = match (s == 0, e == shape[d]) {
                (true, true) => ([(0, 1), (0, 0)], 1),
                (true, false) => ([(0, 1), (e, -1)], 2),
                (false, true) => ([(s, 1), (0, 0)], 1),
                (false, false) => ([(s, 1), (e, -1)], 2),
            };
            opts.push(o);
            nopts.push(n);
        }
        let mut choice = vec![0usize; k];
        loop {
            let mut sign = 1i8;
            let mut is_constant = true;
            for i in 0..k {
                let (c, sg) = opts[i][choice[i]];
                key[i] = c;
                sign *= sg;
                is_constant &= c == 0;
            }
            tick(1);
            if is_constant {
                constant += i64::from(sign);
            } else {
                keys.extend_from_slice(&key);
                signs.push(sign);
            }
            // Next combination.
            let mut i = 0;
            while i < k {
                choice[i] += 1;
                if choice[i] < nopts[i] {
                    break;
                }
                choice[i] = 0;
                i += 1;
            }
            if i == k {
                break;
            }
        }
    }
    if constant != 1 {
        return Some(false);
    }
    let n = signs.len();
    let key_of = |i: usize| &keys[i * k..i * k + k];
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by(|&a, &b| key_of(a as usize).cmp(key_of(b as usize)));
    tick(n as u64 * u64::from(usize::BITS - n.leading_zeros()));
    let mut at = 0;
    while at < n {
        let first = key_of(order[at] as usize);
        let mut total = 0i64;
        while at < n && key_of(order[at] as usize) == first {
            total += i64::from(signs[order[at] as usize]);
            at += 1;
        }
        if total != 0 {
            return Some(false);
        }
    }
    Some(true)
}

/// Two boxes with elements in common, if some are found: exact duplicates by sorting,
/// then pairs along the dimension with the most distinct starts, within
/// [`MAX_PAIR_CHECKS`] comparisons.
fn find_overlap(boxes: &[SliceBox]) -> Overlap {
    let mut order: Vec<usize> = (0..boxes.len())
        .filter(|&i| box_volume(&boxes[i]) != Some(0))
        .collect();
    order.sort_by(|&a, &b| boxes[a].cmp(&boxes[b]));
    if let Some(w) = order.windows(2).find(|w| boxes[w[0]] == boxes[w[1]]) {
        return Overlap::Found(w[0], w[1]);
    }
    let rank = boxes.first().map_or(0, Vec::len);
    let distinct = |d: usize| {
        let mut s: Vec<u64> = order.iter().map(|&i| boxes[i][d].0).collect();
        s.sort_unstable();
        s.dedup();
        s.len()
    };
    let d = (0..rank).max_by_key(|&d| distinct(d)).unwrap_or(0);
    let start = |i: usize| boxes[i].get(d).map_or(0, |&(s, _)| s);
    let end = |i: usize| boxes[i].get(d).map_or(1, |&(s, l)| s + l);
    order.sort_by_key(|&i| start(i));
    let mut checks = 0u64;
    for (a, &i) in order.iter().enumerate() {
        for &j in &order[a + 1..] {
            checks += 1;
            if checks > MAX_PAIR_CHECKS {
                return Overlap::Unknown;
            }
            if start(j) >= end(i) {
                break;
            }
            let overlap = boxes[i]
                .iter()
                .zip(&boxes[j])
                .all(|(&(s1, l1), &(s2, l2))| s1 < s2 + l2 && s2 < s1 + l1);
            if overlap {
                return Overlap::Found(i, j);
            }
        }
    }
    Overlap::None
}

/// Walks a tensor covered exactly once by boxes, in row-major order, as runs of
/// consecutive elements inside one box.
///
/// A line is a row of the last dimension. The boxes wait in a queue keyed by the next
/// line they cross; at the start of a line the boxes keyed by it are popped (sorted by
/// their start in the last dimension, they must tile the line), and after each run its
/// box is queued again for its next line. Each run costs O(log n), so a walk over n
/// boxes takes O((n + runs) log n), never a pass over every box per line.
pub struct RunWalker {
    shape: Vec<u64>,
    boxes: Vec<SliceBox>,
    /// Multi-index of the next element.
    pos: Vec<u64>,
    /// Elements not yet walked.
    remaining: u64,
    /// Boxes by the next line they cross: `(line, start in the last dimension, box)`.
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// The boxes crossing the current line, as `(first, end, box)` along the last
    /// dimension, sorted.
    line: Vec<(u64, u64, usize)>,
    line_at: usize,
}

impl RunWalker {
    /// A walker over `shape`; `boxes` must come from [`TensorSlice::resolve`] against
    /// `shape` and have passed [`check_cover`].
    pub fn new(shape: &[u64], boxes: Vec<SliceBox>) -> Self {
        let total = crate::source::num_elements(shape).unwrap_or(0);
        let mut w = RunWalker {
            shape: shape.to_vec(),
            boxes,
            pos: vec![0; shape.len()],
            remaining: total,
            queue: BinaryHeap::new(),
            line: Vec::new(),
            line_at: 0,
        };
        if total > 0 && !shape.is_empty() {
            let mut queue = Vec::with_capacity(w.boxes.len());
            for (k, b) in w.boxes.iter().enumerate() {
                if box_volume(b) == Some(0) || b.len() != shape.len() {
                    continue;
                }
                let first: Vec<u64> = b.iter().map(|&(s, _)| s).collect();
                let line = w.line_index(&first);
                queue.push(Reverse((line, first[shape.len() - 1], k)));
            }
            tick(queue.len() as u64);
            w.queue = BinaryHeap::from(queue);
        }
        w
    }

    /// The row-major number of the line holding multi-index `at` (its last
    /// coordinate is ignored).
    fn line_index(&self, at: &[u64]) -> u64 {
        let r = self.shape.len();
        let mut line = 0u64;
        for (&dim, &x) in self.shape.iter().zip(at).take(r.saturating_sub(1)) {
            line = line * dim + x;
        }
        line
    }

    /// Queues box `k` for the first line after line `line` (a line it crosses) that
    /// it crosses too.
    fn requeue(&mut self, k: usize, line: u64) {
        let r = self.shape.len();
        let b = &self.boxes[k];
        // The multi-index of `line` over dims 0..r-1.
        let mut at = vec![0u64; r];
        let mut rest = line;
        for d in (0..r.saturating_sub(1)).rev() {
            at[d] = rest % self.shape[d];
            rest /= self.shape[d];
        }
        let Some(d) = (0..r.saturating_sub(1))
            .rev()
            .find(|&d| at[d] + 1 < b[d].0 + b[d].1)
        else {
            return;
        };
        at[d] += 1;
        for (e, a) in at.iter_mut().enumerate().take(r - 1).skip(d + 1) {
            *a = b[e].0;
        }
        let next = self.line_index(&at);
        tick(1);
        self.queue.push(Reverse((next, b[r - 1].0, k)));
    }

    /// Pops the boxes crossing the line the walk is at.
    fn start_line(&mut self) -> std::result::Result<(), String> {
        let line = self.line_index(&self.pos);
        self.line.clear();
        self.line_at = 0;
        while let Some(&Reverse((l, s, k))) = self.queue.peek() {
            if l > line {
                break;
            }
            self.queue.pop();
            tick(1);
            if l < line {
                return Err(format!("the slices overlap near element {:?}", self.pos));
            }
            let len = self.boxes[k].last().map_or(0, |&(_, l)| l);
            self.line.push((s, s + len, k));
        }
        let mut at = 0;
        for &(s, e, _) in &self.line {
            if s != at {
                return Err(format!("no slice covers element {:?}", self.pos));
            }
            at = e;
        }
        if self.shape.last().is_some_and(|&d| at != d) {
            return Err(format!("no slice covers the end of line {:?}", self.pos));
        }
        Ok(())
    }

    /// Adds `n` to the multi-index.
    fn advance(&mut self, n: u64) {
        let mut carry = n;
        for d in (0..self.shape.len()).rev() {
            if carry == 0 {
                break;
            }
            let dim = self.shape[d];
            let sum = self.pos[d] + carry % dim;
            self.pos[d] = sum % dim;
            carry = carry / dim + sum / dim;
        }
    }

    /// The next run: `(box index, element count)`, or `None` when the tensor is done.
    pub fn next_run(&mut self) -> std::result::Result<Option<(usize, u64)>, String> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let r = self.shape.len();
        if r == 0 {
            self.remaining = 0;
            let k = (0..self.boxes.len()).next().ok_or("no slices")?;
            return Ok(Some((k, 1)));
        }
        let last = r - 1;
        let x = self.pos[last];
        if x == 0 {
            self.start_line()?;
        }
        while self.line.get(self.line_at).is_some_and(|&(_, e, _)| e <= x) {
            self.line_at += 1;
        }
        let &(s, e, k) = self
            .line
            .get(self.line_at)
            .filter(|&&(s, _, _)| s <= x)
            .ok_or_else(|| format!("no slice covers element {:?}", self.pos))?;
        let line = self.line_index(&self.pos);
        let count = if s == 0 && e == self.shape[last] && x == 0 {
            // The box spans whole lines: extend the run over every line it holds.
            let b = &self.boxes[k];
            let t = (0..last).rev().find(|&d| b[d].1 != self.shape[d]);
            match t {
                None => self.remaining,
                Some(t) => {
                    let mut inner = 1u64;
                    let mut inner_off = 0u64;
                    for d in t + 1..r {
                        inner_off = inner_off * self.shape[d] + self.pos[d];
                        inner *= self.shape[d];
                    }
                    let (bs, bl) = b[t];
                    (bs + bl - self.pos[t]) * inner - inner_off
                }
            }
        } else {
            e - x
        };
        let count = count.min(self.remaining);
        // The last line this run touches; the box waits for the next one it crosses.
        let last_line = line + (x + count - 1) / self.shape[last];
        self.requeue(k, last_line);
        self.remaining -= count;
        self.advance(count);
        Ok(Some((k, count)))
    }
}

/// A fixed-size-element tensor reassembled from its slices' byte streams.
pub struct AssembledBytes<'a> {
    walker: RunWalker,
    parts: Vec<Box<dyn ByteStream + 'a>>,
    /// Bytes each part has yet to deliver.
    left: Vec<u64>,
    elem_bytes: u64,
    /// Current run: part and bytes left in it.
    run: Option<(usize, u64)>,
    ctx: Ctx,
    labels: Vec<String>,
    done: bool,
}

impl<'a> AssembledBytes<'a> {
    /// Reassembles a tensor of `shape` whose elements take `elem_bytes` bytes from
    /// `parts`, part `i` holding box `boxes[i]` in row-major order (one part per box).
    /// `boxes` must come from [`TensorSlice::resolve`] against `shape` and have passed
    /// [`check_cover`]. `labels` name the slices in errors; `ctx` names the file
    /// and tensor.
    pub fn new(
        shape: &[u64],
        boxes: Vec<SliceBox>,
        parts: Vec<Box<dyn ByteStream + 'a>>,
        elem_bytes: u64,
        labels: Vec<String>,
        ctx: Ctx,
    ) -> Self {
        let left = boxes
            .iter()
            .map(|b| box_volume(b).unwrap_or(0).saturating_mul(elem_bytes))
            .collect();
        AssembledBytes {
            walker: RunWalker::new(shape, boxes),
            parts,
            left,
            elem_bytes,
            run: None,
            ctx,
            labels,
            done: false,
        }
    }

    fn label(&self, k: usize) -> &str {
        self.labels.get(k).map_or("?", String::as_str)
    }

    /// Reads part `k` to its end: it must have nothing left, and its final read runs
    /// its integrity checks.
    fn finish_part(&mut self, k: usize) -> Result<()> {
        let mut probe = [0u8; 1];
        let n = self.parts[k].read(&mut probe)?;
        if n != 0 {
            return Err(self.ctx.corrupt(format!(
                "slice `{}` holds more data than its shape needs",
                self.label(k)
            )));
        }
        Ok(())
    }
}

impl ByteStream for AssembledBytes<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let mut filled = 0usize;
        while filled < buf.len() {
            let (k, rest) = match self.run {
                Some(r) if r.1 > 0 => r,
                _ => match self.walker.next_run().map_err(|e| self.ctx.corrupt(e))? {
                    None => break,
                    Some((k, count)) => (k, count.saturating_mul(self.elem_bytes)),
                },
            };
            if k >= self.parts.len() {
                return Err(self.ctx.corrupt(format!("internal error: no slice {k}")));
            }
            let want =
                usize::try_from(rest).map_or(buf.len() - filled, |r| r.min(buf.len() - filled));
            let n = self.parts[k].read(&mut buf[filled..filled + want])?;
            if n == 0 {
                return Err(self.ctx.corrupt(format!(
                    "slice `{}` ended before all its elements were read",
                    self.label(k)
                )));
            }
            filled += n;
            self.run = Some((k, rest - n as u64));
            self.left[k] = self.left[k].saturating_sub(n as u64);
            if self.left[k] == 0 {
                self.finish_part(k)?;
            }
        }
        if filled > 0 {
            return Ok(filled);
        }
        // Every element is out; parts with no elements still get their checks.
        for k in 0..self.parts.len().min(self.left.len()) {
            if self.left[k] != 0 || box_volume(&self.walker.boxes[k]) == Some(0) {
                self.finish_part(k)?;
            }
        }
        self.done = true;
        Ok(0)
    }
}

/// A string tensor reassembled from its slices' string streams.
pub struct AssembledStrings<'a> {
    walker: RunWalker,
    parts: Vec<Box<dyn StringRead + 'a>>,
    left: Vec<u64>,
    run: Option<(usize, u64)>,
    ctx: Ctx,
    labels: Vec<String>,
    scratch: Vec<u8>,
    done: bool,
}

impl<'a> AssembledStrings<'a> {
    /// Like [`AssembledBytes::new`], for string slices.
    pub fn new(
        shape: &[u64],
        boxes: Vec<SliceBox>,
        parts: Vec<Box<dyn StringRead + 'a>>,
        labels: Vec<String>,
        ctx: Ctx,
    ) -> Self {
        let left = boxes.iter().map(|b| box_volume(b).unwrap_or(0)).collect();
        AssembledStrings {
            walker: RunWalker::new(shape, boxes),
            parts,
            left,
            run: None,
            ctx,
            labels,
            scratch: Vec::new(),
            done: false,
        }
    }

    fn finish_part(&mut self, k: usize) -> Result<()> {
        if self.parts[k].next_into(&mut self.scratch)? {
            let label = self.labels.get(k).map_or("?", String::as_str);
            return Err(self.ctx.corrupt(format!(
                "slice `{label}` holds more strings than its shape needs"
            )));
        }
        Ok(())
    }
}

impl StringRead for AssembledStrings<'_> {
    fn max_len(&mut self) -> Result<u64> {
        let mut max = 0;
        for p in &mut self.parts {
            max = max.max(p.max_len()?);
        }
        Ok(max)
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        if self.done {
            out.clear();
            return Ok(false);
        }
        let (k, rest) = match self.run {
            Some(r) if r.1 > 0 => r,
            _ => match self.walker.next_run().map_err(|e| self.ctx.corrupt(e))? {
                None => {
                    for k in 0..self.parts.len().min(self.left.len()) {
                        if self.left[k] != 0 || box_volume(&self.walker.boxes[k]) == Some(0) {
                            self.finish_part(k)?;
                        }
                    }
                    self.done = true;
                    out.clear();
                    return Ok(false);
                }
                Some(r) => r,
            },
        };
        if k >= self.parts.len() || !self.parts[k].next_into(out)? {
            let label = self.labels.get(k).map_or("?", String::as_str);
            return Err(self.ctx.corrupt(format!(
                "slice `{label}` ended before all its strings were read"
            )));
        }
        self.run = Some((k, rest - 1));
        self.left[k] = self.left[k].saturating_sub(1);
        if self.left[k] == 0 {
            self.finish_part(k)?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::VecStrings;
    use crate::stream::{read_to_end, SliceStream};

    fn ext(v: &[(i64, Option<i64>)]) -> TensorSlice {
        TensorSlice {
            extents: v
                .iter()
                .map(|&(start, length)| Extent { start, length })
                .collect(),
        }
    }

    fn signed(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_signed_num_increasing(&mut out, v);
        out
    }

    #[test]
    fn encodes_spec_examples() {
        let key = encode_tensor_name_slice(b"part", &ext(&[(0, Some(4)), (0, Some(3))]));
        assert_eq!(
            key,
            [0x00, 0x70, 0x61, 0x72, 0x74, 0x00, 0x01, 0x01, 0x02, 0x80, 0x84, 0x80, 0x83]
        );
        let key = encode_tensor_name_slice(b"foo", &ext(&[(0, Some(5)), (0, None)]));
        assert_eq!(
            key,
            [0x00, 0x66, 0x6f, 0x6f, 0x00, 0x01, 0x01, 0x02, 0x80, 0x85, 0x80, 0x7f]
        );
        assert_eq!(signed(0), [0x80]);
        assert_eq!(signed(5), [0x85]);
        assert_eq!(signed(63), [0xbf]);
        assert_eq!(signed(-1), [0x7f]);
        assert_eq!(signed(-64), [0x40]);
        assert_eq!(signed(64), [0xc0, 0x40]);
        assert_eq!(signed(100), [0xc0, 0x64]);
        assert_eq!(signed(-65), [0x3f, 0xbf]);
        assert_eq!(signed(8191), [0xdf, 0xff]);
        assert_eq!(signed(8192), [0xe0, 0x20, 0x00]);
        assert_eq!(signed(i64::MAX).len(), 10);
        assert_eq!(signed(i64::MAX)[..2], [0xff, 0xc0]);
        assert_eq!(signed(i64::MIN).len(), 10);
        // Signed encodings sort like the numbers.
        let vals = [
            i64::MIN,
            -1 << 40,
            -8193,
            -65,
            -64,
            -1,
            0,
            63,
            64,
            8191,
            8192,
            1 << 40,
            i64::MAX,
        ];
        for w in vals.windows(2) {
            assert!(signed(w[0]) < signed(w[1]), "{} {}", w[0], w[1]);
        }
    }

    #[test]
    fn encodes_names_and_ranks() {
        let mut out = Vec::new();
        write_num_increasing(&mut out, 300);
        assert_eq!(out, [0x02, 0x01, 0x2c]);
        let key = encode_tensor_name_slice(b"a\x00\xffb", &ext(&[(0, None)]));
        assert_eq!(
            key,
            [0x00, b'a', 0x00, 0xff, 0xff, 0x00, b'b', 0x00, 0x01, 0x01, 0x01, 0x80, 0x7f]
        );
        // The MaxShardSizePolicy key of tf-formats.md §3.1: rows 66..73 of [100,10],
        // with the second dimension spelled out as (0, 10).
        let key = encode_tensor_name_slice(
            b"m/big/.ATTRIBUTES/VARIABLE_VALUE",
            &ext(&[(66, Some(7)), (0, Some(10))]),
        );
        let want = b"\x00m/big/.ATTRIBUTES/VARIABLE_VALUE\x00\x01\x01\x02\xc0B\x87\x80\x8a";
        assert_eq!(key, want.to_vec());
    }

    #[test]
    fn resolves_and_rejects_slices() {
        let shape = [10, 3];
        assert_eq!(
            ext(&[(4, Some(3)), (0, None)]).resolve(&shape).unwrap(),
            vec![(4, 3), (0, 3)]
        );
        assert_eq!(ext(&[(4, Some(3)), (0, None)]).to_text(), "4,3:-");
        for bad in [
            ext(&[(0, Some(4))]),
            ext(&[(-1, Some(4)), (0, None)]),
            ext(&[(0, Some(-4)), (0, None)]),
            ext(&[(8, Some(3)), (0, None)]),
            ext(&[(1, None), (0, None)]),
            ext(&[(i64::MAX, Some(i64::MAX)), (0, None)]),
        ] {
            assert!(bad.resolve(&shape).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checks_cover() {
        let d = |i: usize| i.to_string();
        let shape = [10, 3];
        let good = vec![vec![(0, 4), (0, 3)], vec![(4, 6), (0, 3)]];
        assert!(check_cover(&shape, &good, d).is_ok());
        let gap = vec![vec![(0, 4), (0, 3)], vec![(5, 5), (0, 3)]];
        assert!(check_cover(&shape, &gap, d)
            .unwrap_err()
            .contains("do not cover"));
        let overlap = vec![vec![(0, 5), (0, 3)], vec![(4, 5), (0, 3)]];
        assert!(check_cover(&shape, &overlap, d)
            .unwrap_err()
            .contains("overlap"));
        let dup = vec![vec![(0, 10), (0, 3)], vec![(0, 10), (0, 3)]];
        assert!(check_cover(&shape, &dup, d)
            .unwrap_err()
            .contains("overlap"));
        // Same total, but one overlaps and leaves a hole.
        let shifted = vec![vec![(0, 10), (0, 2)], vec![(0, 10), (1, 1)]];
        assert!(check_cover(&shape, &shifted, d).is_err());
    }

    /// Builds the row-major bytes of each box of a tensor whose element i is `i` as u16.
    fn parts_of(shape: &[u64], boxes: &[SliceBox]) -> Vec<Vec<u8>> {
        let strides: Vec<u64> = (0..shape.len())
            .map(|d| shape[d + 1..].iter().product())
            .collect();
        boxes
            .iter()
            .map(|b| {
                let mut out = Vec::new();
                let n = box_volume(b).unwrap();
                for i in 0..n {
                    let mut rem = i;
                    let mut lin = 0;
                    for d in (0..b.len()).rev() {
                        let idx = b[d].0 + rem % b[d].1;
                        rem /= b[d].1;
                        lin += idx * strides[d];
                    }
                    out.extend_from_slice(&(lin as u16).to_le_bytes());
                }
                out
            })
            .collect()
    }

    fn assemble(shape: &[u64], boxes: Vec<SliceBox>, chunk: usize) -> Vec<u8> {
        check_cover(shape, &boxes, |i| i.to_string()).unwrap();
        let data = parts_of(shape, &boxes);
        let parts: Vec<Box<dyn ByteStream + '_>> = data
            .iter()
            .map(|d| Box::new(SliceStream::new(d)) as Box<dyn ByteStream>)
            .collect();
        let labels = (0..boxes.len()).map(|i| i.to_string()).collect();
        let mut a = AssembledBytes::new(shape, boxes, parts, 2, labels, Ctx::file("t"));
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = a.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    fn iota(n: u64) -> Vec<u8> {
        (0..n).flat_map(|i| (i as u16).to_le_bytes()).collect()
    }

    #[test]
    fn reassembles_any_axis_and_rank() {
        let cases: Vec<(Vec<u64>, Vec<SliceBox>)> = vec![
            (
                vec![10, 3],
                vec![
                    vec![(0, 4), (0, 3)],
                    vec![(4, 3), (0, 3)],
                    vec![(7, 3), (0, 3)],
                ],
            ),
            (vec![4, 6], vec![vec![(0, 4), (0, 3)], vec![(0, 4), (3, 3)]]),
            (
                vec![3, 4, 5],
                vec![
                    vec![(0, 2), (0, 4), (0, 2)],
                    vec![(0, 2), (0, 4), (2, 3)],
                    vec![(2, 1), (0, 1), (0, 5)],
                    vec![(2, 1), (1, 3), (0, 5)],
                ],
            ),
            (vec![7], vec![vec![(3, 4)], vec![(0, 3)]]),
            (vec![5, 2], vec![vec![(0, 5), (0, 2)]]),
            (vec![2, 3], vec![vec![(0, 2), (0, 3)], vec![(0, 0), (0, 3)]]),
            (
                vec![4, 4],
                vec![
                    vec![(0, 2), (0, 2)],
                    vec![(0, 2), (2, 2)],
                    vec![(2, 2), (0, 3)],
                    vec![(2, 2), (3, 1)],
                ],
            ),
            (vec![0, 3], vec![vec![(0, 0), (0, 3)]]),
        ];
        for (shape, boxes) in cases {
            let n = shape.iter().product();
            for chunk in [1, 3, 64, 4096] {
                assert_eq!(
                    assemble(&shape, boxes.clone(), chunk),
                    iota(n),
                    "{shape:?} {boxes:?} {chunk}"
                );
            }
        }
    }

    #[test]
    fn reassembles_strings() {
        let shape = [2, 3];
        let boxes = vec![vec![(0, 2), (0, 1)], vec![(0, 2), (1, 2)]];
        let parts: Vec<Box<dyn StringRead>> = vec![
            Box::new(VecStrings::new(vec![b"a".to_vec(), b"d".to_vec()])),
            Box::new(VecStrings::new(vec![
                b"bb".to_vec(),
                b"c".to_vec(),
                b"eeee".to_vec(),
                b"f".to_vec(),
            ])),
        ];
        let mut s = AssembledStrings::new(
            &shape,
            boxes,
            parts,
            vec!["0".into(), "1".into()],
            Ctx::file("t"),
        );
        assert_eq!(s.max_len().unwrap(), 4);
        let mut got = Vec::new();
        let mut e = Vec::new();
        while s.next_into(&mut e).unwrap() {
            got.push(String::from_utf8(e.clone()).unwrap());
        }
        assert_eq!(got, ["a", "bb", "c", "d", "eeee", "f"]);
        assert!(!s.next_into(&mut e).unwrap());
    }

    /// The corner test agrees with counting every element's boxes, on random box sets
    /// (most of them tilings made by random guillotine cuts, then perturbed).
    #[test]
    fn cover_check_matches_brute_force() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n.max(1)
        };
        fn cut(b: SliceBox, depth: u32, rnd: &mut dyn FnMut(u64) -> u64, out: &mut Vec<SliceBox>) {
            let d = rnd(b.len() as u64) as usize;
            if depth == 0 || b[d].1 < 2 || rnd(4) == 0 {
                out.push(b);
                return;
            }
            let at = 1 + rnd(b[d].1 - 1);
            let (mut lo, mut hi) = (b.clone(), b);
            lo[d].1 = at;
            hi[d] = (hi[d].0 + at, hi[d].1 - at);
            cut(lo, depth - 1, rnd, out);
            cut(hi, depth - 1, rnd, out);
        }
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..3000 {
            let rank = 1 + rnd(3) as usize;
            let shape: Vec<u64> = (0..rank).map(|_| 1 + rnd(4)).collect();
            let mut boxes = Vec::new();
            cut(
                shape.iter().map(|&d| (0, d)).collect(),
                5,
                &mut rnd,
                &mut boxes,
            );
            match rnd(4) {
                0 => {
                    // Move one box by one along a dimension it does not fill.
                    let i = rnd(boxes.len() as u64) as usize;
                    let d = rnd(rank as u64) as usize;
                    let (s, l) = boxes[i][d];
                    if s + l < shape[d] {
                        boxes[i][d] = (s + 1, l);
                    } else if s > 0 {
                        boxes[i][d] = (s - 1, l);
                    }
                }
                1 => {
                    let i = rnd(boxes.len() as u64) as usize;
                    boxes.push(boxes[i].clone());
                }
                2 => {
                    let i = rnd(boxes.len() as u64) as usize;
                    boxes.remove(i);
                }
                _ => {}
            }
            let total: u64 = shape.iter().product();
            let mut count = vec![0u32; total as usize];
            for b in &boxes {
                for (lin, c) in count.iter_mut().enumerate() {
                    let (mut rem, mut inside) = (lin as u64, true);
                    for d in (0..rank).rev() {
                        let x = rem % shape[d];
                        rem /= shape[d];
                        inside &= x >= b[d].0 && x < b[d].0 + b[d].1;
                    }
                    *c += u32::from(inside);
                }
            }
            let want = count.iter().all(|&c| c == 1);
            let got = check_cover(&shape, &boxes, |i| i.to_string());
            assert_eq!(got.is_ok(), want, "{shape:?} {boxes:?}: {got:?}");
            if want {
                ok += 1;
                assert_eq!(assemble(&shape, boxes, 5), iota(total), "{shape:?}");
            } else {
                bad += 1;
            }
        }
        assert!(ok > 500 && bad > 500, "{ok} tilings, {bad} others");
    }

    /// Boxes whose corner test would need too much memory (each partial in 23 of 24
    /// dimensions: 2^23 terms each) are decided by the pairwise search instead.
    #[test]
    fn many_dimensional_slices_fall_back_to_the_pairwise_check() {
        let rank = 24;
        let shape = vec![2u64; rank];
        let mut boxes: Vec<SliceBox> = (0..2u64)
            .map(|i| {
                (0..rank)
                    .map(|d| if d == 0 { (i, 1) } else { (d as u64 % 2, 1) })
                    .collect()
            })
            .collect();
        assert!(tiles(&shape, &boxes).is_none());
        let err = check_cover(&shape, &boxes, |i| i.to_string()).unwrap_err();
        assert!(err.contains("do not cover"), "{err}");
        boxes.push(boxes[0].clone());
        let err = check_cover(&shape, &boxes, |i| i.to_string()).unwrap_err();
        assert!(err.contains("overlap"), "{err}");
    }

    /// Row-major box list of a `rows x cols` grid of `h x w` tiles.
    fn grid(rows: u64, cols: u64, h: u64, w: u64) -> (Vec<u64>, Vec<SliceBox>) {
        let mut boxes = Vec::new();
        for i in 0..rows {
            for j in 0..cols {
                boxes.push(vec![(i * h, h), (j * w, w)]);
            }
        }
        (vec![rows * h, cols * w], boxes)
    }

    /// The cover check and a full walk over `n` slices take O(n log n) steps, whatever
    /// axis the tensor is split along (they took O(n^2): every box was compared with
    /// every other, and every line rescanned every box).
    #[test]
    fn cover_check_and_walk_are_near_linear() {
        let n = 4096u64;
        let mut cases = vec![
            ("rows", grid(n, 1, 1, 1)),
            ("columns", grid(1, n, 1, 1)),
            ("tall columns", grid(1, n, 3, 1)),
            ("grid", grid(64, 64, 2, 2)),
        ];
        // Rows, reversed (slices need not be listed in order).
        let (shape, mut boxes) = grid(n, 1, 1, 2);
        boxes.reverse();
        cases.push(("reversed rows", (shape, boxes)));
        let bound = 64 * n * n.ilog2() as u64;
        for (what, (shape, boxes)) in cases {
            WORK.with(|w| w.set(0));
            check_cover(&shape, &boxes, |i| i.to_string()).unwrap();
            let mut w = RunWalker::new(&shape, boxes);
            let mut elems = 0;
            while let Some((_, c)) = w.next_run().unwrap() {
                elems += c;
            }
            assert_eq!(elems, shape.iter().product::<u64>(), "{what}");
            let work = WORK.with(|w| w.get());
            assert!(
                work <= bound,
                "{what}: {work} steps for {n} slices (bound {bound})"
            );
        }
    }

    #[test]
    fn rejects_short_slice_data() {
        let shape = [4];
        let boxes = vec![vec![(0, 2)], vec![(2, 2)]];
        let a = [0u8; 4];
        let b = [0u8; 3];
        let parts: Vec<Box<dyn ByteStream>> = vec![
            Box::new(SliceStream::new(&a)),
            Box::new(SliceStream::new(&b)),
        ];
        let mut s = AssembledBytes::new(
            &shape,
            boxes,
            parts,
            2,
            vec!["x".into(), "y".into()],
            Ctx::file("t"),
        );
        let mut out = Vec::new();
        let err = read_to_end(&mut s, &mut out).unwrap_err();
        assert!(err.to_string().contains("slice `y` ended before"), "{err}");
    }
}
