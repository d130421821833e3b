//! JSON values as SCIM reads them: the leniencies every engine shares, so that the request
//! normaliser, the PATCH engine and the filter translation agree on them.

use serde_json::Value;
use std::borrow::Cow;

/// A boolean, also when sent as a string: `true`, `"True"`, `"false"` (Entra sends its
/// `active` mapping and role `primary` as strings).
pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A string or number as text (borrowed when it is a string): how string attributes compare
/// with a value a client sent as a number.
pub fn as_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans_and_text() {
        for (v, b) in [
            (json!(true), Some(true)),
            (json!("True"), Some(true)),
            (json!("FALSE"), Some(false)),
            (json!("yes"), None),
            (json!(1), None),
        ] {
            assert_eq!(as_bool(&v), b, "{v}");
        }
        assert_eq!(as_text(&json!("a")).as_deref(), Some("a"));
        assert_eq!(as_text(&json!(7)).as_deref(), Some("7"));
        assert_eq!(as_text(&json!(null)), None);
    }
}
