//! A bound on what decoding a graph protobuf may allocate, checked before decoding.
//!
//! prost allocates a whole struct for every element of a repeated message field, so a
//! 2-byte empty element (tag and zero length) can cost a few hundred bytes: 20 MB of
//! repeated empty `MetaGraphDef`s took 2.68 GB before being refused as "not a
//! SavedModel". [`check`] walks the wire format once, following the schema tf2npy
//! decodes with (`proto/tf2npy/graph.proto`, `tensor.proto`), and adds up what prost
//! would allocate: the struct of every repeated message element and map entry, the
//! bytes of every string, 8 bytes per wire byte of a packed number list. Fields the
//! schema does not have are skipped by prost and cost nothing. Decoding is refused when
//! the estimate passes [`MAX_DECODED_PER_INPUT_BYTE`] times the input's size plus
//! [`MAX_DECODED_BASE`]. Graphs TensorFlow writes estimate at a few times their size
//! (2.6x and 5.9x for the fixtures' SavedModel and frozen graph, 3.6x and 6.2x for a
//! SavedModel of 2,000 tiny ops and its GraphDef).

use crate::formats::io::decode_varint64;
use crate::formats::proto::{
    meta_graph_def::MetaInfoDef, tensor_shape_proto::Dim, AttrValue, FunctionDef, MetaGraphDef,
    NodeDef, ResourceHandleProto, TensorProto, VariantTensorDataProto,
};
use std::mem::size_of;

/// Decoded bytes allowed per input byte.
pub const MAX_DECODED_PER_INPUT_BYTE: u64 = 32;
/// Decoded bytes allowed whatever the input's size (64 MiB).
pub const MAX_DECODED_BASE: u64 = 64 << 20;
/// Nesting followed (prost's own recursion limit is 100).
const MAX_DEPTH: u32 = 100;

