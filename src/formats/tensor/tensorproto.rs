//! Serialized `TensorProto`s: what `tf.io.serialize_tensor` writes and what GraphDef
//! `Const` nodes hold. Implements TensorFlow's `Tensor::FromProto` rules
//! (tf-formats.md §6.4): `tensor_content` holds raw little-endian elements (strings as a
//! varint32 length list then the bytes); otherwise the typed field for the dtype is
//! used, where no values mean zeros (empty strings) and fewer values than elements
//! repeat the last one. Typed values are expanded while streaming, so a broadcast
//! constant of any shape takes constant memory.

use crate::dtype::DataType;
use crate::error::{Ctx, Result};
use crate::formats::proto::{TensorProto, TensorShapeProto};
use crate::source::{num_elements, Container, Entry, RawTensor, StringRead, VecStrings};
use crate::stream::{ByteStream, SliceStream};
use prost::Message;
use std::path::{Path, PathBuf};

/// TensorFlow's limit on the number of dimensions (`TensorShape::MaxDimensions`).
pub const MAX_DIMS: usize = 254;

/// Validates a shape proto like `TensorShape::IsValid`: known rank, at most 254 dims,
/// sizes ≥ 0, element count within `i64`. Returns the dims.
pub fn parse_shape(shape: Option<&TensorShapeProto>, ctx: &Ctx) -> Result<Vec<u64>> {
    let Some(shape) = shape else {
        return Ok(Vec::new());
    };
    if shape.unknown_rank {
        return Err(ctx.corrupt("shape has unknown rank"));
    }
    if shape.dim.len() > MAX_DIMS {
        return Err(ctx.corrupt(format!(
            "shape has {} dimensions, more than TensorFlow's {MAX_DIMS}",
            shape.dim.len()
        )));
    }
    let mut dims = Vec::with_capacity(shape.dim.len());
    for d in &shape.dim {
        let size = u64::try_from(d.size)
            .map_err(|_| ctx.corrupt(format!("shape has a negative dimension ({})", d.size)))?;
        dims.push(size);
    }
    match num_elements(&dims) {
        Some(n) if n <= i64::MAX as u64 => Ok(dims),
        _ => Err(ctx.corrupt(format!(
            "shape {dims:?} has more elements than fit in 64 bits"
        ))),
    }
}

/// Reads a `TensorProto`'s dtype, checking it is a known, valid value.
pub fn parse_dtype(code: i32, ctx: &Ctx) -> Result<DataType> {
    DataType::from_code(code)
        .ok_or_else(|| ctx.corrupt(format!("invalid or unknown dtype value {code}")))
}

/// Bytes the tensor's values occupy in the proto (for `--list`).
pub fn stored_bytes(tp: &TensorProto) -> u64 {
    let fields = [
        tp.tensor_content.len(),
        tp.float_val.len() * 4,
        tp.double_val.len() * 8,
        tp.int_val.len() * 4,
        tp.string_val.iter().map(Vec::len).sum::<usize>(),
        tp.scomplex_val.len() * 4,
        tp.int64_val.len() * 8,
        tp.bool_val.len(),
        tp.dcomplex_val.len() * 8,
        tp.half_val.len() * 2,
        tp.uint32_val.len() * 4,
        tp.uint64_val.len() * 8,
        tp.float8_val.len(),
    ];
    fields.iter().map(|&n| n as u64).sum()
}

