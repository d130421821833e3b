//! Request bodies to the canonical stored form (see [the module above](super)), setting one
//! attribute from a client value (shared with the PATCH engine), and what must hold of a whole
//! resource.

use serde_json::{Map, Value};

use super::Data;
use crate::scim::error::{quote_json, Error, Result, ScimType};
use crate::scim::schema::{Attr, AttrRef, Mutability, Resolved, ResourceType, Type};
use crate::scim::value::as_bool;
use crate::time::parse_rfc3339;

fn invalid_value(detail: impl Into<String>) -> Error {
    Error::bad_request(ScimType::InvalidValue, detail)
}

/// Normalise a POST body (a new resource) into canonical data. A user without `active` is
/// active: RFC 7643 leaves the default open, and Entra and Okta expect a new user to be active.
pub fn from_request(rt: &'static ResourceType, body: &Value) -> Result<Data> {
    let mut data = attributes(rt, body)?;
    if rt.schema.attr("active").is_some() && !data.contains_key("active") {
        data.insert("active".into(), Value::Bool(true));
    }
    validate(rt, &data, true)?;
    Ok(data)
}

/// Normalise a PUT body (RFC 7644 §3.5.1) that replaces `current`. A PUT that omits `active`
/// (or sends it null) keeps the stored value: a disabled account comes back only on an explicit
/// `active: true`, never because a client rebuilt the resource without the attribute.
pub fn replacement(rt: &'static ResourceType, body: &Value, current: &Data) -> Result<Data> {
    let mut data = attributes(rt, body)?;
    if rt.schema.attr("active").is_some() && !data.contains_key("active") {
        let kept = current.get("active").cloned().unwrap_or(Value::Bool(true));
        data.insert("active".into(), kept);
    }
    validate(rt, &data, true)?;
    Ok(data)
}

/// The attributes of a whole-resource body, in canonical form.
fn attributes(rt: &'static ResourceType, body: &Value) -> Result<Data> {
    let obj = body.as_object().ok_or_else(|| {
        Error::bad_request(
            ScimType::InvalidSyntax,
            "the request body must be a JSON object",
        )
    })?;
    let mut data = Map::new();
    for (key, value) in obj {
        match rt.resolve(key) {
            Resolved::Extension(schema) => {
                let Some(ext) = value.as_object() else {
                    continue;
                };
                for (k, v) in ext {
                    if let Some(attr) = schema.attr(k) {
                        let a = AttrRef {
                            schema,
                            extension: true,
                            attr,
                            sub: None,
                        };
                        set(&mut data, &a, v.clone())?;
                    }
                }
            }
            Resolved::Attr(a) => set(&mut data, &a, value.clone())?,
            Resolved::Unknown => {}
        }
    }
    Ok(data)
}

/// Whether a client may write this attribute at all (read-only and server-owned ones are
/// ignored on input, as RFC 7643 §7 says of `readOnly`).
pub fn writable(a: &AttrRef) -> bool {
    a.attr.mutability != Mutability::ReadOnly
        && a.sub.is_none_or(|s| s.mutability != Mutability::ReadOnly)
}

/// Set one attribute (or sub-attribute) from a client value; unassigned values remove it.
pub fn set(data: &mut Data, a: &AttrRef, value: Value) -> Result<()> {
    if !writable(a) || a.leaf().mutability == Mutability::WriteOnly {
        return Ok(());
    }
    let Some(container) = container_mut(data, a) else {
        return Ok(());
    };
    match a.sub {
        None => match normalize(a.attr, value, &a.display())? {
            Some(v) => {
                container.insert(a.attr.name.to_string(), v);
            }
            None => {
                container.remove(a.attr.name);
            }
        },
        // The manager is its id: `manager.value` sets it; its `$ref` is derived from the id
        // when rendering and `displayName` is read-only, so neither is stored.
        Some(sub) if is_manager(a.attr) => {
            if sub.name == "value" {
                return set(data, &AttrRef { sub: None, ..*a }, value);
            }
        }
        Some(sub) if !a.attr.multi_valued => {
            let v = normalize(sub, value, &a.display())?;
            let parent = container
                .entry(a.attr.name.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !parent.is_object() {
                *parent = Value::Object(Map::new());
            }
            if let Some(obj) = parent.as_object_mut() {
                match v {
                    Some(v) => {
                        obj.insert(sub.name.to_string(), v);
                    }
                    None => {
                        obj.remove(sub.name);
                    }
                }
                if obj.is_empty() {
                    container.remove(a.attr.name);
                }
            }
        }
        // `emails.value` with no filter: set the sub-attribute on every value (RFC 7644
        // §3.5.2.3 replace semantics); nothing to do when there are none. A value left with
        // no sub-attribute at all is unassigned (RFC 7643 §2.5), as is an attribute left
        // with no value.
        Some(sub) => {
            let v = normalize(sub, value, &a.display())?;
            if let Some(Value::Array(items)) = container.get_mut(a.attr.name) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    match &v {
                        Some(v) => item.insert(sub.name.to_string(), v.clone()),
                        None => item.remove(sub.name),
                    };
                }
                items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
                if items.is_empty() {
                    container.remove(a.attr.name);
                }
            }
        }
    }
    drop_empty_extension(data, a);
    Ok(())
}

