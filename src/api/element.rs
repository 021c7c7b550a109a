//! The Rust element types a tensor reads as ([`Element`]), one per NumPy dtype that
//! [`crate::dtype`]'s table produces ([`ElementType`]), and their decoding from the
//! little-endian `.npy` payload.

use crate::error::{Error, Result};
use crate::source::StringRead;
use crate::stream::{pump, ByteStream};
use half::f16;
use num_complex::Complex;

/// Elements decoded per call of a visitor (and the step by which [`super::Reader::read`]
/// grows its buffer).
const ELEMENTS_PER_CHUNK: usize = 64 * 1024;
/// Bytes pulled from a payload per step.
const BYTES_PER_PULL: usize = 1 << 20;

/// The element type of a tensor after tf2npy's dtype mapping (see the crate's README
/// table): what [`super::Reader::read`] returns, one variant per NumPy dtype tf2npy
/// writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// `|b1`: [`bool`].
    Bool,
    /// `|i1`: [`i8`] (int8, qint8, int4 and int2 sign-extended).
    I8,
    /// `<i2`: [`i16`] (int16, qint16).
    I16,
    /// `<i4`: [`i32`] (int32, qint32).
    I32,
    /// `<i8`: [`i64`].
    I64,
    /// `|u1`: [`u8`] (uint8, quint8, uint4 and uint2; float8/float4 bits with
    /// raw bits on).
    U8,
    /// `<u2`: [`u16`] (uint16, quint16; bfloat16 bits with raw bits on).
    U16,
    /// `<u4`: [`u32`].
    U32,
    /// `<u8`: [`u64`].
    U64,
    /// `<f2`: [`half::f16`] (float16).
    F16,
    /// `<f4`: [`f32`] (float32; bfloat16, float8 and float4 widened exactly).
    F32,
    /// `<f8`: [`f64`].
    F64,
    /// `<c8`: [`num_complex::Complex<f32>`] (TensorFlow's complex64).
    Complex64,
    /// `<c16`: [`num_complex::Complex<f64>`] (TensorFlow's complex128).
    Complex128,
    /// Byte strings: `Vec<u8>`, each element's bytes exactly as stored (no padding; the
    /// `.npy` form of the same tensor is `|S<n>`).
    Bytes,
}

impl ElementType {
    /// The element type of `.npy` descr `descr` as [`crate::dtype`]'s table produces
    /// it; any `|S<n>` is [`ElementType::Bytes`].
    pub fn from_descr(descr: &str) -> Option<ElementType> {
        use ElementType::*;
        Some(match descr {
            "|b1" => Bool,
            "|i1" => I8,
            "<i2" => I16,
            "<i4" => I32,
            "<i8" => I64,
            "|u1" => U8,
            "<u2" => U16,
            "<u4" => U32,
            "<u8" => U64,
            "<f2" => F16,
            "<f4" => F32,
            "<f8" => F64,
            "<c8" => Complex64,
            "<c16" => Complex128,
            d if d.starts_with("|S") => Bytes,
            _ => return None,
        })
    }

    /// The Rust type that reads it, for messages (`f32`, `half::f16`, `Vec<u8>`, ...).
    pub fn rust_type(self) -> &'static str {
        use ElementType::*;
        match self {
            Bool => "bool",
            I8 => "i8",
            I16 => "i16",
            I32 => "i32",
            I64 => "i64",
            U8 => "u8",
            U16 => "u16",
            U32 => "u32",
            U64 => "u64",
            F16 => "half::f16",
            F32 => "f32",
            F64 => "f64",
            Complex64 => "num_complex::Complex<f32>",
            Complex128 => "num_complex::Complex<f64>",
            Bytes => "Vec<u8>",
        }
    }
}

impl std::fmt::Display for ElementType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.rust_type())
    }
}

pub(crate) use sealed::{Payload, Sealed};

mod sealed {
    use super::{ByteStream, Result, StringRead};