/// Opens a decoded `TensorProto` of `dtype` and `shape` as a stream.
pub fn open_tensor<'a>(
    tp: &'a TensorProto,
    dtype: DataType,
    shape: &[u64],
    ctx: &Ctx,
) -> Result<RawTensor<'a>> {
    let n = num_elements(shape).ok_or_else(|| ctx.corrupt("element count overflows"))?;
    if dtype == DataType::String {
        return Ok(RawTensor::Strings(Box::new(open_strings(tp, n, ctx)?)));
    }
    let Some(size) = dtype.storage_bytes() else {
        return Err(ctx.unsupported(format!(
            "{dtype} tensors have no NumPy equivalent and cannot be converted"
        )));
    };
    if n == 0 {
        return Ok(RawTensor::Fixed(Box::new(SliceStream::new(&[]))));
    }
    if !tp.tensor_content.is_empty() {
        let want = n.checked_mul(size);
        if want != Some(tp.tensor_content.len() as u64) {
            return Err(ctx.corrupt(format!(
                "tensor_content has {} bytes, but {n} {dtype} elements need {}",
                tp.tensor_content.len(),
                want.map_or("more than 2^64".to_string(), |w| w.to_string())
            )));
        }
        if dtype == DataType::Bool {
            if let Some(pos) = tp.tensor_content.iter().position(|&b| b > 1) {
                return Err(ctx.corrupt(format!(
                    "bool tensor_content byte {pos} is {}, not 0 or 1",
                    tp.tensor_content[pos]
                )));
            }
        }
        return Ok(RawTensor::Fixed(Box::new(SliceStream::new(
            &tp.tensor_content,
        ))));
    }
    let values = typed_values(tp, dtype);
    Ok(RawTensor::Fixed(Box::new(TypedStream {
        values,
        elem_bytes: size as usize,
        total: n,
        next: 0,
        split: Split::default(),
    })))
}

/// Streams a `TensorProto` whose typed field for `dtype` must hold exactly `n` values,
/// as V1 checkpoint slice records do (tf-formats.md §7.2): `dtype`, the shape and
/// `tensor_content` are not read, and there is no zero fill or repeat-last. Takes the
/// proto by value, so the stream owns its values; a count other than `n` is `Corrupt`.
pub(crate) fn open_typed_exact(
    mut tp: TensorProto,
    dtype: DataType,
    n: u64,
    ctx: &Ctx,
) -> Result<RawTensor<'static>> {
    let (field, got) = if dtype == DataType::String {
        ("string_val", Some(tp.string_val.len()))
    } else {
        let v = typed_values(&tp, dtype);
        (v.field_name(), v.exact_count())
    };
    if got.and_then(|g| u64::try_from(g).ok()) != Some(n) {
        let got = got.map_or("an odd number of".to_string(), |g| g.to_string());
        let content = if tp.tensor_content.is_empty() {
            String::new()
        } else {
            format!(
                " (it also has {} bytes of tensor_content, which these records do not use)",
                tp.tensor_content.len()
            )
        };
        return Err(ctx.corrupt(format!(
            "{field} holds {got} values, but the slice has {n} {dtype} elements and needs \
             exactly one value per element{content}"
        )));
    }
    if dtype == DataType::String {
        return Ok(RawTensor::Strings(Box::new(VecStrings::new(
            std::mem::take(&mut tp.string_val),
        ))));
    }
    let Some(size) = dtype.storage_bytes() else {
        return Err(ctx.unsupported(format!(
            "{dtype} tensors have no NumPy equivalent and cannot be converted"
        )));
    };
    Ok(RawTensor::Fixed(Box::new(OwnedTypedStream {
        tp,
        dtype,
        elem_bytes: size as usize,
        total: n,
        next: 0,
        split: Split::default(),
    })))
}

/// [`TypedStream`] over a proto it owns.
struct OwnedTypedStream {
    tp: TensorProto,
    dtype: DataType,
    elem_bytes: usize,
    total: u64,
    next: u64,
    split: Split,
}

impl ByteStream for OwnedTypedStream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut view = TypedStream {
            values: typed_values(&self.tp, self.dtype),
            elem_bytes: self.elem_bytes,
            total: self.total,
            next: self.next,
            split: self.split,
        };
        let n = view.read(buf)?;
        self.next = view.next;
        self.split = view.split;
        Ok(n)
    }
}

