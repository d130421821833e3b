//! The admin API's and the console's JSON request bodies, read into their types field by field.
//!
//! A body is a JSON object of known members: an unknown member, a missing required one or a
//! value of another type is 400, with the member named. Deriving serde's `Deserialize` for each
//! body type instantiated serde_json's text deserializer once per type; here the text is parsed
//! once into a `Value` and each member's type is read by one small function ([`Field`]).

use serde_json::{Map, Value};

use scim_core::scim::error::{Error, Result};

/// A value, or why the body is not one (which [`decode`] makes a 400).
pub type Why<T> = std::result::Result<T, String>;

/// A body's members, each taken once.
pub struct Members(Map<String, Value>);

/// A type a body is read into; [`from_body!`] writes it.
pub trait FromBody: Sized {
    /// Every member the body may have.
    const MEMBERS: &'static [&'static str];
    /// The value, or why the body is not one.
    fn from_members(m: &mut Members) -> Why<Self>;
}

/// A type one member is read into.
pub trait Field: Sized {
    /// What the member must be, for the error.
    const EXPECTED: &'static str;
    /// The value, or why it is not one.
    fn read(v: Value) -> Why<Self>;
    /// What a member the body leaves out reads as, if it may be left out.
    fn absent() -> Option<Self> {
        None
    }
}

impl Members {
    /// Member `name`, which must be there unless its type reads an absence.
    pub fn take<T: Field>(&mut self, name: &str) -> Why<T> {
        self.take_else(name, || {
            T::absent().ok_or_else(|| format!("missing field `{name}`"))
        })
    }

    /// Member `name`, or `T`'s default when the body leaves it out.
    pub fn take_or_default<T: Field + Default>(&mut self, name: &str) -> Why<T> {
        self.take_else(name, || Ok(T::default()))
    }

    fn take_else<T: Field>(&mut self, name: &str, absent: impl FnOnce() -> Why<T>) -> Why<T> {
        match self.0.remove(name) {
            Some(v) => T::read(v).map_err(|e| format!("`{name}`: {e}")),
            None => absent(),
        }
    }
}

/// JSON bytes as `T` (for a [`FromBody`] type, an object with none but its members); anything
/// else is 400.
pub fn decode<T: Field>(bytes: &[u8]) -> Result<T> {
    let read = || {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        T::read(v)
    };
    read().map_err(|why| Error::invalid(format!("invalid JSON body: {why}")))
}

/// A body as a `Value` (also one inside a body, an array's items), and why not.
pub fn decode_value<T: FromBody>(v: Value) -> Why<T> {
    let Value::Object(m) = v else {
        return Err("expected a JSON object".into());
    };
    let mut m = known(m, T::MEMBERS)?;
    T::from_members(&mut m)
}

/// `m`, if it has no member but those `known` names.
fn known(m: Map<String, Value>, known: &[&str]) -> Why<Members> {
    if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
        let expected = known
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(if known.is_empty() {
            format!("unknown field `{k}`, there are no fields")
        } else {
            format!("unknown field `{k}`, expected one of {expected}")
        });
    }
    Ok(Members(m))
}

fn expected<T: Field>() -> String {
    format!("expected {}", T::EXPECTED)
}

impl Field for String {
    const EXPECTED: &'static str = "a string";
    fn read(v: Value) -> Why<Self> {
        match v {
            Value::String(s) => Ok(s),
            _ => Err(expected::<Self>()),
        }
    }
}

impl Field for bool {
    const EXPECTED: &'static str = "a boolean";
    fn read(v: Value) -> Why<Self> {
        v.as_bool().ok_or_else(expected::<Self>)
    }
}

impl Field for i64 {
    const EXPECTED: &'static str = "an integer";
    fn read(v: Value) -> Why<Self> {
        v.as_i64().ok_or_else(expected::<Self>)
    }
}