/// How a field allocates when decoded.
#[derive(Clone, Copy)]
enum Field {
    /// A message: `elem` bytes per occurrence (its struct, for a repeated field or a map
    /// entry; 0 for a singular field, which is stored inline and merged), plus its own
    /// fields.
    Msg(&'static Schema, usize),
    /// A string or bytes: its length, plus `elem` bytes per occurrence (24 when
    /// repeated).
    Bytes(usize),
    /// A packed list of numbers: at most 8 bytes per wire byte.
    Packed,
}

/// The fields of one message that allocate, by field number.
pub struct Schema {
    fields: &'static [(u32, Field)],
}

impl Schema {
    fn field(&self, n: u64) -> Option<Field> {
        self.fields
            .iter()
            .find(|&&(f, _)| u64::from(f) == n)
            .map(|&(_, k)| k)
    }
}

const STR: Field = Field::Bytes(0);
const REP_STR: Field = Field::Bytes(size_of::<Vec<u8>>());

static VERSION_DEF: Schema = Schema {
    fields: &[(3, Field::Packed)],
};
static DIM: Schema = Schema {
    fields: &[(2, STR)],
};
static SHAPE: Schema = Schema {
    fields: &[(2, Field::Msg(&DIM, size_of::<Dim>()))],
};
static RESOURCE_HANDLE: Schema = Schema {
    fields: &[(1, STR), (2, STR), (3, STR), (5, STR)],
};
static VARIANT: Schema = Schema {
    fields: &[
        (1, STR),
        (2, STR),
        (3, Field::Msg(&TENSOR, size_of::<TensorProto>())),
    ],
};
/// `TensorProto`.
pub static TENSOR: Schema = Schema {
    fields: &[
        (2, Field::Msg(&SHAPE, 0)),
        (4, STR),
        (5, Field::Packed),
        (6, Field::Packed),
        (7, Field::Packed),
        (8, REP_STR),
        (9, Field::Packed),
        (10, Field::Packed),
        (11, Field::Packed),
        (12, Field::Packed),
        (13, Field::Packed),
        (
            14,
            Field::Msg(&RESOURCE_HANDLE, size_of::<ResourceHandleProto>()),
        ),
        (
            15,
            Field::Msg(&VARIANT, size_of::<VariantTensorDataProto>()),
        ),
        (16, Field::Packed),
        (17, Field::Packed),
        (18, STR),
    ],
};
static ATTR_VALUE: Schema = Schema {
    fields: &[
        (2, STR),
        (7, Field::Msg(&SHAPE, 0)),
        // Boxed (build.rs), so that small attributes stay small.
        (8, Field::Msg(&TENSOR, size_of::<TensorProto>())),
        (9, STR),
    ],
};
/// A `map<string, AttrValue>` entry: the key and the value, plus the hash table's
/// share.
static ATTR_ENTRY: Schema = Schema {
    fields: &[(1, STR), (2, Field::Msg(&ATTR_VALUE, 0))],
};
static NODE: Schema = Schema {
    fields: &[
        (1, STR),
        (2, STR),
        (3, REP_STR),
        (4, STR),
        (
            5,
            Field::Msg(
                &ATTR_ENTRY,
                size_of::<String>() + size_of::<AttrValue>() + 16,
            ),
        ),
    ],
};
static OP_DEF: Schema = Schema {
    fields: &[(1, STR)],
};
static FUNCTION: Schema = Schema {
    fields: &[
        (1, Field::Msg(&OP_DEF, 0)),
        (3, Field::Msg(&NODE, size_of::<NodeDef>())),
    ],
};
static LIBRARY: Schema = Schema {
    fields: &[(1, Field::Msg(&FUNCTION, size_of::<FunctionDef>()))],
};
/// `GraphDef`.
pub static GRAPH: Schema = Schema {
    fields: &[
        (1, Field::Msg(&NODE, size_of::<NodeDef>())),
        (2, Field::Msg(&LIBRARY, 0)),
        (4, Field::Msg(&VERSION_DEF, 0)),
    ],
};
static SAVER: Schema = Schema {
    fields: &[(1, STR), (2, STR), (3, STR)],
};
static META_INFO: Schema = Schema {
    fields: &[(1, STR), (4, REP_STR), (5, STR), (6, STR)],
};
static META_GRAPH: Schema = Schema {
    fields: &[
        (1, Field::Msg(&META_INFO, size_of::<MetaInfoDef>())),
        (2, Field::Msg(&GRAPH, 0)),
        (3, Field::Msg(&SAVER, 0)),
    ],
};
/// `SavedModel`.
pub static SAVED_MODEL: Schema = Schema {
    fields: &[(2, Field::Msg(&META_GRAPH, size_of::<MetaGraphDef>()))],
};

/// What decoding `bytes` as `schema` would allocate, counting only up to `limit`
/// (`None` once past it).
fn estimate(bytes: &[u8], schema: &Schema, depth: u32, total: &mut u64, limit: u64) -> bool {
    let mut at = 0usize;
    while at < bytes.len() {
        // Malformed input stops the walk: prost reports it.
        let Some((key, n)) = decode_varint64(&bytes[at..]) else {
            return true;
        };
        at += n;
        let field = schema.field(key >> 3);
        let cost = match key & 7 {
            0 => {
                let Some((_, n)) = decode_varint64(&bytes[at..]) else {
                    return true;
                };
                at += n;
                8
            }
            1 => {
                at += 8;
                8
            }
            5 => {
                at += 4;
                8
            }
            2 => {
                let Some((len, n)) = decode_varint64(&bytes[at..]) else {
                    return true;
                };
                at += n;
                let Some(payload) = usize::try_from(len)
                    .ok()
                    .and_then(|l| bytes.get(at..at.checked_add(l)?))
                else {
                    return true;
                };
                at += payload.len();
                match field {
                    Some(Field::Msg(inner, elem)) => {
                        *total = total.saturating_add(elem as u64);
                        if depth < MAX_DEPTH && !estimate(payload, inner, depth + 1, total, limit) {
                            return false;
                        }
                        0
                    }
                    Some(Field::Bytes(elem)) => (payload.len() + elem) as u64,
                    Some(Field::Packed) => 8 * payload.len() as u64,
                    None => 0,
                }
            }
            _ => return true,
        };
        if field.is_some() {
            *total = total.saturating_add(cost);
        }
        if *total > limit {
            return false;
        }
    }
    true
}

/// Checks that decoding `bytes` as `schema` stays within the decode budget; the error
/// says by how much it would not.
pub fn check(bytes: &[u8], schema: &Schema) -> std::result::Result<(), String> {
    let limit = (bytes.len() as u64)
        .saturating_mul(MAX_DECODED_PER_INPUT_BYTE)
        .saturating_add(MAX_DECODED_BASE);
    let mut total = 0u64;
    if estimate(bytes, schema, 0, &mut total, limit) {
        return Ok(());
    }
    Err(format!(
        "decoding these {} bytes would take more than {} MiB of memory ({}x the input \
         plus {} MiB is the limit): mostly repeated empty or tiny messages",
        bytes.len(),
        limit >> 20,
        MAX_DECODED_PER_INPUT_BYTE,
        MAX_DECODED_BASE >> 20
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_are_what_the_budget_assumes() {
        // Documented for the README's limits; the check uses the real sizes.
        eprintln!(
            "MetaGraphDef {} NodeDef {} AttrValue {} TensorProto {} Dim {}",
            size_of::<MetaGraphDef>(),
            size_of::<NodeDef>(),
            size_of::<AttrValue>(),
            size_of::<TensorProto>(),
            size_of::<Dim>()
        );
        assert!(size_of::<MetaGraphDef>() > 2 * MAX_DECODED_PER_INPUT_BYTE as usize);
    }
}