/// The typed field TensorFlow reads for each dtype (`ProtoHelper<T>`), as a view.
#[derive(Clone, Copy)]
enum Values<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    /// `int_val`, truncated to the element width (1, 2 or 4 bytes).
    Int(&'a [i32]),
    I64(&'a [i64]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    Bool(&'a [bool]),
    /// Complex values as (re, im) pairs of f32.
    C64(&'a [f32]),
    /// Complex values as (re, im) pairs of f64.
    C128(&'a [f64]),
    /// `half_val`: 16-bit patterns in int32s.
    Half(&'a [i32]),
    /// `float8_val`: one byte per element.
    Bytes(&'a [u8]),
}

fn typed_values(tp: &TensorProto, dtype: DataType) -> Values<'_> {
    use DataType as D;
    match dtype {
        D::Float => Values::F32(&tp.float_val),
        D::Double => Values::F64(&tp.double_val),
        D::Int64 => Values::I64(&tp.int64_val),
        D::Uint32 => Values::U32(&tp.uint32_val),
        D::Uint64 => Values::U64(&tp.uint64_val),
        D::Bool => Values::Bool(&tp.bool_val),
        D::Complex64 => Values::C64(&tp.scomplex_val),
        D::Complex128 => Values::C128(&tp.dcomplex_val),
        D::Half | D::Bfloat16 => Values::Half(&tp.half_val),
        D::Float8E5m2
        | D::Float8E4m3fn
        | D::Float8E4m3fnuz
        | D::Float8E4m3b11fnuz
        | D::Float8E5m2fnuz
        | D::Float4E2m1fn => Values::Bytes(&tp.float8_val),
        // int32, uint8, int16, int8, uint16, the quantized types and int4/uint4/int2/uint2
        // all travel in int_val.
        _ => Values::Int(&tp.int_val),
    }
}

impl Values<'_> {
    /// Number of elements the field holds.
    fn count(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Int(v) | Values::Half(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::U32(v) => v.len(),
            Values::U64(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::C64(v) => v.len() / 2,
            Values::C128(v) => v.len() / 2,
            Values::Bytes(v) => v.len(),
        }
    }

    /// Number of elements the field holds, or `None` for a complex field with an odd
    /// number of parts.
    fn exact_count(&self) -> Option<usize> {
        match self {
            Values::C64(v) => (v.len() % 2 == 0).then_some(v.len() / 2),
            Values::C128(v) => (v.len() % 2 == 0).then_some(v.len() / 2),
            other => Some(other.count()),
        }
    }

    /// The `TensorProto` field these values come from, for messages.
    fn field_name(&self) -> &'static str {
        match self {
            Values::F32(_) => "float_val",
            Values::F64(_) => "double_val",
            Values::Int(_) => "int_val",
            Values::I64(_) => "int64_val",
            Values::U32(_) => "uint32_val",
            Values::U64(_) => "uint64_val",
            Values::Bool(_) => "bool_val",
            Values::C64(_) => "scomplex_val",
            Values::C128(_) => "dcomplex_val",
            Values::Half(_) => "half_val",
            Values::Bytes(_) => "float8_val",
        }
    }

    /// Element `i`'s little-endian bytes, truncated to `width`, into `out`.
    fn write(&self, i: usize, out: &mut [u8]) {
        let mut tmp = [0u8; 16];
        match self {
            Values::F32(v) => tmp[..4].copy_from_slice(&v[i].to_le_bytes()),
            Values::F64(v) => tmp[..8].copy_from_slice(&v[i].to_le_bytes()),
            Values::Int(v) | Values::Half(v) => tmp[..4].copy_from_slice(&v[i].to_le_bytes()),
            Values::I64(v) => tmp[..8].copy_from_slice(&v[i].to_le_bytes()),
            Values::U32(v) => tmp[..4].copy_from_slice(&v[i].to_le_bytes()),
            Values::U64(v) => tmp[..8].copy_from_slice(&v[i].to_le_bytes()),
            Values::Bool(v) => tmp[0] = u8::from(v[i]),
            Values::C64(v) => {
                tmp[..4].copy_from_slice(&v[2 * i].to_le_bytes());
                tmp[4..8].copy_from_slice(&v[2 * i + 1].to_le_bytes());
            }
            Values::C128(v) => {
                tmp[..8].copy_from_slice(&v[2 * i].to_le_bytes());
                tmp[8..].copy_from_slice(&v[2 * i + 1].to_le_bytes());
            }
            Values::Bytes(v) => tmp[0] = v[i],
        }
        out.copy_from_slice(&tmp[..out.len()]);
    }
}

/// Expands typed values to `total` elements: zeros when there are none, the last value
/// repeated when there are too few, extras ignored.
struct TypedStream<'a> {
    values: Values<'a>,
    elem_bytes: usize,
    total: u64,
    next: u64,
    split: Split,
}

/// An element that did not fit in the caller's buffer: its bytes, handed out over the
/// following reads (a read shorter than an element must not look like the end).
#[derive(Clone, Copy, Default)]
struct Split {
    bytes: [u8; 16],
    len: usize,
    at: usize,
}

impl TypedStream<'_> {
    /// Element `self.next`'s bytes into `out` (`elem_bytes` long).
    fn element(&self, out: &mut [u8]) {
        let count = self.values.count();
        if count == 0 {
            out.fill(0);
        } else {
            let i = usize::try_from(self.next).map_or(count - 1, |i| i.min(count - 1));
            self.values.write(i, out);
        }
    }
}

