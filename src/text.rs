//! Text for people: names and paths from an input are escaped before they reach a
//! terminal, so a tensor name holding ESC/OSC sequences, a newline or a CI workflow
//! command (`\n::error::...`) can neither drive the terminal nor forge a line of output.
//!
//! Escaped: C0 and C1 control characters and DEL (as `\n`, `\r`, `\t`, `\e`-style
//! `\x1b`, `\u{9b}`), the Unicode bidirectional overrides and isolates (U+202A..U+202E,
//! U+2066..U+2069, which reorder what a terminal shows), and, in byte strings and paths,
//! every byte that is not part of valid UTF-8 (`\xff`). A backslash itself is not
//! escaped: the goal is that one printed line stays one line of plain text, not
//! reversibility. JSON output needs none of this (serde_json escapes control
//! characters itself).

use std::borrow::Cow;
use std::fmt::Write;
use std::path::Path;

/// True for characters that [`escape`] rewrites.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` with control characters and bidi overrides escaped; borrowed when there are none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `bytes` as printable text: valid UTF-8 runs escaped like [`escape`], every other
/// byte as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return escape(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape(chunk.valid()));
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// A path as printable text (its raw bytes on Unix, so invalid UTF-8 shows as `\xNN`
/// rather than as U+FFFD).
pub fn escape_path(path: &Path) -> String {
    escape_bytes(path.as_os_str().as_encoded_bytes()).into_owned()
}

/// [`escape_path`] for `Display` contexts: `format!("{}", text::path(p))`.
pub fn path(path: &Path) -> impl std::fmt::Display + '_ {
    struct P<'a>(&'a Path);
    impl std::fmt::Display for P<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&escape_path(self.0))
        }
    }
    P(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_and_unchanged() {
        assert!(matches!(
            escape("dense/kernel:0 ünï 名前"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape("a\\b"), "a\\b");
    }

    #[test]
    fn controls_bidi_and_invalid_utf8_are_escaped() {
        assert_eq!(escape("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(escape("\x1b]0;pwned\x07x"), "\\x1b]0;pwned\\x07x");
        assert_eq!(escape("\u{9b}31m\u{7f}"), "\\u{9b}31m\\x7f");
        assert_eq!(escape("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(escape("\n::error::forged"), "\\n::error::forged");
        assert_eq!(escape_bytes(b"ok\xff\xfe\nz"), "ok\\xff\\xfe\\nz");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/a\xffb\x1b"));
            assert_eq!(escape_path(p), "/tmp/a\\xffb\\x1b");
            assert_eq!(path(p).to_string(), "/tmp/a\\xffb\\x1b");
        }
    }
}
