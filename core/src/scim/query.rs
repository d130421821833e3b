//! List and search parameters (RFC 7644 §3.4.2, §3.4.3).
//!
//! The same [`ListParams`] come from a query string (`GET /Users?filter=…&startIndex=…`) or from
//! a SearchRequest body (`POST /Users/.search`), so both run the same code.

use serde_json::Value;

use super::error::{quote, Error, Result, ScimType};

/// Most resources returned in one page; also the default `count`. Advertised as
/// `filter.maxResults` in ServiceProviderConfig.
pub const MAX_RESULTS: u64 = 200;

/// Largest `startIndex` honoured: the largest integer that D1 (which binds JavaScript numbers)
/// carries exactly. A larger one is read as this: the page is empty either way (RFC 7644
/// §3.4.2.4: a `startIndex` past the last result returns no resources).
pub const MAX_START_INDEX: u64 = (1 << 53) - 1;

/// URN of the SearchRequest message.
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListParams {
    pub filter: Option<String>,
    /// 1-based; values below 1 are read as 1.
    pub start_index: u64,
    /// At most [`MAX_RESULTS`]; 0 asks only for `totalResults`.
    pub count: u64,
    pub sort_by: Option<String>,
    pub descending: bool,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

fn invalid_value(detail: impl Into<String>) -> Error {
    Error::bad_request(ScimType::InvalidValue, detail)
}

/// An integer from a query string. One too large for `i64` saturates (the callers clamp it
/// anyway), so `startIndex=99999999999999999999` is read as "past the end", not as an error.
fn integer(name: &str, v: &str) -> Result<i64> {
    let t = v.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_value(format!(
            "'{name}' must be an integer, not '{}'",
            quote(v)
        )));
    }
    Ok(t.parse::<i64>().unwrap_or(if t.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    }))
}

/// An integer from a JSON number: floats with no fraction and integers beyond `i64` saturate
/// (`as` from a float saturates in Rust; it cannot wrap or panic).
fn json_integer(n: &serde_json::Number) -> Option<i64> {
    n.as_i64()
        .or_else(|| n.as_u64().map(|_| i64::MAX))
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

/// 1-based; below 1 reads as 1 (RFC 7644 §3.4.2.4), above [`MAX_START_INDEX`] as that.
fn start_index(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0).clamp(1, MAX_START_INDEX)
}

/// Negative reads as 0 (RFC 7644 §3.4.2.4); above [`MAX_RESULTS`] as that.
fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0).min(MAX_RESULTS)
}

fn descending(v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "ascending" => Ok(false),
        "descending" => Ok(true),
        _ => Err(invalid_value(format!(
            "'sortOrder' must be ascending or descending, not '{}'",
            quote(v)
        ))),
    }
}

impl ListParams {
    fn defaults() -> ListParams {
        ListParams {
            start_index: 1,
            count: MAX_RESULTS,
            ..ListParams::default()
        }
    }

    /// From decoded query-string pairs. Parameter names match case-insensitively; unknown ones
    /// (such as Entra's `aadOptscim062020`) are ignored.
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ListParams> {
        let mut p = ListParams::defaults();
        for (k, v) in pairs {
            match k.to_ascii_lowercase().as_str() {
                "filter" => p.filter = Some(v.to_string()),
                "startindex" => p.start_index = start_index(integer("startIndex", v)?),
                "count" => p.count = count(integer("count", v)?),
                "sortby" => p.sort_by = Some(v.to_string()),
                "sortorder" => p.descending = descending(v)?,
                "attributes" => p.attributes = Some(v.to_string()),
                "excludedattributes" => p.excluded_attributes = Some(v.to_string()),
                _ => {}
            }
        }
        Ok(p)
    }

