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

/// Checks that `boxes` (already inside `shape`) cover every element of `shape` exactly
/// once: the volumes add up to the element count and no two boxes overlap. `describe`
/// names slice `i` in the error.
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
    // Overlaps first: a duplicated slice is reported as such rather than as a miscount.
    let mut order: Vec<usize> = (0..boxes.len())
        .filter(|&i| box_volume(&boxes[i]) != Some(0))
        .collect();
    let start0 = |i: usize| boxes[i].first().map_or(0, |&(s, _)| s);
    let end0 = |i: usize| boxes[i].first().map_or(1, |&(s, l)| s + l);
    order.sort_by_key(|&i| start0(i));
    for (a, &i) in order.iter().enumerate() {
        for &j in &order[a + 1..] {
            if start0(j) >= end0(i) {
                break;
            }
            let overlap = boxes[i]
                .iter()
                .zip(&boxes[j])
                .all(|(&(s1, l1), &(s2, l2))| s1 < s2 + l2 && s2 < s1 + l1);
            if overlap {
                return Err(format!(
                    "slices `{}` and `{}` overlap",
                    describe(i.min(j)),
                    describe(i.max(j))
                ));
            }
        }
    }
    if sum != total {
        return Err(format!(
            "the slices hold {sum} elements but the tensor has {total}: they do not cover it"
        ));
    }
    Ok(())
}

/// Walks a tensor covered exactly once by boxes, in row-major order, as runs of
/// consecutive elements inside one box.
pub struct RunWalker {
    shape: Vec<u64>,
    boxes: Vec<SliceBox>,
    /// Multi-index of the next element.
    pos: Vec<u64>,
    /// Elements not yet walked.
    remaining: u64,
    /// The boxes crossing the current line (all dims but the last fixed), as
    /// `(first, end, box)` along the last dimension, sorted.
    line: Vec<(u64, u64, usize)>,
    line_at: usize,
}

impl RunWalker {
    /// A walker over `shape`; `boxes` must come from [`TensorSlice::resolve`] against
    /// `shape` and have passed [`check_cover`].
    pub fn new(shape: &[u64], boxes: Vec<SliceBox>) -> Self {
        let total = crate::source::num_elements(shape).unwrap_or(0);
        RunWalker {
            shape: shape.to_vec(),
            boxes,
            pos: vec![0; shape.len()],
            remaining: total,
            line: Vec::new(),
            line_at: 0,
        }
    }

    fn contains_prefix(&self, k: usize) -> bool {
        let r = self.shape.len();
        self.boxes[k]
            .iter()
            .zip(&self.pos)
            .take(r.saturating_sub(1))
            .all(|(&(s, l), &p)| p >= s && p - s < l)
    }

    fn rebuild_line(&mut self) -> std::result::Result<(), String> {
        let valid =
            !self.line.is_empty() && self.line.iter().all(|&(_, _, k)| self.contains_prefix(k));
        if valid {
            self.line_at = 0;
            return Ok(());
        }
        self.line.clear();
        for k in 0..self.boxes.len() {
            if box_volume(&self.boxes[k]) == Some(0) || !self.contains_prefix(k) {
                continue;
            }
            if let Some(&(s, l)) = self.boxes[k].last() {
                self.line.push((s, s + l, k));
            }
        }
        self.line.sort_unstable();
        self.line_at = 0;
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
            self.rebuild_line()?;
        }
        while self.line.get(self.line_at).is_some_and(|&(_, e, _)| e <= x) {
            self.line_at += 1;
        }
        let &(s, e, k) = self
            .line
            .get(self.line_at)
            .filter(|&&(s, _, _)| s <= x)
            .ok_or_else(|| format!("no slice covers element {:?}", self.pos))?;
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
