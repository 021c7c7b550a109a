//! The one dtype table: every TensorFlow `DataType`, its name, its storage size in
//! checkpoints and `tensor_content`, and the NumPy dtype it becomes.
//!
//! Readers describe tensors with [`DataType`]; the plan asks [`DataType::numpy`] how to
//! write them; writers only ever see the resulting `.npy` descr string. The element
//! conversions named here are implemented in `plan::convert`.

/// A TensorFlow element type (`tensorflow.DataType`, types.proto).
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Float,
    Double,
    Int32,
    Uint8,
    Int16,
    Int8,
    String,
    Complex64,
    Int64,
    Bool,
    Qint8,
    Quint8,
    Qint32,
    Bfloat16,
    Qint16,
    Quint16,
    Uint16,
    Complex128,
    Half,
    Resource,
    Variant,
    Uint32,
    Uint64,
    Float8E5m2,
    Float8E4m3fn,
    Float8E4m3fnuz,
    Float8E4m3b11fnuz,
    Float8E5m2fnuz,
    Int4,
    Uint4,
    Int2,
    Uint2,
    Float4E2m1fn,
}

/// How a TensorFlow dtype is written to `.npy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Stored bytes are copied unchanged; NumPy holds the type exactly.
    Exact(&'static str),
    /// An exact, lossless conversion of each element to a wider NumPy type. `raw` is the
    /// unsigned-integer descr that keeps the stored bits instead (`--raw-bits`).
    Widen {
        /// The descr of the converted elements.
        descr: &'static str,
        /// The descr used with `--raw-bits`.
        raw: &'static str,
        /// The element conversion.
        conv: Conversion,
    },
    /// Sub-byte integers stored one per byte: the low bits are sign- or zero-extended
    /// into a full byte.
    Unpack(&'static str, Conversion),
    /// Variable-length byte strings, written as fixed-width `|S<n>` with `n` the longest
    /// element (at least 1), NUL-padded.
    Bytes,
    /// No NumPy array can hold this type.
    None,
}

/// A per-element conversion from TensorFlow storage to the NumPy payload.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// bfloat16 bits `b` to float32 bits `b << 16`.
    Bf16ToF32,
    /// One-byte minifloat to float32, exactly.
    Float8ToF32(Minifloat),
    /// Sign-extend the low `n` bits of each byte.
    SignExtendLow(u8),
    /// Keep the low `n` bits of each byte.
    MaskLow(u8),
}

/// The one-byte floating-point formats TensorFlow stores one per byte.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Minifloat {
    E5m2,
    E4m3fn,
    E4m3fnuz,
    E4m3b11fnuz,
    E5m2fnuz,
    E2m1fn,
}

struct Row {
    dt: DataType,
    code: i32,
    name: &'static str,
    /// Bytes per element in bundle data and `tensor_content`; 0 = variable length.
    bytes: u8,
    mapping: Mapping,
}

const fn widen_f8(m: Minifloat) -> Mapping {
    Mapping::Widen {
        descr: "<f4",
        raw: "|u1",
        conv: Conversion::Float8ToF32(m),
    }
}

use DataType as D;
use Mapping as M;

