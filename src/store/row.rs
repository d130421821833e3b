//! Rows read into the store's types by hand, column by column.
//!
//! Every statement's rows arrive as JSON objects (column name → value: what D1's results are,
//! and what the SQLite executor gives the host tests). Deriving serde's `Deserialize` for each
//! of the ~50 row types instantiated serde_json's whole deserializer once per type (about a
//! tenth of the wasm); here a type says which columns it takes ([`from_row!`]), and each
//! column's type is read by one small, non-generic function ([`Column`]).
//!
//! The JSON texts the Worker keeps or passes on (a move's state, a lane's event in flight, a
//! Queue message, a stored list of names) are read the same way ([`from_json`], [`strings`]).
//! Nothing in the wasm reads JSON into a typed value through serde: the first such read brings
//! serde's type-mismatch messages, and with them the whole float formatter (~12 KB gzip).

use serde_json::{Map, Value};

use super::{Result, StoreError};

/// One row: its columns by name, each taken once.
pub struct Row(Map<String, Value>);

/// A type one row is read into.
pub trait FromRow: Sized {
    fn from_row(row: &mut Row) -> Result<Self>;
}

/// A type one column is read into. SQLite has no booleans (0/1 integers) and no absent
/// columns in a row, but `NULL` is an absent value: only `Option`s read it.
pub trait Column: Sized {
    /// The column's value, or `None` when it is of another type.
    fn read(v: Value) -> Option<Self>;
    /// What a column the statement did not select reads as, if it may be left out.
    fn absent() -> Option<Self> {
        None
    }
}

impl Row {
    pub fn new(v: Value) -> Result<Row> {
        match v {
            Value::Object(m) => Ok(Row(m)),
            _ => Err(StoreError::Other(
                "row decode: a row is not an object".into(),
            )),
        }
    }

    /// Column `name`, which must be there.
    pub fn take<T: Column>(&mut self, name: &str) -> Result<T> {
        self.take_else(name, T::absent)
    }

    /// Column `name`, or `T`'s default when the statement did not select it.
    pub fn take_or_default<T: Column + Default>(&mut self, name: &str) -> Result<T> {
        self.take_else(name, || Some(T::default()))
    }

    fn take_else<T: Column>(
        &mut self,
        name: &str,
        absent: impl FnOnce() -> Option<T>,
    ) -> Result<T> {
        match self.0.remove(name) {
            Some(v) => T::read(v),
            None => absent(),
        }
        .ok_or_else(|| wrong(name))
    }
}

fn wrong(name: &str) -> StoreError {
    StoreError::Other(format!(
        "row decode: column {name} missing or of another type"
    ))
}

