//! The `checkpoint` state file TensorFlow writes next to its checkpoints: a text-format
//! `CheckpointState` proto naming the newest checkpoint (tf-formats.md §5).
//!
//! Only `model_checkpoint_path` and `all_model_checkpoint_paths` are read; every other
//! field (timestamps, unknown fields, nested messages, lists) and `#` comments are
//! skipped. Strings get full C unescaping (`\n`, `\"`, `\\`, octal `\ooo`, hex `\xHH`,
//! `\u`/`\U`), and adjacent quoted strings concatenate, as in protobuf's text format.
//! Paths are raw bytes: they become OS paths unchanged.

use crate::error::{Ctx, Error, Result};
use std::path::Path;

/// The name of the state file inside a checkpoint folder.
pub const STATE_FILE_NAME: &str = "checkpoint";
/// Largest state file tf2npy reads (TF's hold a handful of lines).
const MAX_STATE_FILE_BYTES: u64 = 16 << 20;

/// The fields of a `CheckpointState` that tf2npy uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointState {
    /// The newest checkpoint's prefix, as written (relative or absolute).
    pub model_checkpoint_path: Option<Vec<u8>>,
    /// Every kept checkpoint prefix, oldest first.
    pub all_model_checkpoint_paths: Vec<Vec<u8>>,
}