impl ByteStream for TypedStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let e = self.elem_bytes;
        let mut written = 0;
        loop {
            let s = &mut self.split;
            if s.at < s.len {
                let n = (s.len - s.at).min(buf.len() - written);
                buf[written..written + n].copy_from_slice(&s.bytes[s.at..s.at + n]);
                s.at += n;
                written += n;
            }
            if self.next >= self.total || written == buf.len() {
                return Ok(written);
            }
            if written + e <= buf.len() {
                self.element(&mut buf[written..written + e]);
                written += e;
            } else {
                let mut bytes = [0u8; 16];
                self.element(&mut bytes[..e]);
                self.split = Split {
                    bytes,
                    len: e,
                    at: 0,
                };
            }
            self.next += 1;
        }
    }
}

/// String elements of a `TensorProto`: `tensor_content` in the varint32-list encoding,
/// or `string_val` with the empty/repeat-last rules.
enum ProtoStrings<'a> {
    /// Decoded element boundaries into `tensor_content`.
    Content {
        data: &'a [u8],
        spans: Vec<(usize, usize)>,
        next: usize,
    },
    /// `string_val`, expanded to `total`.
    Field {
        vals: &'a [Vec<u8>],
        total: u64,
        next: u64,
    },
}

fn open_strings<'a>(tp: &'a TensorProto, n: u64, ctx: &Ctx) -> Result<ProtoStrings<'a>> {
    if n == 0 || tp.tensor_content.is_empty() {
        return Ok(ProtoStrings::Field {
            vals: &tp.string_val,
            total: n,
            next: 0,
        });
    }
    let data = &tp.tensor_content[..];
    // Each element needs at least one length byte, so n is bounded by the data size
    // before we allocate anything from it.
    if n > data.len() as u64 {
        return Err(ctx.corrupt(format!(
            "string tensor_content has {} bytes, too few for {n} elements",
            data.len()
        )));
    }
    let mut pos = 0usize;
    let mut lens = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (len, used) = decode_varint32(&data[pos..])
            .ok_or_else(|| ctx.corrupt(format!("bad length varint for string element {i}")))?;
        pos += used;
        lens.push(len as usize);
    }
    let total: u64 = lens.iter().map(|&l| l as u64).sum();
    if total != (data.len() - pos) as u64 {
        return Err(ctx.corrupt(format!(
            "string lengths add up to {total} bytes but {} bytes follow them",
            data.len() - pos
        )));
    }
    let mut spans = Vec::with_capacity(lens.len());
    for len in lens {
        spans.push((pos, pos + len));
        pos += len;
    }
    Ok(ProtoStrings::Content {
        data,
        spans,
        next: 0,
    })
}