impl Column for String {
    fn read(v: Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Column for i64 {
    fn read(v: Value) -> Option<Self> {
        v.as_i64()
    }
}

impl Column for usize {
    fn read(v: Value) -> Option<Self> {
        v.as_u64().and_then(|n| usize::try_from(n).ok())
    }
}

impl Column for u64 {
    fn read(v: Value) -> Option<Self> {
        v.as_u64()
    }
}

/// SQLite's 0/1 integers (JSON booleans are taken too).
impl Column for bool {
    fn read(v: Value) -> Option<Self> {
        v.as_i64().map(|i| i != 0).or_else(|| v.as_bool())
    }
}

impl Column for Value {
    fn read(v: Value) -> Option<Self> {
        Some(v)
    }
}

impl<T: Column> Column for Option<T> {
    fn read(v: Value) -> Option<Self> {
        if v.is_null() {
            Some(None)
        } else {
            T::read(v).map(Some)
        }
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
}

/// A JSON array, when every element is of type `T`.
impl<T: Column> Column for Vec<T> {
    fn read(v: Value) -> Option<Self> {
        match v {
            Value::Array(items) => items.into_iter().map(T::read).collect(),
            _ => None,
        }
    }
}

/// A JSON text (an object the store or the Queue keeps, not a row) read into `T` as a row is.
pub fn from_json<T: FromRow>(text: &str) -> Result<T> {
    let v = serde_json::from_str(text).map_err(|e| StoreError::Other(format!("JSON: {e}")))?;
    T::from_row(&mut Row::new(v)?)
}

/// A JSON text that should be a list of strings (a stored set of names): nothing when it is
/// not one.
pub fn strings(text: &str) -> Vec<String> {
    serde_json::from_str(text)
        .ok()
        .and_then(Vec::read)
        .unwrap_or_default()
}

/// A whole row as its JSON object.
impl FromRow for Value {
    fn from_row(row: &mut Row) -> Result<Self> {
        Ok(Value::Object(std::mem::take(&mut row.0)))
    }
}

/// `FromRow` for a struct whose fields are columns of the same names: `from_row!(T { a, b })`;
/// `field = "column"` reads another column's name; fields after `; default` read as their
/// type's default when the statement did not select them.
macro_rules! from_row {
    ($t:ident {
        $($f:ident $(= $col:literal)?),* $(,)?
        $(; default $($d:ident $(= $dcol:literal)?),* $(,)?)?
    }) => {
        impl $crate::store::row::FromRow for $t {
            fn from_row(row: &mut $crate::store::row::Row) -> $crate::store::Result<Self> {
                Ok($t {
                    $($f: row.take($crate::store::row::from_row!(@name $f $($col)?))?,)*
                    $($($d: row.take_or_default(
                        $crate::store::row::from_row!(@name $d $($dcol)?),
                    )?,)*)?
                })
            }
        }
    };
    (@name $f:ident $col:literal) => { $col };
    (@name $f:ident) => { stringify!($f) };
}
pub(crate) use from_row;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct T {
        a: String,
        b: i64,
        c: Option<String>,
        d: bool,
        moving: Option<i64>,
        e: i64,
    }
    from_row!(T { a, b, c, d, moving = "move"; default e });

    fn read(v: Value) -> Result<T> {
        T::from_row(&mut Row::new(v)?)
    }

    #[test]
    fn columns_are_read_by_name_and_type() {
        let t = read(json!({"a": "x", "b": 7, "c": null, "d": 1, "move": 3})).unwrap();
        assert_eq!(
            (t.a.as_str(), t.b, t.c, t.d, t.moving, t.e),
            ("x", 7, None, true, Some(3), 0)
        );
        let t = read(json!({"a": "", "b": -1, "c": "y", "d": 0, "e": 9})).unwrap();
        assert_eq!(
            (t.c.as_deref(), t.d, t.moving, t.e),
            (Some("y"), false, None, 9)
        );
    }

    #[test]
    fn a_missing_or_mistyped_column_is_an_error_that_names_it() {
        for (v, col) in [
            (json!({"b": 1, "d": 0}), "column a"),
            (json!({"a": 1, "b": 1, "d": 0}), "column a"),
            (json!({"a": "x", "b": "1", "d": 0}), "column b"),
            (json!({"a": "x", "b": 1.5, "d": 0}), "column b"),
            (json!({"a": "x", "b": 1, "c": 2, "d": 0}), "column c"),
            (json!({"a": "x", "b": 1, "d": 0, "e": null}), "column e"),
        ] {
            let Err(e) = read(v.clone()) else {
                panic!("{v} was read")
            };
            assert!(format!("{e:?}").contains(col), "{v}: {e:?}");
        }
        assert!(read(json!([1])).is_err());
    }

    #[test]
    fn lists_and_json_texts() {
        assert_eq!(strings(r#"["a","b"]"#), ["a", "b"]);
        for text in [r#"["a",1]"#, r#"{"a":1}"#, "", "[", "null"] {
            assert!(strings(text).is_empty(), "{text}");
        }
        assert_eq!(Vec::<i64>::read(json!([1, 2])), Some(vec![1, 2]));
        assert_eq!(usize::read(json!(-1)), None);
        let t: T = from_json(r#"{"a": "x", "b": 2, "c": null, "d": true}"#).unwrap();
        assert_eq!((t.a.as_str(), t.b, t.d), ("x", 2, true));
        assert!(from_json::<T>("[]").is_err());
        assert!(from_json::<T>("{").is_err());
    }
}