/// Reads and parses the state file at `path`.
pub fn read(path: &Path) -> Result<CheckpointState> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > MAX_STATE_FILE_BYTES {
        return Err(Error::corrupt(
            path,
            format!(
                "{} bytes is too large for a checkpoint state file",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes)
        .map_err(|m| Ctx::file(path).corrupt(format!("not a valid checkpoint state file: {m}")))
}

/// Parses the text of a state file. The error names the line.
pub fn parse(text: &[u8]) -> std::result::Result<CheckpointState, String> {
    let mut p = Parser { s: text, i: 0 };
    let mut st = CheckpointState::default();
    loop {
        p.skip_space();
        if p.peek().is_none() {
            return Ok(st);
        }
        let name = p.field_name()?;
        p.skip_space();
        let had_colon = p.eat(b':');
        p.skip_space();
        let value = p.value(had_colon)?;
        match name.as_str() {
            "model_checkpoint_path" => match value {
                Value::Strings(mut v) if v.len() == 1 => st.model_checkpoint_path = v.pop(),
                _ => return Err(p.err("model_checkpoint_path must be one quoted string")),
            },
            "all_model_checkpoint_paths" => match value {
                Value::Strings(v) => st.all_model_checkpoint_paths.extend(v),
                Value::Other => {
                    return Err(p.err("all_model_checkpoint_paths must be quoted strings"))
                }
            },
            _ => {}
        }
        p.skip_space();
        if !p.eat(b';') {
            p.eat(b',');
        }
    }
}

enum Value {
    /// One or more strings (a list gives several).
    Strings(Vec<Vec<u8>>),
    /// A number, identifier or message: skipped.
    Other,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn line(&self) -> usize {
        1 + self
            .s
            .get(..self.i)
            .unwrap_or(self.s)
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn err(&self, what: &str) -> String {
        format!("line {}: {what}", self.line())
    }

    fn skip_space(&mut self) {
        while let Some(b) = self.peek() {
            if b == b'#' {
                while self.peek().is_some_and(|b| b != b'\n') {
                    self.i += 1;
                }
            } else if b.is_ascii_whitespace() {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn field_name(&mut self) -> std::result::Result<String, String> {
        if self.eat(b'[') {
            // An extension or Any type URL: `[a.b/c]`.
            let start = self.i;
            while self.peek().is_some_and(|b| b != b']' && b != b'\n') {
                self.i += 1;
            }
            if !self.eat(b']') {
                return Err(self.err("unterminated `[` in a field name"));
            }
            return Ok(String::from_utf8_lossy(&self.s[start..self.i - 1]).into_owned());
        }
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.err(&format!(
                "expected a field name, found {}",
                self.peek()
                    .map_or("the end".to_string(), |b| format!("{:?}", b as char))
            )));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn value(&mut self, had_colon: bool) -> std::result::Result<Value, String> {
        match self.peek() {
            Some(b'{') | Some(b'<') => {
                self.skip_message()?;
                Ok(Value::Other)
            }
            _ if !had_colon => Err(self.err("expected `:` after the field name")),
            Some(b'"') | Some(b'\'') => Ok(Value::Strings(vec![self.strings()?])),
            Some(b'[') => {
                self.i += 1;
                let mut out = Vec::new();
                let mut any_other = false;
                loop {
                    self.skip_space();
                    if self.eat(b']') {
                        break;
                    }
                    match self.value(true)? {
                        Value::Strings(v) => out.extend(v),
                        Value::Other => any_other = true,
                    }
                    self.skip_space();
                    if !self.eat(b',') {
                        self.skip_space();
                        if !self.eat(b']') {
                            return Err(self.err("expected `,` or `]` in a list"));
                        }
                        break;
                    }
                }
                Ok(if any_other {
                    Value::Other
                } else {
                    Value::Strings(out)
                })
            }
            Some(_) => {
                let start = self.i;
                while self.peek().is_some_and(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.' | b'_')
                }) {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.err("expected a value"));
                }
                Ok(Value::Other)
            }
            None => Err(self.err("the file ends where a value was expected")),
        }
    }

    /// Skips a `{...}` or `<...>` message, nested ones and strings included.
    fn skip_message(&mut self) -> std::result::Result<(), String> {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'{' | b'<' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b'>' => {
                    self.i += 1;
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b'"' | b'\'' => {
                    self.string()?;
                }
                b'#' => self.skip_space(),
                _ => self.i += 1,
            }
        }
        Err(self.err("unterminated message"))
    }

    /// One or more adjacent quoted strings, concatenated.
    fn strings(&mut self) -> std::result::Result<Vec<u8>, String> {
        let mut out = self.string()?;
        loop {
            let save = self.i;
            self.skip_space();
            if matches!(self.peek(), Some(b'"') | Some(b'\'')) {
                out.extend(self.string()?);
            } else {
                self.i = save;
                return Ok(out);
            }
        }
    }

    /// One quoted string, unescaped.
    fn string(&mut self) -> std::result::Result<Vec<u8>, String> {
        let Some(quote) = self.peek() else {
            return Err(self.err("expected a string"));
        };
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(self.err("unterminated string")),
                Some(b'\\') => self.i += 2,
                Some(b) if b == quote => break,
                Some(_) => self.i += 1,
            }
        }
        let raw = self.s.get(start..self.i).unwrap_or(&[]);
        self.i += 1;
        unescape(raw).map_err(|m| self.err(&m))
    }
}

/// C unescaping as in protobuf's `CUnescape`: simple escapes, octal `\ooo` (1-3
/// digits), hex `\xHH` (1-2 digits), `\uXXXX` and `\UXXXXXXXX` as UTF-8.
pub fn unescape(s: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = s.get(i) else {
            return Err("a string ends with a lone backslash".to_string());
        };
        i += 1;
        match e {
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'\\' | b'\'' | b'"' | b'?' => out.push(e),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                let byte =
                    u8::try_from(v).map_err(|_| format!("octal escape \\{v:o} is over 255"))?;
                out.push(byte);
            }
            b'x' | b'X' => {
                let mut v = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match s.get(i).and_then(|&d| (d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    return Err("\\x is not followed by a hex digit".to_string());
                }
                out.push(v as u8);
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let hex = s
                    .get(i..i + n)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("\\{} needs {n} hex digits", e as char))?;
                i += n;
                let c = char::from_u32(hex).ok_or_else(|| {
                    format!("\\{}{hex:x} is not a Unicode scalar value", e as char)
                })?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            other => {
                return Err(format!(
                    "unknown escape \\{}",
                    (other as char).escape_default()
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tf_state_files() {
        let text = b"model_checkpoint_path: \"ckpt-4\"\n\
all_model_checkpoint_paths: \"ckpt-2\"\n\
all_model_checkpoint_paths: \"ckpt-3\"\n\
all_model_checkpoint_paths: \"ckpt-4\"\n\
all_model_checkpoint_timestamps: 1700000000.0\n\
last_preserved_timestamp: 1699999999.0\n";
        let st = parse(text).unwrap();
        assert_eq!(st.model_checkpoint_path.as_deref(), Some(&b"ckpt-4"[..]));
        assert_eq!(
            st.all_model_checkpoint_paths,
            vec![b"ckpt-2".to_vec(), b"ckpt-3".to_vec(), b"ckpt-4".to_vec()]
        );
    }

    #[test]
    fn handles_comments_unknown_fields_and_odd_syntax() {
        let text = b"# written by hand\n\
unknown_msg { a: 1 b: \"}\" nested < x: 2 > }\n\
model_checkpoint_path: 'a' \"b\" # comment\n\
all_model_checkpoint_paths: [\"x\", 'y'];\n\
extra: -1.5e3, all_model_checkpoint_paths: \"z\"\n\
model_checkpoint_path: \"last wins\"";
        let st = parse(text).unwrap();
        assert_eq!(st.model_checkpoint_path.as_deref(), Some(&b"last wins"[..]));
        assert_eq!(
            st.all_model_checkpoint_paths,
            vec![b"x".to_vec(), b"y".to_vec(), b"z".to_vec()]
        );
        assert_eq!(parse(b"").unwrap(), CheckpointState::default());
    }

    #[test]
    fn unescapes_c_escapes() {
        assert_eq!(
            unescape(br#"a\"b\\c\n\t\'\?"#).unwrap(),
            b"a\"b\\c\n\t'?".to_vec()
        );
        assert_eq!(unescape(br"\303\251").unwrap(), "é".as_bytes());
        assert_eq!(unescape(br"\0\12x").unwrap(), b"\x00\nx".to_vec());
        assert_eq!(unescape(br"\xc3\xA9\x7").unwrap(), b"\xc3\xa9\x07".to_vec());
        assert_eq!(unescape(br"\u00e9\U0001F600").unwrap(), "é😀".as_bytes());
        assert!(unescape(br"\q").is_err());
        assert!(unescape(br"\777").is_err());
        assert!(unescape(br"\xg").is_err());
        assert!(unescape(b"\\").is_err());
        assert!(unescape(br"\ud800").is_err());
        let st = parse("model_checkpoint_path: \"/tmp/d\\303\\251j\\\"a\"".as_bytes()).unwrap();
        assert_eq!(st.model_checkpoint_path.unwrap(), "/tmp/déj\"a".as_bytes());
    }

    #[test]
    fn rejects_malformed_files() {
        for bad in [
            &b"model_checkpoint_path: \"unterminated\n"[..],
            b"model_checkpoint_path \"no colon\"",
            b"model_checkpoint_path: 12",
            b"all_model_checkpoint_paths: [\"a\" \"b\"",
            b": \"x\"",
            b"x { a: 1",
            b"model_checkpoint_path:",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("line "), "{err}");
        }
        let err = parse(b"\n\nmodel_checkpoint_path: 3").unwrap_err();
        assert!(err.starts_with("line 3"), "{err}");
    }
}
