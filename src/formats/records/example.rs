//! `tf.train.Example` records (docs/formats/tfrecord.md §4), decoded the way
//! TensorFlow's `example_proto_fast_parsing.cc` does: features borrowed from the record,
//! the last entry of a repeated key winning, the kind taken from a `Feature`'s first
//! field, and the record refused where TensorFlow's parser refuses it for holding more
//! than the schema (a `Features` field other than its map entries, a map entry with a
//! third or unknown field: `ParseFeatures`, `ParseFeatureMapEntry`). An entry that
//! omits its key or its value, as protobuf writers other than TensorFlow's do for a
//! default, is read as protobuf reads it (TensorFlow refuses it).

use super::wire::{varint, Fields, Value};

/// The kind of a feature's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `bytes_list` (field 1).
    Bytes,
    /// `float_list` (field 2).
    Float,
    /// `int64_list` (field 3).
    Int64,
}

impl Kind {
    /// The proto field name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bytes => "bytes_list",
            Kind::Float => "float_list",
            Kind::Int64 => "int64_list",
        }
    }
}

/// One feature of a record: its key and, unless the `Feature` is empty, its kind and
/// the serialized list message.
pub type FeatureRef<'a> = (&'a [u8], Option<(Kind, &'a [u8])>);

/// Appends the features of the `Features` message `buf` (a `features` field of an
/// `Example`, or a `context` of a `SequenceExample`) to `out`, in file order.
pub fn parse_features<'a>(buf: &'a [u8], out: &mut Vec<FeatureRef<'a>>) -> Result<(), String> {
    for f in Fields::new(buf) {
        match f? {
            (1, Value::Len(entry)) => out.push(parse_entry(entry)?),
            (1, _) => return Err("a Features map entry is not length-delimited".into()),
            (n, _) => {
                return Err(format!(
                    "a Features message holds field {n}, not only its map entries \
                     (TensorFlow's parser refuses such a record)"
                ))
            }
        }
    }
    Ok(())
}

/// Appends the features of the `Example` `record` to `out`, in file order (several
/// `features` fields add up; other fields are skipped).
pub fn parse_example<'a>(record: &'a [u8], out: &mut Vec<FeatureRef<'a>>) -> Result<(), String> {
    out.clear();
    for f in Fields::new(record) {
        match f? {
            (1, Value::Len(features)) => parse_features(features, out)?,
            (1, _) => return Err("Example.features is not length-delimited".into()),
            _ => {}
        }
    }
    Ok(())
}

/// A map entry: as `ParseFeatureMapEntry`, at most two length-delimited fields, each
/// the key (1) or the value (2), in either order (a repeated one replaces the first);
/// one that is missing is protobuf's default (an empty key, an empty `Feature`).
fn parse_entry(entry: &[u8]) -> Result<FeatureRef<'_>, String> {
    let mut key: &[u8] = &[];
    let mut value: &[u8] = &[];
    let mut fields = 0;
    for f in Fields::new(entry) {
        fields += 1;
        match f? {
            (1, Value::Len(k)) if fields <= 2 => key = k,
            (2, Value::Len(v)) if fields <= 2 => value = v,
            (1 | 2, Value::Len(_)) => {
                return Err(format!(
                    "a feature map entry (key `{}`) holds more than its key and value \
                     (TensorFlow's parser refuses such a record)",
                    String::from_utf8_lossy(key)
                ))
            }
            (1 | 2, _) => {
                return Err("a feature map entry's key or value is not length-delimited".into())
            }
            (n, _) => {
                return Err(format!(
                    "a feature map entry holds field {n}, not its key or value \
                     (TensorFlow's parser refuses such a record)"
                ))
            }
        }
    }
    Ok((key, feature_kind(value, key)?))
}

/// `parsed::Feature::ParseDataType`: the first field of the `Feature` decides (`key`
/// names it in the error).
pub fn feature_kind<'a>(feature: &'a [u8], key: &[u8]) -> Result<Option<(Kind, &'a [u8])>, String> {
    let Some(first) = Fields::new(feature).next() else {
        return Ok(None);
    };
    let kind = |k| Ok(Some(k));
    match first? {
        (1, Value::Len(l)) => kind((Kind::Bytes, l)),
        (2, Value::Len(l)) => kind((Kind::Float, l)),
        (3, Value::Len(l)) => kind((Kind::Int64, l)),
        (n, _) => Err(format!(
            "feature `{}`: field {n} is not a bytes_list, float_list or int64_list",
            String::from_utf8_lossy(key)
        )),
    }
}