    /// A tensor's data as the reader hands it to an element's decoder.
    pub enum Payload<'a> {
        /// The `.npy` payload: little-endian elements after the dtype mapping.
        Fixed(Box<dyn ByteStream + 'a>),
        /// String elements as stored.
        Strings(Box<dyn StringRead + 'a>),
    }

    /// Keeps [`super::Element`] implemented only here, and holds its decoding.
    pub trait Sealed: Sized {
        /// Decodes `data`, handing out the elements in order in slices of at most
        /// `ELEMENTS_PER_CHUNK`.
        fn decode(data: Payload<'_>, sink: &mut dyn FnMut(&[Self]) -> Result<()>) -> Result<()>;
    }
}

/// A Rust type a tensor can be read as: one per [`ElementType`]. Implemented for
/// `bool`, `i8`..`i64`, `u8`..`u64`, [`half::f16`], `f32`, `f64`,
/// [`num_complex::Complex<f32>`], [`num_complex::Complex<f64>`] and `Vec<u8>`
/// (strings); sealed.
pub trait Element: Sealed + Clone + Send + 'static {
    /// The element type this Rust type reads.
    const TYPE: ElementType;
}

fn internal(what: &str) -> Error {
    Error::usage(format!("internal error: {what}"))
}

/// Decodes a little-endian payload of `N`-byte elements with `from_le`.
fn decode_fixed<T, const N: usize>(
    data: Payload<'_>,
    from_le: fn([u8; N]) -> T,
    sink: &mut dyn FnMut(&[T]) -> Result<()>,
) -> Result<()> {
    let Payload::Fixed(mut data) = data else {
        return Err(internal("a string tensor decoded as fixed-size elements"));
    };
    let mut carry = [0u8; N];
    let mut carried = 0;
    let mut out: Vec<T> = Vec::with_capacity(ELEMENTS_PER_CHUNK);
    pump(&mut *data, BYTES_PER_PULL, |mut b| {
        if carried > 0 {
            let n = (N - carried).min(b.len());
            carry[carried..carried + n].copy_from_slice(&b[..n]);
            carried += n;
            b = &b[n..];
            if carried < N {
                return Ok(());
            }
            out.push(from_le(carry));
            carried = 0;
            if out.len() == ELEMENTS_PER_CHUNK {
                sink(&out)?;
                out.clear();
            }
        }
        let mut elems = b.chunks_exact(N);
        for e in &mut elems {
            // `chunks_exact` yields slices of exactly N bytes.
            let mut a = [0u8; N];
            a.copy_from_slice(e);
            out.push(from_le(a));
            if out.len() == ELEMENTS_PER_CHUNK {
                sink(&out)?;
                out.clear();
            }
        }
        let rest = elems.remainder();
        carry[..rest.len()].copy_from_slice(rest);
        carried = rest.len();
        Ok(())
    })?;
    if carried != 0 {
        return Err(internal("payload ended inside an element"));
    }
    if !out.is_empty() {
        sink(&out)?;
    }
    Ok(())
}

macro_rules! fixed_element {
    ($t:ty, $variant:ident, $n:literal, $from:expr) => {
        impl Element for $t {
            const TYPE: ElementType = ElementType::$variant;
        }
        impl Sealed for $t {
            fn decode(
                data: Payload<'_>,
                sink: &mut dyn FnMut(&[Self]) -> Result<()>,
            ) -> Result<()> {
                decode_fixed::<$t, $n>(data, $from, sink)
            }
        }
    };
}

fixed_element!(bool, Bool, 1, |b: [u8; 1]| b[0] != 0);
fixed_element!(i8, I8, 1, i8::from_le_bytes);
fixed_element!(i16, I16, 2, i16::from_le_bytes);
fixed_element!(i32, I32, 4, i32::from_le_bytes);
fixed_element!(i64, I64, 8, i64::from_le_bytes);
fixed_element!(u8, U8, 1, u8::from_le_bytes);
fixed_element!(u16, U16, 2, u16::from_le_bytes);
fixed_element!(u32, U32, 4, u32::from_le_bytes);
fixed_element!(u64, U64, 8, u64::from_le_bytes);
fixed_element!(f16, F16, 2, |b: [u8; 2]| f16::from_bits(
    u16::from_le_bytes(b)
));
fixed_element!(f32, F32, 4, f32::from_le_bytes);
fixed_element!(f64, F64, 8, f64::from_le_bytes);
fixed_element!(Complex<f32>, Complex64, 8, |b: [u8; 8]| {
    let [r0, r1, r2, r3, i0, i1, i2, i3] = b;
    Complex::new(
        f32::from_le_bytes([r0, r1, r2, r3]),
        f32::from_le_bytes([i0, i1, i2, i3]),
    )
});
fixed_element!(Complex<f64>, Complex128, 16, |b: [u8; 16]| {
    let (re, im) = b.split_at(8);
    let mut r = [0u8; 8];
    let mut i = [0u8; 8];
    r.copy_from_slice(re);
    i.copy_from_slice(im);
    Complex::new(f64::from_le_bytes(r), f64::from_le_bytes(i))
});

impl Element for Vec<u8> {
    const TYPE: ElementType = ElementType::Bytes;
}

impl Sealed for Vec<u8> {
    fn decode(data: Payload<'_>, sink: &mut dyn FnMut(&[Self]) -> Result<()>) -> Result<()> {
        let Payload::Strings(mut s) = data else {
            return Err(internal("a fixed-size tensor decoded as strings"));
        };
        // Strings are handed out in small batches: an element can be large.
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut elem = Vec::new();
        let mut bytes = 0usize;
        while s.next_into(&mut elem)? {
            bytes += elem.len();
            batch.push(std::mem::take(&mut elem));
            if batch.len() == ELEMENTS_PER_CHUNK || bytes >= BYTES_PER_PULL {
                sink(&batch)?;
                batch.clear();
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            sink(&batch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream handing out its bytes `step` at a time (elements split across reads).
    struct Dribble(Vec<u8>, usize, usize);

    impl ByteStream for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
            let n = buf.len().min(self.2).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    fn decode_all<T: Element>(bytes: &[u8], step: usize) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let data = Payload::Fixed(Box::new(Dribble(bytes.to_vec(), 0, step)));
        T::decode(data, &mut |c| {
            assert!(c.len() <= ELEMENTS_PER_CHUNK);
            out.extend_from_slice(c);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn decodes_elements_split_across_reads() {
        let vals: Vec<f64> = (0..200_003).map(|i| i as f64 * 0.5 - 7.0).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        for step in [1, 3, 8, 13, 1 << 20] {
            assert_eq!(
                decode_all::<f64>(&bytes, step).unwrap(),
                vals,
                "step {step}"
            );
        }
        let c: Vec<Complex<f32>> = decode_all(&bytes[..32], 5).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].re.to_bits(), u32::from_le_bytes([0, 0, 0, 0]));
        // A payload ending inside an element is an error, not a silent truncation.
        let err = decode_all::<i32>(&[1, 2, 3, 4, 5], 2).unwrap_err();
        assert!(err.to_string().contains("inside an element"), "{err}");
    }

    #[test]
    fn descr_table_round_trips() {
        for d in [
            "|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8",
            "<c8", "<c16", "|S7",
        ] {
            assert!(ElementType::from_descr(d).is_some(), "{d}");
        }
        assert_eq!(ElementType::from_descr(">f4"), None);
    }
}