/// A member that may be left out or `null`.
impl<T: Field> Field for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn read(v: Value) -> Why<Self> {
        if v.is_null() {
            Ok(None)
        } else {
            T::read(v).map(Some)
        }
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl<T: Field> Field for Vec<T> {
    const EXPECTED: &'static str = "an array";
    fn read(v: Value) -> Why<Self> {
        match v {
            Value::Array(items) => items.into_iter().map(T::read).collect(),
            _ => Err(expected::<Self>()),
        }
    }
}

/// [`FromBody`] (and [`Field`], for a body inside a body) for a struct of the members named:
/// `from_body!(T { a, b = "bName" })`, where `b = "bName"` reads member `bName` into field `b`;
/// fields after `; default` read as their type's default when the body leaves them out.
macro_rules! from_body {
    ($t:ident { $($f:ident $(= $m:literal)?),* $(,)? $(; default $($d:ident $(= $dm:literal)?),* $(,)?)? }) => {
        impl $crate::http::body::FromBody for $t {
            const MEMBERS: &'static [&'static str] = &[
                $($crate::http::body::from_body!(@name $f $($m)?),)*
                $($($crate::http::body::from_body!(@name $d $($dm)?),)*)?
            ];
            #[allow(unused_variables)]
            fn from_members(
                m: &mut $crate::http::body::Members,
            ) -> $crate::http::body::Why<Self> {
                Ok($t {
                    $($f: m.take($crate::http::body::from_body!(@name $f $($m)?))?,)*
                    $($($d: m.take_or_default($crate::http::body::from_body!(@name $d $($dm)?))?,)*)?
                })
            }
        }
        impl $crate::http::body::Field for $t {
            const EXPECTED: &'static str = "an object";
            fn read(v: serde_json::Value) -> $crate::http::body::Why<Self> {
                $crate::http::body::decode_value(v)
            }
        }
    };
    (@name $f:ident $m:literal) => { $m };
    (@name $f:ident) => { stringify!($f) };
}
pub(crate) use from_body;

#[cfg(test)]
mod tests {
    use super::*;

    struct Inner {
        group_id: String,
    }
    from_body!(Inner { group_id = "groupId" });

    struct T {
        name: String,
        enabled: Option<bool>,
        days: Option<i64>,
        items: Vec<Inner>,
        tags: Option<Vec<String>>,
        revoke: bool,
    }
    from_body!(T { name, enabled, days = "expiresInDays", items, tags; default revoke = "revokeExisting" });

    fn read(s: &str) -> Result<T> {
        decode(s.as_bytes())
    }

    #[test]
    fn members_are_read_by_name_and_type() {
        let t = read(
            r#"{"name":"a","items":[{"groupId":"g"}],"expiresInDays":3,"revokeExisting":true}"#,
        )
        .unwrap();
        assert_eq!(
            (t.name.as_str(), t.enabled, t.days, t.revoke),
            ("a", None, Some(3), true)
        );
        assert_eq!(t.items[0].group_id, "g");
        assert!(t.tags.is_none());
        let t =
            read(r#"{"name":"b","items":[],"enabled":false,"tags":["x"],"expiresInDays":null}"#)
                .unwrap();
        assert_eq!(
            (t.enabled, t.days, t.tags, t.revoke),
            (Some(false), None, Some(vec!["x".into()]), false)
        );
    }

    #[test]
    fn a_bad_body_is_400_naming_what_is_wrong() {
        for (body, says) in [
            ("", "EOF"),
            ("[1]", "expected a JSON object"),
            (r#"{"items":[]}"#, "missing field `name`"),
            (
                r#"{"name":"a","items":[],"x":1}"#,
                "unknown field `x`, expected one of `name`",
            ),
            (r#"{"name":1,"items":[]}"#, "`name`: expected a string"),
            (r#"{"name":"a","items":{}}"#, "`items`: expected an array"),
            (
                r#"{"name":"a","items":[{"groupId":"g","role":"r"}]}"#,
                "`items`: unknown field `role`, expected one of `groupId`",
            ),
            (
                r#"{"name":"a","items":[],"expiresInDays":1.5}"#,
                "`expiresInDays`: expected an integer",
            ),
            (
                r#"{"name":"a","items":[],"revokeExisting":null}"#,
                "`revokeExisting`: expected a boolean",
            ),
        ] {
            let Err(e) = read(body) else {
                panic!("{body} was read")
            };
            assert_eq!(e.status, 400, "{body}");
            assert!(
                e.detail.starts_with("invalid JSON body: "),
                "{body}: {}",
                e.detail
            );
            assert!(e.detail.contains(says), "{body}: {}", e.detail);
        }
    }

    #[test]
    fn an_empty_type_takes_only_an_empty_object() {
        struct Nothing {}
        from_body!(Nothing {});
        assert!(decode::<Nothing>(b"{}").is_ok());
        let Err(e) = decode::<Nothing>(br#"{"a":1}"#) else {
            panic!("read")
        };
        assert!(
            e.detail.contains("unknown field `a`, there are no fields"),
            "{}",
            e.detail
        );
    }
}