/// Calls `each` on every value of a serialized `BytesList`; returns the count.
pub fn bytes_values(list: &[u8], mut each: impl FnMut(&[u8])) -> Result<u64, String> {
    let mut n = 0;
    for f in Fields::new(list) {
        match f? {
            (1, Value::Len(v)) => {
                each(v);
                n += 1;
            }
            _ => {
                return Err(
                    "a BytesList holds a field other than length-delimited value = 1".into(),
                )
            }
        }
    }
    Ok(n)
}

/// The values of a serialized `FloatList` that is one packed run (how TensorFlow's
/// writers store it), borrowed: already the `<f4` bytes. `None` for any other form.
pub fn packed_floats(list: &[u8]) -> Option<&[u8]> {
    let mut fields = Fields::new(list);
    match (fields.next(), fields.next()) {
        (Some(Ok((1, Value::Len(run)))), None) if run.len() % 4 == 0 => Some(run),
        _ => None,
    }
}

/// Appends the values of a serialized `FloatList` to `out` as little-endian `f32`
/// bytes; returns the count. Packed runs and unpacked values are both accepted.
pub fn float_values(list: &[u8], out: &mut Vec<u8>) -> Result<u64, String> {
    let start = out.len();
    for f in Fields::new(list) {
        match f? {
            (1, Value::Len(run)) => {
                if run.len() % 4 != 0 {
                    return Err(format!(
                        "a packed FloatList run of {} bytes is not a whole number of 4-byte floats",
                        run.len()
                    ));
                }
                out.extend_from_slice(run);
            }
            (1, Value::Fixed32(v)) => out.extend_from_slice(&v),
            _ => {
                return Err(
                    "a FloatList holds a field other than value = 1 (fixed32 or packed)".into(),
                )
            }
        }
    }
    Ok(((out.len() - start) / 4) as u64)
}

/// Appends the values of a serialized `Int64List` to `out` as little-endian `i64`
/// bytes; returns the count. Packed runs and unpacked values are both accepted.
pub fn int64_values(list: &[u8], out: &mut Vec<u8>) -> Result<u64, String> {
    let mut n = 0;
    for f in Fields::new(list) {
        match f? {
            (1, Value::Len(mut run)) => {
                while !run.is_empty() {
                    let v = varint(&mut run).map_err(|e| format!("an Int64List run: {e}"))?;
                    out.extend_from_slice(&v.to_le_bytes());
                    n += 1;
                }
            }
            (1, Value::Varint(v)) => {
                out.extend_from_slice(&v.to_le_bytes());
                n += 1;
            }
            _ => {
                return Err(
                    "an Int64List holds a field other than value = 1 (varint or packed)".into(),
                )
            }
        }
    }
    Ok(n)
}

/// How a record's first bytes look: which message it most likely is (§3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Looks {
    /// Field 1 length-delimited only (or empty): an `Example`.
    Example,
    /// Field 2 length-delimited at the top level: a `SequenceExample`.
    Sequence,
    /// Field 1 varint: a `TensorProto`.
    Tensor,
    /// Field 1 fixed64: an `Event`.
    Event,
    /// None of those.
    Unknown,
}

