//! Resources in and out: request bodies become the canonical stored form, stored data becomes
//! SCIM JSON with `id`, `schemas` and `meta`, and `attributes`/`excludedAttributes` project it.
//!
//! The canonical form keeps every attribute as sent, under its schema-defined name (attribute
//! names are case-insensitive on input, RFC 7643 §2.1), extension attributes under the
//! extension's URN key. On input:
//! - unknown attributes and unknown schema URNs are ignored (Entra sends some), as are the
//!   server-owned and read-only ones (`id`, `meta`, `groups`); `password` is discarded, never
//!   stored or returned;
//! - `null`, `""` and `[]` mean unassigned (RFC 7643 §2.5);
//! - booleans may be strings (`"True"`, `"false"`: Entra's default `active` mapping);
//! - a bare value where a multi-valued complex attribute expects objects becomes `{"value": …}`;
//! - the enterprise `manager` may be an id, an object or an array of one object
//!   (entra-dialect.md §1.3), and is stored as `{"value": id}`;
//! - a role whose `value` is a JSON-encoded object (Entra's AppRoleAssignmentsComplex PATCH,
//!   entra-dialect.md §1.7) is unwrapped into `value`/`display`.

use serde_json::{Map, Value};

use super::error::{quote_json, Error, Result, ScimType};
use super::value::as_bool;
use super::schema::{
    find, Attr, AttrRef, Mutability, Resolved, ResourceType, Returned, Schema, Type, COMMON,
};
use crate::time::{parse_rfc3339, rfc3339};

/// A resource's stored attributes (no `id`, `schemas` or `meta`).
pub type Data = Map<String, Value>;

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
        Some(s) if s.trim_start().starts_with('{') => {
            serde_json::from_str::<Map<String, Value>>(s).ok()
        }
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

/// A reference from one resource to another: a group's member, or a user's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub id: String,
    /// `User` or `Group` for members; `direct` for a user's groups.
    pub kind: String,
    pub display: Option<String>,
}

/// The JSON of a list of references (`members` of a group, `groups` of a user), with `$ref`s
/// into the tenant's SCIM root.
pub fn refs_json(base: &str, refs: &[MemberRef]) -> Value {
    Value::Array(
        refs.iter()
            .map(|r| {
                let endpoint = if r.kind == "Group" || r.kind == "direct" {
                    "Groups"
                } else {
                    "Users"
                };
                let mut m = Map::new();
                m.insert("value".into(), Value::String(r.id.clone()));
                m.insert(
                    "$ref".into(),
                    Value::String(format!("{base}/{endpoint}/{}", r.id)),
                );
                if let Some(d) = &r.display {
                    m.insert("display".into(), Value::String(d.clone()));
                }
                m.insert("type".into(), Value::String(r.kind.clone()));
                Value::Object(m)
            })
            .collect(),
    )
}

/// What the server adds when rendering: identity and metadata.
pub struct Meta<'a> {
    pub id: &'a str,
    pub version: i64,
    pub created: i64,
    pub last_modified: i64,
    /// The resource's own URL (`meta.location`).
    pub location: &'a str,
    /// The URL of the tenant's SCIM root, for `$ref`s to other resources.
    pub base: &'a str,
    /// Whether the enterprise manager's id names an existing user.
    pub manager_exists: bool,
}

/// The weak ETag of a version (RFC 7644 §3.14).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Render stored data as a SCIM resource.
pub fn render(rt: &'static ResourceType, data: &Data, meta: &Meta) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(meta.id.to_string()));
    for (k, v) in data {
        out.insert(k.clone(), v.clone());
    }
    for ext in rt.extensions {
        let Some(Value::Object(e)) = out.get_mut(ext.id) else {
            continue;
        };
        if let Some(Value::Object(m)) = e.get_mut("manager") {
            m.remove("$ref");
            if let (true, Some(Value::String(id))) = (meta.manager_exists, m.get("value").cloned())
            {
                m.insert(
                    "$ref".into(),
                    Value::String(format!("{}/Users/{id}", meta.base)),
                );
            }
        }
    }
    let mut m = Map::new();
    m.insert("resourceType".into(), Value::String(rt.name.into()));
    m.insert("created".into(), Value::String(rfc3339(meta.created)));
    m.insert(
        "lastModified".into(),
        Value::String(rfc3339(meta.last_modified)),
    );
    m.insert("location".into(), Value::String(meta.location.to_string()));
    m.insert("version".into(), Value::String(etag(meta.version)));
    out.insert("meta".into(), Value::Object(m));
    set_schemas(rt, &mut out);
    out
}