/// The object holding an attribute: the resource itself, or the extension's object (created
/// when missing). `None` only if the data is not shaped as stored data is.
pub fn container_mut<'d>(data: &'d mut Data, a: &AttrRef) -> Option<&'d mut Data> {
    if !a.extension {
        return Some(data);
    }
    if !data.get(a.schema.id).is_some_and(Value::is_object) {
        data.insert(a.schema.id.to_string(), Value::Object(Map::new()));
    }
    data.get_mut(a.schema.id).and_then(Value::as_object_mut)
}

pub fn drop_empty_extension(data: &mut Data, a: &AttrRef) {
    if a.extension
        && data
            .get(a.schema.id)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        data.remove(a.schema.id);
    }
}

/// The most values one multi-valued attribute may hold: a request above it is refused with
/// `400 invalidValue` (RFC 7644 §3.12), so no request can make the PATCH engine or the store
/// handle an unbounded list. Group `members` are rows, not values, and are not capped.
pub const MAX_VALUES: usize = 1000;

pub fn too_many_values(path: &str) -> Error {
    invalid_value(format!("'{path}' may hold at most {MAX_VALUES} values"))
}

/// Normalise a client value for an attribute. `Ok(None)` means unassigned.
pub fn normalize(attr: &Attr, value: Value, path: &str) -> Result<Option<Value>> {
    if is_manager(attr) {
        return normalize_manager(value, path);
    }
    if attr.multi_valued {
        let items = match value {
            Value::Null => return Ok(None),
            Value::Array(items) if items.len() > MAX_VALUES && attr.name != "members" => {
                return Err(too_many_values(path))
            }
            Value::Array(items) => items,
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = normalize_one(attr, item, path)? {
                out.push(if attr.name == "roles" {
                    unwrap_role(v)
                } else {
                    v
                });
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    normalize_one(attr, value, path)
}

fn normalize_one(attr: &Attr, value: Value, path: &str) -> Result<Option<Value>> {
    if !attr.is_complex() {
        return scalar(attr, value, path);
    }
    match value {
        Value::Null => Ok(None),
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in obj {
                let Some(sub) = attr.sub(&k) else { continue };
                if sub.mutability == Mutability::ReadOnly && sub.name != "$ref" {
                    continue;
                }
                if let Some(v) = scalar(sub, v, &format!("{path}.{}", sub.name))? {
                    out.insert(sub.name.to_string(), v);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        scalar_value if attr.sub("value").is_some() => {
            let mut out = Map::new();
            if let Some(sub) = attr.sub("value") {
                if let Some(v) = scalar(sub, scalar_value, &format!("{path}.value"))? {
                    out.insert("value".into(), v);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        other => Err(invalid_value(format!(
            "'{path}' must be an object, not {}",
            quote_json(&other)
        ))),
    }
}

fn scalar(attr: &Attr, value: Value, path: &str) -> Result<Option<Value>> {
    let wrong = |v: &Value, what: &str| {
        invalid_value(format!("'{path}' must be {what}, not {}", quote_json(v)))
    };
    Ok(match (attr.ty, value) {
        (_, Value::Null) => None,
        (Type::String | Type::Reference | Type::Binary, Value::String(s)) => {
            (!s.is_empty()).then_some(Value::String(s))
        }
        (Type::String | Type::Reference | Type::Binary, Value::Number(n)) => {
            Some(Value::String(n.to_string()))
        }
        (Type::String | Type::Reference | Type::Binary, v) => return Err(wrong(&v, "a string")),
        (Type::Boolean, v) => match as_bool(&v) {
            Some(b) => Some(Value::Bool(b)),
            None if v.as_str() == Some("") => None,
            None => return Err(wrong(&v, "a boolean (true or false)")),
        },
        (Type::DateTime, Value::String(s)) if s.is_empty() => None,
        (Type::DateTime, Value::String(s)) if parse_rfc3339(&s).is_some() => Some(Value::String(s)),
        (Type::DateTime, v) => return Err(wrong(&v, "an RFC 3339 dateTime")),
        (Type::Integer, v) if v.as_i64().is_some() => Some(v),
        (Type::Integer, v) => return Err(wrong(&v, "an integer")),
        (Type::Decimal, v) if v.is_number() => Some(v),
        (Type::Decimal, v) => return Err(wrong(&v, "a number")),
        (Type::Complex, v) => return Err(wrong(&v, "an object")),
    })
}

fn is_manager(attr: &Attr) -> bool {
    attr.name == "manager" && attr.sub("value").is_some() && !attr.multi_valued
}

/// Entra sends `manager` as an id, an object, or an array of one object; `""` or null clears.
fn normalize_manager(value: Value, path: &str) -> Result<Option<Value>> {
    let id = match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Object(o) => match o.get("value") {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) => None,
            Some(other) => {
                return Err(invalid_value(format!(
                    "'{path}.value' must be a string, not {}",
                    quote_json(other)
                )))
            }
        },
        Value::Array(items) if items.len() <= 1 => {
            return match items.into_iter().next() {
                Some(item) => normalize_manager(item, path),
                None => Ok(None),
            }
        }
        other => {
            return Err(invalid_value(format!(
                "'{path}' must be a user id or {{\"value\": id}}, not {}",
                quote_json(&other)
            )))
        }
    };
    Ok(id.filter(|s| !s.is_empty()).map(|id| {
        let mut m = Map::new();
        m.insert("value".into(), Value::String(id));
        Value::Object(m)
    }))
}

/// Unwrap Entra's JSON-encoded role: `{"value": "{\"id\":…,\"value\":\"25\",\"displayName\":\"R\"}"}`.
fn unwrap_role(role: Value) -> Value {
    let Value::Object(mut obj) = role else {
        return role;
    };
    let inner = match obj.get("value").and_then(Value::as_str) {
        // Read as a `Value`, not a `Map`: a typed read brings serde's type-mismatch messages
        // (and float formatting) into the wasm.
        Some(s) if s.trim_start().starts_with('{') => match serde_json::from_str(s) {
            Ok(Value::Object(inner)) => Some(inner),
            _ => None,
        },
        _ => None,
    };
    if let Some(inner) = inner {
        match inner.get("value") {
            Some(Value::String(v)) => obj.insert("value".into(), Value::String(v.clone())),
            Some(Value::Number(n)) => obj.insert("value".into(), Value::String(n.to_string())),
            _ => None,
        };
        let display = inner
            .get("displayName")
            .or_else(|| inner.get("display"))
            .and_then(Value::as_str);
        if let (Some(d), false) = (display, obj.contains_key("display")) {
            obj.insert("display".into(), Value::String(d.to_string()));
        }
    }
    Value::Object(obj)
}

/// Check what must hold of a whole resource: required attributes present, and at most one
/// `primary: true` per multi-valued attribute (RFC 7643 §2.4). With `strict_primary` false (a
/// PATCH), extra primaries are demoted instead, keeping the last one set (RFC 7644 §3.5.2).
pub fn validate(rt: &'static ResourceType, data: &Data, strict_primary: bool) -> Result<()> {
    for attr in rt.schema.attributes.iter().filter(|a| a.required) {
        let present = match data.get(attr.name) {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Null) | None => false,
            Some(_) => true,
        };
        if !present {
            return Err(invalid_value(format!("'{}' is required", attr.name)));
        }
    }
    for attr in rt.schema.attributes.iter().filter(|a| a.multi_valued) {
        let n = data
            .get(attr.name)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if n > MAX_VALUES && attr.name != "members" {
            return Err(too_many_values(attr.name));
        }
    }
    if strict_primary {
        for attr in rt
            .schema
            .attributes
            .iter()
            .filter(|a| a.multi_valued && a.sub("primary").is_some())
        {
            let primaries = data
                .get(attr.name)
                .and_then(Value::as_array)
                .map_or(0, |items| {
                    items
                        .iter()
                        .filter(|i| i.get("primary") == Some(&Value::Bool(true)))
                        .count()
                });
            if primaries > 1 {
                return Err(invalid_value(format!(
                    "at most one value of '{}' may be primary",
                    attr.name
                )));
            }
        }
    }
    Ok(())
}

/// Keep only the last `primary: true` of each multi-valued attribute.
pub fn demote_extra_primaries(rt: &'static ResourceType, data: &mut Data) {
    for attr in rt
        .schema
        .attributes
        .iter()
        .filter(|a| a.multi_valued && a.sub("primary").is_some())
    {
        if let Some(Value::Array(items)) = data.get_mut(attr.name) {
            let mut seen = false;
            for item in items.iter_mut().rev().filter_map(Value::as_object_mut) {
                if item.get("primary") == Some(&Value::Bool(true)) {
                    if seen {
                        item.insert("primary".into(), Value::Bool(false));
                    }
                    seen = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::USER_TYPE;
    use serde_json::json;

    #[test]
    fn a_put_without_active_keeps_the_stored_value() {
        let disabled =
            from_request(&USER_TYPE, &json!({"userName": "a", "active": false})).expect("valid");
        let put = |body: Value| replacement(&USER_TYPE, &body, &disabled).expect("valid");
        assert_eq!(put(json!({"userName": "a"}))["active"], false);
        assert_eq!(
            put(json!({"userName": "a", "active": null}))["active"],
            false
        );
        assert_eq!(
            put(json!({"userName": "a", "active": "True"}))["active"],
            true
        );
        assert_eq!(
            put(json!({"userName": "a", "active": true}))["active"],
            true
        );
        let enabled = from_request(&USER_TYPE, &json!({"userName": "a"})).expect("valid");
        assert_eq!(enabled["active"], true, "a new user is active");
        let stays = replacement(&USER_TYPE, &json!({"userName": "a"}), &enabled).expect("valid");
        assert_eq!(stays["active"], true);
        assert_eq!(
            replacement(
                &USER_TYPE,
                &json!({"userName": "b", "active": false}),
                &enabled
            )
            .expect("valid")["active"],
            false
        );
    }
}
