//! Output names: TF2 object-based checkpoint keys made readable (`--short-names`).
//!
//! TF2 keys escape each object-path segment (`.` → `..`, `/` → `.S`) and mark attributes
//! with reserved segments such as `.ATTRIBUTES` (tf-formats.md §4.2). The short name
//! drops the `/.ATTRIBUTES/VARIABLE_VALUE` suffix and unescapes every segment.

/// The suffix TF2 puts after a variable's object path.
pub const VARIABLE_VALUE_SUFFIX: &str = "/.ATTRIBUTES/VARIABLE_VALUE";

/// The readable name for checkpoint key `key`: the `/.ATTRIBUTES/VARIABLE_VALUE` suffix
/// dropped and every segment unescaped (`..` → `.`, `.S` → `/`). Reserved marker
/// segments (`.ATTRIBUTES`, `.OPTIMIZER_SLOT`) and keys that are not TF2 keys are left
/// as they are.
pub fn short_name(key: &str) -> String {
    let base = key.strip_suffix(VARIABLE_VALUE_SUFFIX).unwrap_or(key);
    base.split('/')
        .map(unescape_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// Undoes `escape_local_name` for one segment; marker segments pass through.
fn unescape_segment(seg: &str) -> String {
    let bytes = seg.as_bytes();
    if bytes.first() == Some(&b'.') && bytes.get(1).is_some_and(|&c| c != b'.' && c != b'S') {
        return seg.to_string();
    }
    let mut out = String::with_capacity(seg.len());
    let mut chars = seg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '.' {
            match chars.peek() {
                Some('.') => {
                    chars.next();
                    out.push('.');
                }
                Some('S') => {
                    chars.next();
                    out.push('/');
                }
                _ => out.push('.'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_tf2_keys() {
        assert_eq!(
            short_name("net/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
            "net/kernel"
        );
        assert_eq!(
            short_name("m/weird..name.Sx/.ATTRIBUTES/VARIABLE_VALUE"),
            "m/weird.name/x"
        );
        assert_eq!(
            short_name("net/kernel/.OPTIMIZER_SLOT/opt/m/.ATTRIBUTES/VARIABLE_VALUE"),
            "net/kernel/.OPTIMIZER_SLOT/opt/m"
        );
        assert_eq!(short_name("dense/kernel"), "dense/kernel");
        assert_eq!(
            short_name("it/.ATTRIBUTES/ITERATOR_STATE"),
            "it/.ATTRIBUTES/ITERATOR_STATE"
        );
    }
}