/// `schemas` lists the core schema and each extension present (RFC 7643 §3).
fn set_schemas(rt: &'static ResourceType, out: &mut Map<String, Value>) {
    let mut schemas = vec![Value::String(rt.schema.id.into())];
    for ext in rt.extensions {
        if out.contains_key(ext.id) {
            schemas.push(Value::String(ext.id.into()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
}

/// One entry of `attributes` / `excludedAttributes`.
#[derive(Debug, Clone)]
pub enum Selector {
    Attr(AttrRef),
    Extension(&'static Schema),
}

/// Parse a comma-separated attribute list (RFC 7644 §3.4.2.5). Unknown names are ignored: they
/// select nothing.
pub fn selectors(rt: &'static ResourceType, list: &str) -> Vec<Selector> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| match rt.resolve(s) {
            Resolved::Attr(a) => Some(Selector::Attr(a)),
            Resolved::Extension(schema) => Some(Selector::Extension(schema)),
            Resolved::Unknown => None,
        })
        .collect()
}

/// Apply `attributes` (keep only these, plus what is always returned; `None` when the request
/// had no such parameter) and `excludedAttributes` (drop these, never what is always returned)
/// to a rendered resource (RFC 7644 §3.4.2.5). `schemas` is kept and recomputed.
pub fn project(
    rt: &'static ResourceType,
    resource: &mut Map<String, Value>,
    attributes: Option<&[Selector]>,
    excluded: &[Selector],
) {
    if let Some(attributes) = attributes {
        let keys: Vec<String> = resource.keys().cloned().collect();
        for key in keys {
            if key == "schemas" {
                continue;
            }
            if let Some(ext) = rt.extension(&key) {
                if attributes
                    .iter()
                    .any(|s| matches!(s, Selector::Extension(x) if x.id == ext.id))
                {
                    continue;
                }
                let Some(obj) = resource.get_mut(&key).and_then(Value::as_object_mut) else {
                    continue;
                };
                let inner: Vec<String> = obj.keys().cloned().collect();
                for k in inner {
                    match ext.attr(&k) {
                        Some(attr) => keep_selected(
                            obj,
                            &k,
                            &AttrRef {
                                schema: ext,
                                extension: true,
                                attr,
                                sub: None,
                            },
                            attributes,
                        ),
                        None => {
                            obj.remove(&k);
                        }
                    }
                }
                if obj.is_empty() {
                    resource.remove(&key);
                }
                continue;
            }
            match rt.schema.attr(&key).or_else(|| find(COMMON, &key)) {
                Some(attr) => keep_selected(
                    resource,
                    &key,
                    &AttrRef {
                        schema: rt.schema,
                        extension: false,
                        attr,
                        sub: None,
                    },
                    attributes,
                ),
                None => {
                    resource.remove(&key);
                }
            }
        }
    }
    for sel in excluded {
        match sel {
            Selector::Extension(schema) => {
                resource.remove(schema.id);
            }
            Selector::Attr(a) if a.attr.returned == Returned::Always => {}
            Selector::Attr(a) => {
                let container = if a.extension {
                    resource.get_mut(a.schema.id).and_then(Value::as_object_mut)
                } else {
                    Some(&mut *resource)
                };
                let Some(container) = container else { continue };
                match a.sub {
                    None => {
                        container.remove(a.attr.name);
                    }
                    Some(sub) => {
                        if let Some(v) = container.get_mut(a.attr.name) {
                            remove_sub(v, sub.name);
                        }
                    }
                }
                if a.extension && container.is_empty() {
                    resource.remove(a.schema.id);
                }
            }
        }
    }
    set_schemas(rt, resource);
}

/// Keep `key` if it is always returned or selected whole; if only some of its sub-attributes
/// are selected, keep just those.
fn keep_selected(
    container: &mut Map<String, Value>,
    key: &str,
    a: &AttrRef,
    attributes: &[Selector],
) {
    if a.attr.returned == Returned::Always {
        return;
    }
    let same = |s: &&Selector| match s {
        Selector::Attr(s) => {
            s.extension == a.extension && s.schema.id == a.schema.id && s.attr.name == a.attr.name
        }
        Selector::Extension(_) => false,
    };
    let subs: Vec<Option<&'static str>> = attributes
        .iter()
        .filter(same)
        .map(|s| match s {
            Selector::Attr(s) => s.sub.map(|x| x.name),
            Selector::Extension(_) => None,
        })
        .collect();
    if subs.is_empty() {
        container.remove(key);
        return;
    }
    if subs.iter().any(Option::is_none) {
        return;
    }
    let keep: Vec<&str> = subs.into_iter().flatten().collect();
    let retain = |o: &mut Map<String, Value>| {
        o.retain(|k, _| keep.iter().any(|s| s.eq_ignore_ascii_case(k)))
    };
    match container.get_mut(key) {
        Some(Value::Object(o)) => retain(o),
        Some(Value::Array(items)) => items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(retain),
        _ => {}
    }
}

fn remove_sub(v: &mut Value, sub: &str) {
    match v {
        Value::Object(o) => {
            o.remove(sub);
        }
        Value::Array(items) => {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.remove(sub);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA, USER_TYPE};
    use serde_json::json;

    fn rendered(manager_exists: bool) -> Map<String, Value> {
        let data = from_request(
            &USER_TYPE,
            &json!({
                "userName": "a", "name": {"givenName": "G", "familyName": "F"},
                "emails": [{"value": "a@x", "type": "work"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "manager": "m1"}
            }),
        )
        .expect("valid");
        render(
            &USER_TYPE,
            &data,
            &Meta {
                id: "u1",
                version: 3,
                created: 0,
                last_modified: 1000,
                location: "https://acme.example.com/api/scim/v2/Users/u1",
                base: "https://acme.example.com/api/scim/v2",
                manager_exists,
            },
        )
    }

    #[test]
    fn render_adds_id_schemas_meta_and_manager_ref() {
        let r = rendered(true);
        assert_eq!(r["id"], "u1");
        assert_eq!(r["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert_eq!(
            r["meta"],
            json!({"resourceType": "User", "created": "1970-01-01T00:00:00.000Z", "lastModified": "1970-01-01T00:00:01.000Z",
                   "location": "https://acme.example.com/api/scim/v2/Users/u1", "version": "W/\"3\""})
        );
        assert_eq!(
            r[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "m1", "$ref": "https://acme.example.com/api/scim/v2/Users/m1"})
        );
        assert_eq!(
            rendered(false)[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "m1"})
        );
    }

    #[test]
    fn attributes_keep_only_what_is_asked_plus_id_and_schemas() {
        let mut r = rendered(true);
        let sel = selectors(&USER_TYPE, "userName, name.givenName,emails.value,nosuch");
        project(&USER_TYPE, &mut r, Some(&sel), &[]);
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA], "userName": "a", "name": {"givenName": "G"}, "emails": [{"value": "a@x"}]})
        );
        let mut r = rendered(true);
        project(
            &USER_TYPE,
            &mut r,
            Some(&selectors(
                &USER_TYPE,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            )),
            &[],
        );
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], ENTERPRISE_USER_SCHEMA: {"department": "D"}})
        );
        let mut r = rendered(true);
        project(
            &USER_TYPE,
            &mut r,
            Some(&selectors(&USER_TYPE, "nosuch,abcé")),
            &[],
        );
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA]}),
            "attributes that name nothing known select only what is always returned"
        );
        let mut r = rendered(true);
        project(&USER_TYPE, &mut r, Some(&selectors(&USER_TYPE, "id")), &[]);
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA]})
        );
    }

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

    #[test]
    fn excluded_attributes_never_remove_id() {
        let mut r = rendered(true);
        let ex = selectors(&USER_TYPE, "id,emails,name.familyName,meta,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User");
        project(&USER_TYPE, &mut r, None, &ex);
        assert_eq!(
            Value::Object(r),
            json!({"id": "u1", "schemas": [USER_SCHEMA], "userName": "a", "active": true, "name": {"givenName": "G"}})
        );
    }
}
