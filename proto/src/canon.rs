//! Canonical JSON exactly as the reference computes it (npm json-canon 1.0.1).
//!
//! The canonical form decides msg IDs, data hashes and the signed bytes, so every byte
//! matters (protocol.md §2.2):
//! - object keys sorted by JavaScript string comparison, i.e. by UTF-16 code units
//!   (not by code points: `"\u{FFFF}"` sorts *after* `"\u{10000}"`);
//! - numbers written as ECMAScript `Number.prototype.toString` writes them (`-0` → `0`,
//!   `1e21` → `1e+21`, shortest round-trip digits);
//! - strings escaped as `JSON.stringify` escapes them (`\n`, `\t`, `\"`, `\\`, `\b`, `\f`,
//!   `\r`, `\u00XX` for other control characters; everything else raw UTF-8). The reference
//!   treats strings of 5000+ UTF-16 units differently internally, but both paths produce the
//!   same text for every string that can exist in Rust (lone surrogates cannot), so there is
//!   one path here.
//!
//! Input is a `serde_json::Value`, parsed the way `JSON.parse` parses: numbers become
//! doubles (integers beyond 2^53 are rounded, as JavaScript does) and a repeated key keeps
//! its last value.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// Appends the canonical JSON text of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    // Explicit stack instead of recursion: `Value`s come from remote peers and may nest deeply.
    enum Task<'a> {
        Value(&'a Value),
        Raw(&'static str),
        Key(&'a str),
    }
    let mut stack: Vec<Task<'_>> = vec![Task::Value(value)];
    while let Some(task) = stack.pop() {
        match task {
            Task::Raw(text) => out.push_str(text),
            Task::Key(key) => {
                write_string(out, key);
                out.push(':');
            }
            Task::Value(Value::Null) => out.push_str("null"),
            Task::Value(Value::Bool(true)) => out.push_str("true"),
            Task::Value(Value::Bool(false)) => out.push_str("false"),
            Task::Value(Value::Number(number)) => write_number(out, number),
            Task::Value(Value::String(text)) => write_string(out, text),
            Task::Value(Value::Array(items)) => {
                out.push('[');
                stack.push(Task::Raw("]"));
                for (index, item) in items.iter().enumerate().rev() {
                    stack.push(Task::Value(item));
                    if index > 0 {
                        stack.push(Task::Raw(","));
                    }
                }
            }
            Task::Value(Value::Object(map)) => {
                out.push('{');
                stack.push(Task::Raw("}"));
                let keys = sorted_keys(map);
                for (index, (key, item)) in keys.into_iter().enumerate().rev() {
                    stack.push(Task::Value(item));
                    stack.push(Task::Key(key));
                    if index > 0 {
                        stack.push(Task::Raw(","));
                    }
                }
            }
        }
    }
}

/// The canonical JSON text of `value`.
#[must_use]
pub fn to_string(value: &Value) -> String {
    // Room for a post's data at once, rather than five doublings from empty.
    let mut out = String::with_capacity(256);
    write_value(&mut out, value);
    out
}

/// Object members in UTF-16 code unit order of their keys.
fn sorted_keys(map: &Map<String, Value>) -> Vec<(&str, &Value)> {
    // serde_json's map iterates in byte (= code point) order. That equals UTF-16 order unless
    // a key holds a character at or above U+E000, where surrogate pairs change the order.
    let mut members: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let needs_utf16_sort = members
        .iter()
        .any(|(key, _)| key.chars().any(|c| c >= '\u{E000}'));
    if needs_utf16_sort {
        members.sort_by(|(a, _), (b, _)| compare_utf16(a, b));
    }
    members
}

/// Compares two strings by UTF-16 code units, as JavaScript's `<` on strings does.
#[must_use]
pub fn compare_utf16(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Writes a number as ECMAScript's `Number.prototype.toString` would.
pub fn write_number(out: &mut String, number: &Number) {
    // JSON.parse turns every number into a double; do the same so that e.g. 2^64 - 1 prints
    // as JavaScript prints it (18446744073709552000).
    let double = number.as_f64().unwrap_or(f64::NAN);
    write_f64(out, double);
}

/// Writes a double as ECMAScript's `Number.prototype.toString` would.
pub fn write_f64(out: &mut String, double: f64) {
    if double.is_finite() {
        let mut buffer = ryu_js::Buffer::new();
        out.push_str(buffer.format_finite(double));
    } else {
        // Unreachable for parsed JSON (serde_json rejects non-finite numbers); json-canon
        // throws here, and "null" is what JSON.stringify would write.
        out.push_str("null");
    }
}

/// Writes a string with `JSON.stringify`'s escaping.
pub fn write_string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape: Option<&str> = match byte {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.push_str(text.get(start..index).unwrap_or_default());
        match escape {
            Some(sequence) => out.push_str(sequence),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(
                    HEX.get(usize::from(byte >> 4)).copied().unwrap_or(b'0'),
                ));
                out.push(char::from(
                    HEX.get(usize::from(byte & 0xf)).copied().unwrap_or(b'0'),
                ));
            }
        }
        start = index + 1;
    }
    out.push_str(text.get(start..).unwrap_or_default());
    out.push('"');
}

/// The number of UTF-16 code units in `text` (JavaScript's `String.prototype.length`).
#[must_use]
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(json: &str) -> String {
        to_string(&serde_json::from_str(json).expect("test input is JSON"))
    }

    #[test]
    fn numbers_follow_ecmascript() {
        assert_eq!(
            canon("[-0, 1e21, 1e-7, 1.5, 100, 1e20, 0.000001]"),
            "[0,1e+21,1e-7,1.5,100,100000000000000000000,0.000001]"
        );
        assert_eq!(canon("18446744073709551615"), "18446744073709552000");
        assert_eq!(canon("-9007199254740993"), "-9007199254740992");
        assert_eq!(canon("5e-324"), "5e-324");
    }

    #[test]
    fn keys_sort_by_utf16() {
        assert_eq!(canon(r#"{"\uFFFF":1,"😀":2}"#), "{\"😀\":2,\"\u{FFFF}\":1}");
        assert_eq!(
            canon(r#"{"b":1,"a":{"d":1,"c":2}}"#),
            r#"{"a":{"c":2,"d":1},"b":1}"#
        );
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        assert_eq!(
            canon(r#""\u0000\u001f\u007f\u2028""#),
            "\"\\u0000\\u001f\u{7f}\u{2028}\""
        );
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let depth = 100_000;
        let value = (0..depth).fold(Value::Null, |inner, _| Value::Array(vec![inner]));
        let text = to_string(&value);
        assert_eq!(text.len(), depth * 2 + 4);
        // serde_json's own drop is recursive; leak to keep the test about *our* code.
        std::mem::forget(value);
    }
}