/// Decodes a varint32 as TensorFlow's `GetVarint32` does (at most 5 bytes).
fn decode_varint32(data: &[u8]) -> Option<(u32, usize)> {
    let mut v: u32 = 0;
    for (i, &b) in data.iter().take(5).enumerate() {
        v |= u32::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            if i == 4 && b > 0x0f {
                return None;
            }
            return Some((v, i + 1));
        }
    }
    None
}

impl StringRead for ProtoStrings<'_> {
    fn max_len(&mut self) -> Result<u64> {
        Ok(match self {
            ProtoStrings::Content { spans, .. } => {
                spans.iter().map(|(a, b)| (b - a) as u64).max().unwrap_or(0)
            }
            ProtoStrings::Field { vals, total, .. } => {
                let used = usize::try_from(*total)
                    .unwrap_or(usize::MAX)
                    .min(vals.len());
                vals[..used]
                    .iter()
                    .map(|v| v.len() as u64)
                    .max()
                    .unwrap_or(0)
            }
        })
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        match self {
            ProtoStrings::Content { data, spans, next } => {
                let Some(&(a, b)) = spans.get(*next) else {
                    return Ok(false);
                };
                out.extend_from_slice(&data[a..b]);
                *next += 1;
            }
            ProtoStrings::Field { vals, total, next } => {
                if *next >= *total {
                    return Ok(false);
                }
                if let Some(last) = vals.len().checked_sub(1) {
                    let i = usize::try_from(*next).map_or(last, |i| i.min(last));
                    out.extend_from_slice(&vals[i]);
                }
                *next += 1;
            }
        }
        Ok(true)
    }
}

/// A file holding one serialized `TensorProto`, as one tensor named by the file stem.
pub struct TensorProtoFile {
    path: PathBuf,
    file_len: u64,
    proto: TensorProto,
    entries: Vec<Entry>,
}

impl TensorProtoFile {
    /// Decodes `bytes` (the content of `path`) as a `TensorProto` and validates it.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let ctx = Ctx::file(path);
        let proto = TensorProto::decode(bytes)
            .map_err(|e| ctx.corrupt(format!("not a valid TensorProto: {e}")))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tensor".to_string());
        let entry = describe(&proto, &name, &ctx)?;
        Ok(TensorProtoFile {
            path: path.to_path_buf(),
            file_len: bytes.len() as u64,
            proto,
            entries: vec![entry],
        })
    }

    /// The decoded proto.
    pub fn proto(&self) -> &TensorProto {
        &self.proto
    }
}

/// Validates `tp` and describes it as an [`Entry`] called `name`.
pub fn describe(tp: &TensorProto, name: &str, ctx: &Ctx) -> Result<Entry> {
    let ctx = ctx.tensor(name);
    let dtype = parse_dtype(tp.dtype, &ctx)?;
    let shape = parse_shape(tp.tensor_shape.as_ref(), &ctx)?;
    Ok(Entry {
        name: name.to_string(),
        dtype,
        shape,
        stored_bytes: stored_bytes(tp),
        location: if tp.tensor_content.is_empty() {
            "typed fields".to_string()
        } else {
            "tensor_content".to_string()
        }
        .into(),
        hidden: false,
    })
}

impl Container for TensorProtoFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> &'static str {
        "TensorProto"
    }

    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn open(&self, index: usize, _verify: bool) -> Result<RawTensor<'_>> {
        let e = &self.entries[index];
        open_tensor(
            &self.proto,
            e.dtype,
            &e.shape,
            &Ctx::file(&self.path).tensor(&e.name),
        )
    }

    fn input_files(&self) -> Vec<(PathBuf, u64)> {
        vec![(self.path.clone(), self.file_len)]
    }
}