    /// From a SearchRequest body (RFC 7644 §3.4.3): `attributes` are arrays there.
    pub fn from_search(body: &Value) -> Result<ListParams> {
        let obj = body.as_object().ok_or_else(|| {
            Error::bad_request(
                ScimType::InvalidSyntax,
                "the SearchRequest must be a JSON object",
            )
        })?;
        let mut p = ListParams::defaults();
        let list = |name: &str, v: &Value| -> Result<String> {
            match v {
                Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| invalid_value(format!("'{name}' must list strings")))
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(|v| v.join(",")),
                Value::String(s) => Ok(s.clone()),
                _ => Err(invalid_value(format!(
                    "'{name}' must be an array of strings"
                ))),
            }
        };
        let int = |name: &str, v: &Value| -> Result<i64> {
            match v {
                Value::Number(n) => json_integer(n)
                    .ok_or_else(|| invalid_value(format!("'{name}' must be an integer"))),
                Value::String(s) => integer(name, s),
                _ => Err(invalid_value(format!("'{name}' must be an integer"))),
            }
        };
        for (k, v) in obj {
            if v.is_null() {
                continue;
            }
            let text = || {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid_value(format!("'{k}' must be a string")))
            };
            match k.to_ascii_lowercase().as_str() {
                "filter" => p.filter = Some(text()?),
                "startindex" => p.start_index = start_index(int(k, v)?),
                "count" => p.count = count(int(k, v)?),
                "sortby" => p.sort_by = Some(text()?),
                "sortorder" => p.descending = descending(&text()?)?,
                "attributes" => p.attributes = Some(list(k, v)?),
                "excludedattributes" => p.excluded_attributes = Some(list(k, v)?),
                _ => {}
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_parameters() {
        let p = ListParams::from_query([
            ("filter", "userName eq \"x\""),
            ("StartIndex", "0"),
            ("count", "5000"),
            ("sortBy", "userName"),
            ("sortOrder", "Descending"),
            ("aadOptscim062020", ""),
            ("excludedAttributes", "members"),
        ])
        .expect("valid");
        assert_eq!(p.filter.as_deref(), Some("userName eq \"x\""));
        assert_eq!(
            (p.start_index, p.count, p.descending),
            (1, MAX_RESULTS, true)
        );
        assert_eq!(p.excluded_attributes.as_deref(), Some("members"));
        assert_eq!(
            ListParams::from_query([("count", "-3")])
                .expect("valid")
                .count,
            0
        );
        assert_eq!(
            ListParams::from_query([]).expect("valid"),
            ListParams::defaults()
        );
        // Out-of-range numbers are clamped, never an overflow or an error.
        for (v, start) in [
            ("9223372036854775807", MAX_START_INDEX),
            ("99999999999999999999999", MAX_START_INDEX),
            ("-9223372036854775808", 1),
            ("-99999999999999999999999", 1),
        ] {
            let p = ListParams::from_query([("startIndex", v), ("count", v)]).expect("valid");
            assert_eq!(p.start_index, start, "{v}");
            assert!(p.count == 0 || p.count == MAX_RESULTS, "{v}");
        }
        for bad in [
            ("count", "ten"),
            ("startIndex", "1.5"),
            ("sortOrder", "up"),
            ("count", "+"),
            ("count", "1e3"),
            ("startIndex", "１"),
        ] {
            let e = ListParams::from_query([bad]).expect_err("invalid");
            assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
        }
    }

    #[test]
    fn search_request_body() {
        let p = ListParams::from_search(&json!({
            "schemas": [SEARCH_REQUEST_SCHEMA], "attributes": ["displayName", "userName"],
            "filter": "displayName sw \"smith\"", "startIndex": 1, "count": 10, "sortOrder": "ascending"
        }))
        .expect("valid");
        assert_eq!(p.attributes.as_deref(), Some("displayName,userName"));
        assert_eq!((p.start_index, p.count, p.descending), (1, 10, false));
        assert!(ListParams::from_search(&json!({"count": "x"})).is_err());
        assert!(ListParams::from_search(&json!({"count": 1.5})).is_err());
        let huge =
            ListParams::from_search(&json!({"startIndex": 9223372036854775807u64, "count": 1e300}))
                .expect("clamped");
        assert_eq!(
            (huge.start_index, huge.count),
            (MAX_START_INDEX, MAX_RESULTS)
        );
        let huge = ListParams::from_search(&json!({"startIndex": 18446744073709551615u64}))
            .expect("clamped");
        assert_eq!(huge.start_index, MAX_START_INDEX);
        assert!(ListParams::from_search(&json!([1])).is_err());
    }
}