/// Classifies one record by its top-level fields.
pub fn looks(record: &[u8]) -> Looks {
    let mut first = None;
    let mut seq = false;
    for f in Fields::new(record) {
        let Ok((n, v)) = f else {
            return Looks::Unknown;
        };
        if first.is_none() {
            first = Some((n, v));
        }
        if n == 2
            && matches!(v, Value::Len(_))
            && matches!(first, Some((1, Value::Len(_))) | Some((2, _)))
        {
            seq = true;
        }
    }
    match first {
        None => Looks::Example,
        Some((1, Value::Varint(_))) => Looks::Tensor,
        Some((1, Value::Fixed64(_))) => Looks::Event,
        _ if seq => Looks::Sequence,
        Some((1, Value::Len(_))) => Looks::Example,
        _ => Looks::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_packed_unpacked_and_bad_counts() {
        let mut out = Vec::new();
        // packed: 0a 08 <two floats>
        let packed = [0x0a, 8, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40];
        assert_eq!(float_values(&packed, &mut out).unwrap(), 2);
        // unpacked: 0d <f> 0d <f>
        let unpacked = [0x0d, 0, 0, 0x80, 0x3f, 0x0d, 0, 0, 0, 0x40];
        let mut out2 = Vec::new();
        assert_eq!(float_values(&unpacked, &mut out2).unwrap(), 2);
        assert_eq!(out, out2);
        // A packed run of 5 bytes, an unpacked value cut short.
        assert!(float_values(&[0x0a, 5, 0, 0, 0, 0, 0], &mut out).is_err());
        assert!(float_values(&[0x0d, 0, 0, 0x80], &mut out).is_err());
        // A packed run claiming more bytes than the list holds.
        assert!(float_values(&[0x0a, 8, 0, 0, 0, 0], &mut out).is_err());
    }

    #[test]
    fn int64_negative_and_unpacked() {
        let mut out = Vec::new();
        let neg = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(int64_values(&neg, &mut out).unwrap(), 1);
        assert_eq!(out, (-1i64).to_le_bytes());
        assert!(int64_values(&[0x0a, 2, 0x80, 0x80], &mut out).is_err());
    }

    #[test]
    fn agrees_with_the_generated_example_type() {
        use crate::formats::proto::{
            feature, BytesList, Example, Feature, Features, FloatList, Int64List,
        };
        use prost::Message;
        let mut map = std::collections::HashMap::new();
        let f = |k| Feature { kind: Some(k) };
        map.insert(
            "b".to_string(),
            f(feature::Kind::BytesList(BytesList {
                value: vec![b"x\0".to_vec(), vec![]],
            })),
        );
        map.insert(
            "f".to_string(),
            f(feature::Kind::FloatList(FloatList {
                value: vec![1.5, -0.0, f32::NAN],
            })),
        );
        map.insert(
            "i".to_string(),
            f(feature::Kind::Int64List(Int64List {
                value: vec![i64::MIN, 0, 7],
            })),
        );
        map.insert("e".to_string(), Feature { kind: None });
        let ex = Example {
            features: Some(Features { feature: map }),
        };
        let bytes = ex.encode_to_vec();
        let mut refs = Vec::new();
        parse_example(&bytes, &mut refs).unwrap();
        assert_eq!(refs.len(), 4);
        for (key, kind) in refs {
            let mut out = Vec::new();
            match (key, kind) {
                (b"b", Some((Kind::Bytes, l))) => {
                    let mut v = Vec::new();
                    assert_eq!(bytes_values(l, |x| v.push(x.to_vec())).unwrap(), 2);
                    assert_eq!(v, vec![b"x\0".to_vec(), vec![]]);
                }
                (b"f", Some((Kind::Float, l))) => {
                    assert_eq!(float_values(l, &mut out).unwrap(), 3);
                    let want: Vec<u8> = [1.5f32, -0.0, f32::NAN]
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect();
                    assert_eq!(out, want);
                }
                (b"i", Some((Kind::Int64, l))) => {
                    assert_eq!(int64_values(l, &mut out).unwrap(), 3);
                    let want: Vec<u8> = [i64::MIN, 0, 7]
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect();
                    assert_eq!(out, want);
                }
                (b"e", None) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn last_entry_wins_and_empty_feature_has_no_kind() {
        // features { feature { key: "a" value { } } }
        let rec = [0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, b'a', 0x12, 0x00];
        let mut out = Vec::new();
        parse_example(&rec, &mut out).unwrap();
        assert_eq!(out, vec![(&b"a"[..], None)]);
        assert_eq!(looks(&rec), Looks::Example);
        assert_eq!(looks(&[0x08, 0x01]), Looks::Tensor);
        assert_eq!(looks(&[]), Looks::Example);
    }
}