/// A shape proto for `dims`, for tests across the formats.
#[cfg(test)]
pub(crate) fn shape_proto(dims: &[i64]) -> Option<TensorShapeProto> {
    Some(TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| crate::formats::proto::tensor_shape_proto::Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::read_to_end;

    fn ctx() -> Ctx {
        Ctx::file("test.pb")
    }

    fn shape(dims: &[i64]) -> Option<TensorShapeProto> {
        shape_proto(dims)
    }

    fn bytes_of(tp: &TensorProto) -> Vec<u8> {
        let dtype = DataType::from_code(tp.dtype).unwrap();
        let dims = parse_shape(tp.tensor_shape.as_ref(), &ctx()).unwrap();
        match open_tensor(tp, dtype, &dims, &ctx()).unwrap() {
            RawTensor::Fixed(mut s) => {
                let mut out = Vec::new();
                read_to_end(&mut s, &mut out).unwrap();
                out
            }
            RawTensor::Strings(_) => panic!("strings"),
        }
    }

    #[test]
    fn rejects_short_tensor_content() {
        let tp = TensorProto {
            dtype: 1,
            tensor_shape: shape(&[3]),
            tensor_content: vec![0; 8],
            ..Default::default()
        };
        let err = open_tensor(&tp, DataType::Float, &[3], &ctx())
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("tensor_content has 8 bytes"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(parse_shape(shape(&[-1]).as_ref(), &ctx()).is_err());
        assert!(parse_shape(shape(&[1 << 32, 1 << 32]).as_ref(), &ctx()).is_err());
        assert!(parse_shape(shape(&vec![1; 255]).as_ref(), &ctx()).is_err());
    }

    #[test]
    fn rejects_string_content_with_bad_total() {
        let tp = TensorProto {
            dtype: 7,
            tensor_shape: shape(&[2]),
            tensor_content: vec![1, 1, b'a'],
            ..Default::default()
        };
        let err = open_tensor(&tp, DataType::String, &[2], &ctx())
            .err()
            .unwrap();
        assert!(err.to_string().contains("add up to 2 bytes"), "{err}");
    }

    #[test]
    fn int8_truncates_sign_extended_int_val() {
        let tp = TensorProto {
            dtype: 6,
            tensor_shape: shape(&[3]),
            int_val: vec![-1, 127],
            ..Default::default()
        };
        assert_eq!(bytes_of(&tp), vec![0xff, 0x7f, 0x7f]);
    }

    /// Reads `tp`'s stream `chunk` bytes at a time.
    fn bytes_in_chunks(tp: &TensorProto, chunk: usize) -> Vec<u8> {
        let dtype = DataType::from_code(tp.dtype).unwrap();
        let dims = parse_shape(tp.tensor_shape.as_ref(), &ctx()).unwrap();
        let RawTensor::Fixed(mut s) = open_tensor(tp, dtype, &dims, &ctx()).unwrap() else {
            panic!("strings")
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn typed_values_stream_through_reads_shorter_than_an_element() {
        // Fuzz regression (fuzz/README.md, tensorproto #1): a complex128 [2] with no
        // values, read 9 bytes at a time, ended at once (`Ok(0)` before any element).
        let tp = TensorProto::decode(&b"\x08\x12\x12\x04\x12\x02\x08\x02"[..]).unwrap();
        for chunk in [1, 9, 16, 17, 4096] {
            assert_eq!(bytes_in_chunks(&tp, chunk), vec![0u8; 32], "chunk {chunk}");
        }
        let tp = TensorProto {
            dtype: 2,
            tensor_shape: shape(&[3]),
            double_val: vec![1.5, -2.0],
            ..Default::default()
        };
        let want: Vec<u8> = [1.5f64, -2.0, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        for chunk in [1, 3, 7, 8, 13, 24, 100] {
            assert_eq!(bytes_in_chunks(&tp, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn decodes_varint32_limits() {
        assert_eq!(decode_varint32(&[0x7f]), Some((127, 1)));
        assert_eq!(
            decode_varint32(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Some((u32::MAX, 5))
        );
        assert_eq!(decode_varint32(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None);
        assert_eq!(decode_varint32(&[0x80]), None);
    }
}