/// The table. Order = TensorFlow enum value order.
#[rustfmt::skip]
const TABLE: &[Row] = &[
    Row { dt: D::Float, code: 1, name: "float32", bytes: 4, mapping: M::Exact("<f4") },
    Row { dt: D::Double, code: 2, name: "float64", bytes: 8, mapping: M::Exact("<f8") },
    Row { dt: D::Int32, code: 3, name: "int32", bytes: 4, mapping: M::Exact("<i4") },
    Row { dt: D::Uint8, code: 4, name: "uint8", bytes: 1, mapping: M::Exact("|u1") },
    Row { dt: D::Int16, code: 5, name: "int16", bytes: 2, mapping: M::Exact("<i2") },
    Row { dt: D::Int8, code: 6, name: "int8", bytes: 1, mapping: M::Exact("|i1") },
    Row { dt: D::String, code: 7, name: "string", bytes: 0, mapping: M::Bytes },
    Row { dt: D::Complex64, code: 8, name: "complex64", bytes: 8, mapping: M::Exact("<c8") },
    Row { dt: D::Int64, code: 9, name: "int64", bytes: 8, mapping: M::Exact("<i8") },
    Row { dt: D::Bool, code: 10, name: "bool", bytes: 1, mapping: M::Exact("|b1") },
    Row { dt: D::Qint8, code: 11, name: "qint8", bytes: 1, mapping: M::Exact("|i1") },
    Row { dt: D::Quint8, code: 12, name: "quint8", bytes: 1, mapping: M::Exact("|u1") },
    Row { dt: D::Qint32, code: 13, name: "qint32", bytes: 4, mapping: M::Exact("<i4") },
    Row {
        dt: D::Bfloat16,
        code: 14,
        name: "bfloat16",
        bytes: 2,
        mapping: M::Widen { descr: "<f4", raw: "<u2", conv: Conversion::Bf16ToF32 },
    },
    Row { dt: D::Qint16, code: 15, name: "qint16", bytes: 2, mapping: M::Exact("<i2") },
    Row { dt: D::Quint16, code: 16, name: "quint16", bytes: 2, mapping: M::Exact("<u2") },
    Row { dt: D::Uint16, code: 17, name: "uint16", bytes: 2, mapping: M::Exact("<u2") },
    Row { dt: D::Complex128, code: 18, name: "complex128", bytes: 16, mapping: M::Exact("<c16") },
    Row { dt: D::Half, code: 19, name: "float16", bytes: 2, mapping: M::Exact("<f2") },
    Row { dt: D::Resource, code: 20, name: "resource", bytes: 0, mapping: M::None },
    Row { dt: D::Variant, code: 21, name: "variant", bytes: 0, mapping: M::None },
    Row { dt: D::Uint32, code: 22, name: "uint32", bytes: 4, mapping: M::Exact("<u4") },
    Row { dt: D::Uint64, code: 23, name: "uint64", bytes: 8, mapping: M::Exact("<u8") },
    Row { dt: D::Float8E5m2, code: 24, name: "float8_e5m2", bytes: 1, mapping: widen_f8(Minifloat::E5m2) },
    Row { dt: D::Float8E4m3fn, code: 25, name: "float8_e4m3fn", bytes: 1, mapping: widen_f8(Minifloat::E4m3fn) },
    Row {
        dt: D::Float8E4m3fnuz,
        code: 26,
        name: "float8_e4m3fnuz",
        bytes: 1,
        mapping: widen_f8(Minifloat::E4m3fnuz),
    },
    Row {
        dt: D::Float8E4m3b11fnuz,
        code: 27,
        name: "float8_e4m3b11fnuz",
        bytes: 1,
        mapping: widen_f8(Minifloat::E4m3b11fnuz),
    },
    Row {
        dt: D::Float8E5m2fnuz,
        code: 28,
        name: "float8_e5m2fnuz",
        bytes: 1,
        mapping: widen_f8(Minifloat::E5m2fnuz),
    },
    Row { dt: D::Int4, code: 29, name: "int4", bytes: 1, mapping: M::Unpack("|i1", Conversion::SignExtendLow(4)) },
    Row { dt: D::Uint4, code: 30, name: "uint4", bytes: 1, mapping: M::Unpack("|u1", Conversion::MaskLow(4)) },
    Row { dt: D::Int2, code: 31, name: "int2", bytes: 1, mapping: M::Unpack("|i1", Conversion::SignExtendLow(2)) },
    Row { dt: D::Uint2, code: 32, name: "uint2", bytes: 1, mapping: M::Unpack("|u1", Conversion::MaskLow(2)) },
    Row {
        dt: D::Float4E2m1fn,
        code: 33,
        name: "float4_e2m1fn",
        bytes: 1,
        mapping: widen_f8(Minifloat::E2m1fn),
    },
];

