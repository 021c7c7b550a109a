//! Minimal protobuf wire-format reading over a byte slice, for the hot record paths
//! (one `Example` per record: decoding into generated structs would allocate a map and a
//! vector per feature per record).

/// A field's wire type and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64([u8; 8]),
    /// Wire type 2.
    Len(&'a [u8]),
    /// Wire type 5.
    Fixed32([u8; 4]),
}

/// Iterates the fields of one message; an `Err` ends the iteration.
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    /// The fields of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }
}

/// Decodes a varint from the start of `buf`, advancing it.
pub fn varint(buf: &mut &[u8]) -> Result<u64, &'static str> {
    match crate::formats::io::decode_varint64(buf) {
        Some((v, n)) => {
            *buf = buf.get(n..).unwrap_or_default();
            Ok(v)
        }
        None => Err("a varint runs past the end of its message or is over 10 bytes"),
    }
}

fn take<'a>(buf: &mut &'a [u8], n: u64) -> Result<&'a [u8], &'static str> {
    let n = usize::try_from(n).map_err(|_| "a length overflows")?;
    if n > buf.len() {
        return Err("a length-delimited field runs past the end of its message");
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let r = (|| {
            let key = varint(&mut self.buf)?;
            let field = u32::try_from(key >> 3).map_err(|_| "a field number overflows")?;
            if field == 0 {
                return Err("field number 0");
            }
            let v = match key & 7 {
                0 => Value::Varint(varint(&mut self.buf)?),
                1 => {
                    let b = take(&mut self.buf, 8).map_err(|_| "a fixed64 field is cut short")?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Value::Fixed64(a)
                }
                2 => {
                    let n = varint(&mut self.buf)?;
                    Value::Len(take(&mut self.buf, n)?)
                }
                5 => {
                    let b = take(&mut self.buf, 4).map_err(|_| "a fixed32 field is cut short")?;
                    let mut a = [0u8; 4];
                    a.copy_from_slice(b);
                    Value::Fixed32(a)
                }
                _ => {
                    return Err(
                        "a field has wire type 3, 4, 6 or 7 (groups are not used by TensorFlow)",
                    )
                }
            };
            Ok((field, v))
        })();
        if r.is_err() {
            self.buf = &[];
        }
        Some(r)
    }
}
