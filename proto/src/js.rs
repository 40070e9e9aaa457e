//! How JavaScript would print a JSON value with `String(x)`.
//!
//! The reference's error messages interpolate values with template strings, so reproducing
//! their text (for `ppppp msg check` and for conformance tests) needs JavaScript's string
//! conversion: arrays join their items with commas, objects print as `[object Object]`,
//! absent values as `undefined`.

use serde_json::Value;

/// Longest text produced, so that a hostile value cannot blow up an error message.
const DISPLAY_LEN_MAX: usize = 1024;

/// `String(value)` in JavaScript; `None` stands for `undefined`.
#[must_use]
pub fn display(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "undefined".to_owned();
    };
    let mut out = String::new();
    // Explicit stack: arrays may nest as deep as the parser allowed.
    enum Task<'a> {
        Value(&'a Value, bool),
        Comma,
    }
    let mut stack = vec![Task::Value(value, false)];
    while let Some(task) = stack.pop() {
        if out.len() > DISPLAY_LEN_MAX {
            out.truncate(DISPLAY_LEN_MAX);
            out.push('…');
            break;
        }
        match task {
            Task::Comma => out.push(','),
            // Inside an array, null prints as the empty string (Array.prototype.join).
            Task::Value(Value::Null, true) => {}
            Task::Value(Value::Null, false) => out.push_str("null"),
            Task::Value(Value::Bool(flag), _) => out.push_str(if *flag { "true" } else { "false" }),
            Task::Value(Value::Number(number), _) => crate::canon::write_number(&mut out, number),
            Task::Value(Value::String(text), _) => out.push_str(text),
            Task::Value(Value::Object(_), _) => out.push_str("[object Object]"),
            Task::Value(Value::Array(items), _) => {
                for (index, item) in items.iter().enumerate().rev() {
                    stack.push(Task::Value(item, true));
                    if index > 0 {
                        stack.push(Task::Comma);
                    }
                }
            }
        }
    }
    out
}

/// JavaScript's `typeof` for a JSON value; `None` stands for `undefined`.
#[must_use]
pub fn type_of(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::Null | Value::Array(_) | Value::Object(_)) => "object",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_javascript_string_conversion() {
        assert_eq!(display(None), "undefined");
        assert_eq!(display(Some(&json!(["array"]))), "array");
        assert_eq!(
            display(Some(&json!([1, null, [2, 3], {"a": 1}]))),
            "1,,2,3,[object Object]"
        );
        assert_eq!(display(Some(&json!(1.5))), "1.5");
        assert_eq!(type_of(Some(&json!(null))), "object");
    }
}