impl DataType {
    fn row(self) -> &'static Row {
        // The table is indexed by enum order; the unit test pins that.
        &TABLE[self as usize]
    }

    /// Every dtype, in TensorFlow enum order.
    pub fn all() -> impl Iterator<Item = DataType> {
        TABLE.iter().map(|r| r.dt)
    }

    /// The dtype for TensorFlow's enum value. `*_REF` values (base + 100, used only in
    /// TF1 op signatures) map to their base type. `None` for unknown values and
    /// `DT_INVALID`.
    pub fn from_code(code: i32) -> Option<DataType> {
        let code = if (101..=133).contains(&code) {
            code - 100
        } else {
            code
        };
        TABLE.iter().find(|r| r.code == code).map(|r| r.dt)
    }

    /// TensorFlow's enum value.
    pub fn code(self) -> i32 {
        self.row().code
    }

    /// TensorFlow's own name (`tf.DType.name`): `float32`, `bfloat16`, `string`, ...
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Bytes per element as stored in checkpoints and `tensor_content`; `None` for
    /// variable-length types (string, variant, resource).
    pub fn storage_bytes(self) -> Option<u64> {
        match self.row().bytes {
            0 => None,
            n => Some(u64::from(n)),
        }
    }

    /// How this dtype is written to NumPy.
    pub fn numpy(self) -> Mapping {
        self.row().mapping
    }

    /// True when a NumPy array can hold this dtype (everything but variant and resource).
    pub fn is_convertible(self) -> bool {
        self.numpy() != Mapping::None
    }

    /// The safetensors dtype (`F32`, `BF16`, `F8_E4M3`, ...) that holds this dtype's
    /// stored bytes unchanged, or `None` when safetensors has no such type (strings,
    /// complex128, sub-byte integers, float4, float8_e4m3b11fnuz, variant, resource).
    /// Derived from the table's NumPy column the way `safetensors.numpy.save_file`
    /// names a NumPy dtype (see docs/formats/safetensors.md): the NumPy type for exact
    /// types, the `ml_dtypes` type of the stored bits for bfloat16 and float8.
    pub fn safetensors(self) -> Option<&'static str> {
        Some(match self.numpy() {
            Mapping::Exact(descr) => match descr {
                "|b1" => "BOOL",
                "|u1" => "U8",
                "|i1" => "I8",
                "<i2" => "I16",
                "<u2" => "U16",
                "<f2" => "F16",
                "<i4" => "I32",
                "<u4" => "U32",
                "<f4" => "F32",
                "<c8" => "C64",
                "<f8" => "F64",
                "<i8" => "I64",
                "<u8" => "U64",
                _ => return None,
            },
            Mapping::Widen { conv, .. } => match conv {
                Conversion::Bf16ToF32 => "BF16",
                Conversion::Float8ToF32(Minifloat::E5m2) => "F8_E5M2",
                Conversion::Float8ToF32(Minifloat::E4m3fn) => "F8_E4M3",
                Conversion::Float8ToF32(Minifloat::E4m3fnuz) => "F8_E4M3FNUZ",
                Conversion::Float8ToF32(Minifloat::E5m2fnuz) => "F8_E5M2FNUZ",
                _ => return None,
            },
            Mapping::Unpack(..) | Mapping::Bytes | Mapping::None => return None,
        })
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes per element of an `.npy` descr produced by this table (`<f4` → 4, `|S7` → 7).
pub fn descr_item_bytes(descr: &str) -> Option<u64> {
    descr.get(2..)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order_and_complete() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.dt as usize, i, "{}", row.name);
            assert_eq!(row.code, i as i32 + 1, "{}", row.name);
            assert_eq!(DataType::from_code(row.code), Some(row.dt));
        }
        assert_eq!(TABLE.len(), 33);
        assert_eq!(DataType::from_code(0), None);
        assert_eq!(DataType::from_code(34), None);
        assert_eq!(DataType::from_code(101), Some(DataType::Float));
    }

    #[test]
    fn safetensors_types_keep_the_stored_bytes() {
        let got: Vec<(&str, Option<&str>)> = DataType::all()
            .map(|d| (d.name(), d.safetensors()))
            .collect();
        let want = [
            ("float32", Some("F32")),
            ("float64", Some("F64")),
            ("int32", Some("I32")),
            ("uint8", Some("U8")),
            ("int16", Some("I16")),
            ("int8", Some("I8")),
            ("string", None),
            ("complex64", Some("C64")),
            ("int64", Some("I64")),
            ("bool", Some("BOOL")),
            ("qint8", Some("I8")),
            ("quint8", Some("U8")),
            ("qint32", Some("I32")),
            ("bfloat16", Some("BF16")),
            ("qint16", Some("I16")),
            ("quint16", Some("U16")),
            ("uint16", Some("U16")),
            ("complex128", None),
            ("float16", Some("F16")),
            ("resource", None),
            ("variant", None),
            ("uint32", Some("U32")),
            ("uint64", Some("U64")),
            ("float8_e5m2", Some("F8_E5M2")),
            ("float8_e4m3fn", Some("F8_E4M3")),
            ("float8_e4m3fnuz", Some("F8_E4M3FNUZ")),
            ("float8_e4m3b11fnuz", None),
            ("float8_e5m2fnuz", Some("F8_E5M2FNUZ")),
            ("int4", None),
            ("uint4", None),
            ("int2", None),
            ("uint2", None),
            ("float4_e2m1fn", None),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn descr_sizes_match_storage_for_exact_types() {
        for dt in DataType::all() {
            if let Mapping::Exact(d) = dt.numpy() {
                assert_eq!(descr_item_bytes(d), dt.storage_bytes(), "{dt}");
            }
        }
    }
}
