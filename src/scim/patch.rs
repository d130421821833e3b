//! PATCH (RFC 7644 §3.5.2) with the dialects identity providers actually send.
//!
//! Parse, then apply: the body becomes typed [`Operation`]s first, then [`apply`] runs them in
//! order on a copy of the resource. Any error leaves the stored resource untouched (the caller
//! persists the result only on success), so a PATCH is all-or-nothing.
//!
//! Entra's dialect (entra-dialect.md §1.3–1.7), accepted alongside the RFC:
//! - `op` in any case (`Add`, `Replace`, `Remove`), and an `Operations` key in any case;
//! - path-less `add`/`replace` whose value object has plain, dotted (`name.givenName`) and
//!   URN-prefixed keys, or a whole extension object under its URN;
//! - string booleans (`"False"`) wherever a boolean is expected;
//! - `add`/`replace` on `emails[type eq "work"].value` (or `roles[primary eq "True"].value`) when
//!   no value matches creates one from the filter's equalities instead of failing `noTarget`;
//! - `remove` on a multi-valued attribute with a `value` list removes only the listed values
//!   (Entra's group member removal) instead of all of them;
//! - `remove` with a value filter on a single-valued complex attribute (`manager[value eq "x"]`);
//! - unknown but well-formed attribute paths are ignored, so one unmapped attribute does not
//!   block an `active: false` in the same body.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::error::{quote, quote_json, Error, Result, ScimType};
use super::filter::{parse_value_filter, Filter, Op};
use super::fold::fold;
use super::resource::{
    container_mut, demote_extra_primaries, drop_empty_extension, normalize, set, too_many_values,
    validate, writable, Data, MAX_VALUES,
};
use super::schema::{Attr, AttrRef, Mutability, Resolved, ResourceType, Type};
use super::value::{as_bool, as_text as value_text};

/// Most operations accepted in one request.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Add,
    Replace,
    Remove,
}

/// What an operation's `path` targets.
#[derive(Debug, Clone)]
pub enum Target {
    /// No path: the value is an object of attributes (add/replace only).
    Resource,
    /// `attr`, `attr.sub`, `urn:…:attr`, `attr[filter]`, `attr[filter].sub`.
    Attr {
        attr: AttrRef,
        filter: Option<Filter>,
        sub: Option<&'static Attr>,
    },
    /// A whole extension, by its URN.
    Extension(&'static super::schema::Schema),
    /// Well-formed, but not an attribute this server has: the operation is a no-op.
    Unknown(String),
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub kind: Kind,
    pub target: Target,
    pub value: Option<Value>,
}

fn syntax(detail: impl Into<String>) -> Error {
    Error::bad_request(ScimType::InvalidSyntax, detail)
}

fn invalid_path(detail: impl Into<String>) -> Error {
    Error::bad_request(ScimType::InvalidPath, detail)
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Parse a PatchOp request body.
pub fn parse(rt: &'static ResourceType, body: &Value) -> Result<Vec<Operation>> {
    let obj = body
        .as_object()
        .ok_or_else(|| syntax("the PATCH body must be a JSON object"))?;
    let ops = match get_ci(obj, "Operations") {
        Some(Value::Array(ops)) => ops,
        Some(_) => return Err(syntax("'Operations' must be an array")),
        None => return Err(syntax("the PATCH body has no 'Operations'")),
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(syntax(format!(
            "at most {MAX_OPERATIONS} operations per request"
        )));
    }
    ops.iter()
        .zip(1..)
        .map(|(op, n): (&Value, usize)| {
            parse_op(rt, op).map_err(|e| Error {
                detail: format!("operation {n}: {}", e.detail),
                ..e
            })
        })
        .collect()
}

fn parse_op(rt: &'static ResourceType, op: &Value) -> Result<Operation> {
    let obj = op
        .as_object()
        .ok_or_else(|| syntax("each operation must be an object"))?;
    let kind = match get_ci(obj, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => Kind::Add,
        Some("replace") => Kind::Replace,
        Some("remove") => Kind::Remove,
        Some(other) => {
            return Err(syntax(format!(
                "unknown op '{}' (expected add, replace or remove)",
                quote(other)
            )))
        }
        None => return Err(syntax("'op' is missing")),
    };
    let value = get_ci(obj, "value").cloned();
    let target = match get_ci(obj, "path") {
        None | Some(Value::Null) => Target::Resource,
        Some(Value::String(p)) if p.trim().is_empty() => Target::Resource,
        Some(Value::String(p)) => parse_path(rt, p.trim())?,
        Some(_) => return Err(invalid_path("'path' must be a string")),
    };
    match (kind, &target, &value) {
        (Kind::Remove, Target::Resource, _) => {
            return Err(Error::bad_request(
                ScimType::NoTarget,
                "remove needs a path",
            ))
        }
        (Kind::Add | Kind::Replace, Target::Resource, Some(v)) if !v.is_object() => {
            return Err(syntax(
                "without a path, 'value' must be an object of attributes",
            ))
        }
        (Kind::Add | Kind::Replace, _, None) => {
            return Err(syntax("add and replace need a 'value'"))
        }
        _ => {}
    }
    Ok(Operation {
        kind,
        target,
        value,
    })
}

/// Parse a PATCH path (RFC 7644 §3.5.2 `PATH = attrPath / valuePath [subAttr]`).
pub fn parse_path(rt: &'static ResourceType, path: &str) -> Result<Target> {
    let shown = quote(path);
    let (head, filter_text, tail) = match path.split_once('[') {
        Some((head, bracketed)) => {
            let (inner, tail) = bracketed
                .rsplit_once(']')
                .ok_or_else(|| invalid_path(format!("'{shown}': unbalanced '['")))?;
            let tail =
                match tail {
                    "" => None,
                    t => Some(t.strip_prefix('.').ok_or_else(|| {
                        invalid_path(format!("'{shown}': expected '.' after ']'"))
                    })?),
                };
            (head, Some(inner), tail)
        }
        None => (path, None, None),
    };
    if head.is_empty() || head.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '(' | ')'))
    {
        return Err(invalid_path(format!("'{shown}' is not an attribute path")));
    }
    let attr = match rt.resolve(head) {
        Resolved::Attr(a) => a,
        Resolved::Extension(schema) if filter_text.is_none() => {
            return Ok(Target::Extension(schema))
        }
        Resolved::Extension(_) => {
            return Err(invalid_path(format!(
                "'{shown}': an extension cannot take a filter"
            )))
        }
        Resolved::Unknown => return Ok(Target::Unknown(path.to_string())),
    };
    let Some(filter_text) = filter_text else {
        // `name.givenName` comes back from resolve with `sub` set.
        return Ok(Target::Attr {
            attr: AttrRef { sub: None, ..attr },
            filter: None,
            sub: attr.sub,
        });
    };
    if attr.sub.is_some() || !attr.attr.is_complex() {
        return Err(invalid_path(format!(
            "'{shown}': only a complex attribute can take a filter"
        )));
    }
    let filter = parse_value_filter(filter_text, attr, rt)
        .map_err(|e| invalid_path(format!("'{shown}': {}", e.detail)))?;
    let sub = match tail {
        None => None,
        Some(t) => match attr.attr.sub(t) {
            Some(s) => Some(s),
            None => return Ok(Target::Unknown(path.to_string())),
        },
    };
    Ok(Target::Attr {
        attr,
        filter: Some(filter),
        sub,
    })
}

/// Apply operations to a copy of `data` and return it; `data` is unchanged on error.
pub fn apply(rt: &'static ResourceType, data: &Data, ops: &[Operation]) -> Result<Data> {
    let mut out = data.clone();
    for op in ops {
        apply_one(rt, &mut out, op)?;
    }
    demote_extra_primaries(rt, &mut out);
    validate(rt, &out, false)?;
    Ok(out)
}

fn apply_one(rt: &'static ResourceType, data: &mut Data, op: &Operation) -> Result<()> {
    let value = op.value.clone().unwrap_or(Value::Null);
    match &op.target {
        Target::Unknown(_) => Ok(()),
        Target::Resource => {
            let Value::Object(obj) = value else {
                return Ok(());
            };
            for (key, v) in obj {
                // Each key is itself a path: `displayName`, `name.givenName`, `urn:…:User:employeeNumber`,
                // or an extension URN with an object of its attributes. Server-owned keys that
                // clients echo back (`id`, `schemas`, `meta`) are ignored.
                if key.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let target = parse_path(rt, &key)?;
                if let Target::Attr { attr, .. } = &target {
                    if attr.attr.mutability == Mutability::ReadOnly {
                        continue;
                    }
                }
                apply_one(
                    rt,
                    data,
                    &Operation {
                        kind: op.kind,
                        target,
                        value: Some(v),
                    },
                )?;
            }
            Ok(())
        }
        Target::Extension(schema) => {
            match (op.kind, value) {
                (Kind::Remove, _) => {
                    data.remove(schema.id);
                }
                // Add and replace both merge into the extension (RFC 7644 §3.5.2.3: sub-attributes
                // not given are left unchanged).
                (kind, Value::Object(obj)) => {
                    for (k, v) in obj {
                        if let Some(attr) = schema.attr(&k) {
                            let a = AttrRef {
                                schema,
                                extension: true,
                                attr,
                                sub: None,
                            };
                            apply_attr(data, kind, &a, None, None, v)?;
                        }
                    }
                }
                (_, Value::Null) => {}
                (_, other) => {
                    return Err(invalid_value(format!(
                        "'{}' takes an object, not {}",
                        schema.id,
                        quote_json(&other)
                    )))
                }
            }
            Ok(())
        }
        Target::Attr { attr, filter, sub } => {
            if attr.attr.mutability == Mutability::ReadOnly
                || sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
            {
                return Err(Error::bad_request(
                    ScimType::Mutability,
                    format!("'{}' is read-only", attr.display()),
                ));
            }
            apply_attr(data, op.kind, attr, filter.as_ref(), *sub, value)
        }
    }
}

fn invalid_value(detail: impl Into<String>) -> Error {
    Error::bad_request(ScimType::InvalidValue, detail)
}

fn no_target(a: &AttrRef) -> Error {
    Error::bad_request(
        ScimType::NoTarget,
        format!("no value of '{}' matches the filter", a.display()),
    )
}

/// One operation on one attribute of the resource.
fn apply_attr(
    data: &mut Data,
    kind: Kind,
    a: &AttrRef,
    filter: Option<&Filter>,
    sub: Option<&'static Attr>,
    value: Value,
) -> Result<()> {
    if let Some(filter) = filter {
        return apply_filtered(data, kind, a, filter, sub, value);
    }
    let full = AttrRef { sub, ..*a };
    if !writable(&full) {
        return Ok(());
    }
    match kind {
        Kind::Remove => {
            let Some(container) = container_mut(data, a) else {
                return Ok(());
            };
            match (a.attr.multi_valued, sub, value) {
                // Entra: remove the listed values only (RFC: remove all).
                (true, None, Value::Array(listed)) if !listed.is_empty() => {
                    if let Some(Value::Array(items)) = container.get_mut(a.attr.name) {
                        remove_listed(a.attr, items, &listed);
                        if items.is_empty() {
                            container.remove(a.attr.name);
                        }
                    }
                }
                (_, None, _) => {
                    container.remove(a.attr.name);
                }
                (_, Some(s), _) => match container.get_mut(a.attr.name) {
                    Some(Value::Object(o)) => {
                        o.remove(s.name);
                        if o.is_empty() {
                            container.remove(a.attr.name);
                        }
                    }
                    Some(Value::Array(items)) => {
                        for item in items.iter_mut().filter_map(Value::as_object_mut) {
                            item.remove(s.name);
                        }
                    }
                    _ => {}
                },
            }
            drop_empty_extension(data, a);
            Ok(())
        }
        Kind::Add if a.attr.multi_valued && sub.is_none() => {
            // RFC 7644 §3.5.2.1: add to a multi-valued attribute appends; a value already
            // present is not added twice; a new primary demotes the others.
            let Some(new) = normalize(a.attr, value, &a.display())? else {
                return Ok(());
            };
            let new_items = match new {
                Value::Array(items) => items,
                other => vec![other],
            };
            let Some(container) = container_mut(data, a) else {
                return Ok(());
            };
            let entry = container
                .entry(a.attr.name.to_string())
                .or_insert_with(|| Value::Array(vec![]));
            if !entry.is_array() {
                *entry = Value::Array(vec![]);
            }
            if let Value::Array(items) = entry {
                add_values(a.attr, items, new_items);
                if items.len() > MAX_VALUES {
                    return Err(too_many_values(&a.display()));
                }
            }
            Ok(())
        }
        Kind::Add | Kind::Replace
            if a.attr.is_complex()
                && !a.attr.multi_valued
                && sub.is_none()
                && value.is_object()
                && !is_manager_attr(a) =>
        {
            // A complex attribute's sub-attributes are merged (RFC 7644 §3.5.2.1, §3.5.2.3).
            let Value::Object(obj) = value else {
                return Ok(());
            };
            for (k, v) in obj {
                if let Some(s) = a.attr.sub(&k) {
                    set(data, &AttrRef { sub: Some(s), ..*a }, v)?;
                }
            }
            Ok(())
        }
        // Single-valued, `add` or `replace`: set it (add on a single-valued attribute replaces).
        // Multi-valued `replace` without a filter replaces the whole set.
        Kind::Add | Kind::Replace => set(data, &full, value),
    }
}

fn is_manager_attr(a: &AttrRef) -> bool {
    a.extension && a.attr.name == "manager"
}

/// An operation whose path has a value filter: `emails[type eq "work"].value`.
fn apply_filtered(
    data: &mut Data,
    kind: Kind,
    a: &AttrRef,
    filter: &Filter,
    sub: Option<&'static Attr>,
    value: Value,
) -> Result<()> {
    let Some(container) = container_mut(data, a) else {
        return Ok(());
    };
    // A single-valued complex attribute with a filter (`manager[value eq "x"]`): it matches or not.
    if !a.attr.multi_valued {
        let matches = container
            .get(a.attr.name)
            .is_some_and(|v| matches(filter, v));
        match kind {
            Kind::Remove => {
                if matches {
                    match sub {
                        None => {
                            container.remove(a.attr.name);
                        }
                        Some(s) => {
                            if let Some(Value::Object(o)) = container.get_mut(a.attr.name) {
                                o.remove(s.name);
                            }
                        }
                    }
                }
                drop_empty_extension(data, a);
                return Ok(());
            }
            _ if !matches => return Err(no_target(a)),
            _ => {
                let full = AttrRef { sub, ..*a };
                return set(data, &full, value);
            }
        }
    }
    let items = match container.get_mut(a.attr.name) {
        Some(Value::Array(items)) => items,
        _ => {
            container.insert(a.attr.name.to_string(), Value::Array(vec![]));
            match container.get_mut(a.attr.name) {
                Some(Value::Array(items)) => items,
                _ => return Ok(()),
            }
        }
    };
    // One pass decides which values the filter selects; every step below is linear in them.
    let hit: Vec<bool> = items.iter().map(|v| matches(filter, v)).collect();
    let any_hit = hit.contains(&true);
    match kind {
        Kind::Remove => match sub {
            None => {
                let mut flags = hit.iter();
                items.retain(|_| !flags.next().copied().unwrap_or(false));
            }
            Some(s) => {
                for (item, _) in items.iter_mut().zip(&hit).filter(|(_, h)| **h) {
                    if let Some(o) = item.as_object_mut() {
                        o.remove(s.name);
                    }
                }
            }
        },
        Kind::Add | Kind::Replace => {
            let new_fields: Map<String, Value> = match sub {
                Some(s) => {
                    let v = normalize(s, value, &format!("{}.{}", a.display(), s.name))?;
                    let mut m = Map::new();
                    match v {
                        Some(v) => m.insert(s.name.to_string(), v),
                        None => m.insert(s.name.to_string(), Value::Null),
                    };
                    m
                }
                None => match normalize(
                    &Attr {
                        multi_valued: false,
                        ..*a.attr
                    },
                    value,
                    &a.display(),
                )? {
                    Some(Value::Object(m)) => m,
                    Some(_) | None => Map::new(),
                },
            };
            if !any_hit {
                // Entra: create the value the filter describes (RFC 7644 would say noTarget).
                let Some(mut element) = element_from_equalities(a.attr, filter) else {
                    return Err(no_target(a));
                };
                for (k, v) in new_fields {
                    if !v.is_null() {
                        element.insert(k, v);
                    }
                }
                let sets_primary = element.get("primary") == Some(&Value::Bool(true));
                if sets_primary {
                    for other in items.iter_mut().filter_map(Value::as_object_mut) {
                        other.remove("primary");
                    }
                }
                items.push(Value::Object(element));
            } else {
                for (item, _) in items.iter_mut().zip(&hit).filter(|(_, h)| **h) {
                    if let Some(o) = item.as_object_mut() {
                        for (k, v) in &new_fields {
                            if v.is_null() {
                                o.remove(k);
                            } else {
                                o.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    items.retain(|v| v.as_object().is_none_or(|o| !o.is_empty()));
    if items.is_empty() {
        container.remove(a.attr.name);
    }
    drop_empty_extension(data, a);
    Ok(())
}

/// The element a filter of `eq` conjunctions describes (`type eq "work"`, `primary eq "True"`),
/// with values of each sub-attribute's type; `None` for any other filter.
fn element_from_equalities(attr: &Attr, filter: &Filter) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    fn walk(attr: &Attr, f: &Filter, m: &mut Map<String, Value>) -> Option<()> {
        match f {
            Filter::And(a, b) => {
                walk(attr, a, m)?;
                walk(attr, b, m)
            }
            Filter::Compare {
                attr: r,
                op: Op::Eq,
                value,
            } => {
                let sub = r.sub?;
                let v = normalize(sub, value.clone(), &format!("{}.{}", attr.name, sub.name))
                    .ok()??;
                m.insert(sub.name.to_string(), v);
                Some(())
            }
            _ => None,
        }
    }
    walk(attr, filter, &mut m)?;
    Some(m)
}

/// Evaluate a value filter on one element of a multi-valued (or single complex) attribute.
pub fn matches(f: &Filter, element: &Value) -> bool {
    match f {
        Filter::And(a, b) => matches(a, element) && matches(b, element),
        Filter::Or(a, b) => matches(a, element) || matches(b, element),
        Filter::Not(a) => !matches(a, element),
        Filter::Present { attr: r } => match r.sub {
            Some(s) => element.get(s.name).is_some_and(|v| !v.is_null() && v != ""),
            None => true,
        },
        Filter::Has { .. } => false,
        Filter::Compare { attr: r, op, value } => {
            let Some(sub) = r.sub else { return false };
            compare(sub, element.get(sub.name), *op, value)
        }
    }
}

fn compare(sub: &Attr, actual: Option<&Value>, op: Op, expected: &Value) -> bool {
    let actual = actual.filter(|v| !v.is_null());
    if expected.is_null() {
        return match op {
            Op::Eq => actual.is_none(),
            Op::Ne => actual.is_some(),
            _ => false,
        };
    }
    let Some(actual) = actual else {
        return op == Op::Ne;
    };
    if sub.ty == Type::Boolean {
        return match (as_bool(actual), as_bool(expected), op) {
            (Some(a), Some(e), Op::Eq) => a == e,
            (Some(a), Some(e), Op::Ne) => a != e,
            _ => false,
        };
    }
    let (Some(a), Some(e)) = (value_text(actual), value_text(expected)) else {
        return false;
    };
    // Equality without allocating (it runs once per value per operation); the other
    // operators compare folded copies.
    match op {
        Op::Eq => return text_eq(sub.case_exact, &a, &e),
        Op::Ne => return !text_eq(sub.case_exact, &a, &e),
        _ => {}
    }
    let (a, e) = if sub.case_exact {
        (a, e)
    } else {
        (Cow::Owned(fold(&a)), Cow::Owned(fold(&e)))
    };
    match op {
        Op::Eq | Op::Ne => false,
        Op::Co => a.contains(e.as_ref()),
        Op::Sw => a.starts_with(e.as_ref()),
        Op::Ew => a.ends_with(e.as_ref()),
        Op::Gt => a > e,
        Op::Ge => a >= e,
        Op::Lt => a < e,
        Op::Le => a <= e,
    }
}

fn text_eq(case_exact: bool, a: &str, b: &str) -> bool {
    if case_exact {
        a == b
    } else {
        crate::scim::fold::eq(a, b)
    }
}

/// Whether `b` is the same value as `a` (what [`ElementKey`] identifies, compared without
/// building keys).
fn same_element(attr: &Attr, a: &Value, b: &Value) -> bool {
    let case_exact = attr.sub("value").map_or(attr.case_exact, |s| s.case_exact);
    match (
        a.get("value").and_then(value_text),
        b.get("value").and_then(value_text),
    ) {
        (Some(x), Some(y)) => text_eq(case_exact, &x, &y) && a.get("type") == b.get("type"),
        (None, None) => a == b,
        _ => false,
    }
}

/// Below this many values per operation, matching scans the present values; above it, it
/// builds an index of them once. Either way an operation costs O(present + added) comparisons
/// that do not allocate, or hash lookups.
const SCAN_BELOW: usize = 8;

/// Append values to a multi-valued attribute (RFC 7644 §3.5.2.1): a value already present
/// (same `value` under its case rule, same `type`) is merged rather than added twice, and a new
/// `primary` demotes the others, the last one winning. Linear: one index of the present values,
/// never a comparison of every pair.
fn add_values(attr: &Attr, items: &mut Vec<Value>, new_items: Vec<Value>) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let last_primary = new_items.iter().rposition(is_primary);
    if last_primary.is_some() {
        for other in items.iter_mut().filter_map(Value::as_object_mut) {
            other.remove("primary");
        }
    }
    let mut index: Option<HashMap<ElementKey, usize>> =
        (new_items.len() >= SCAN_BELOW).then(|| {
            let mut index = HashMap::with_capacity(items.len().saturating_add(new_items.len()));
            for (i, item) in items.iter().enumerate() {
                index.entry(element_key(attr, item)).or_insert(i);
            }
            index
        });
    for (k, mut item) in new_items.into_iter().enumerate() {
        if Some(k) != last_primary && is_primary(&item) {
            // A later value of this request is the primary one.
            if let Some(o) = item.as_object_mut() {
                o.remove("primary");
            }
        }
        let found = match &mut index {
            Some(index) => {
                let key = element_key(attr, &item);
                let found = index.get(&key).copied();
                if found.is_none() {
                    index.insert(key, items.len());
                }
                found
            }
            None => items.iter().position(|e| same_element(attr, e, &item)),
        };
        match found.and_then(|i| items.get_mut(i)) {
            Some(existing) => merge(existing, item),
            None => items.push(item),
        }
    }
}

/// Remove the listed values (Entra's `remove` with a value list): one set of the listed keys,
/// one pass over the values. A listed `null` removes the values that have no `value`.
fn remove_listed(attr: &Attr, items: &mut Vec<Value>, listed: &[Value]) {
    let mut keys = HashSet::with_capacity(listed.len());
    let mut valueless = false;
    for l in listed {
        match l.get("value").unwrap_or(l) {
            Value::Null => valueless = true,
            v => keys.extend(value_key(attr, v)),
        }
    }
    items.retain(|item| match item.get("value").filter(|v| !v.is_null()) {
        None => !valueless,
        Some(v) => value_key(attr, v).is_none_or(|k| !keys.contains(&k)),
    });
}

/// What identifies a value of a multi-valued attribute: its `value` (folded unless the
/// attribute's `value` is case-exact) and its `type`; a value without `value` is itself.
#[derive(Debug, PartialEq, Eq, Hash)]
enum ElementKey {
    Value(String, Option<String>),
    Whole(String),
}

fn element_key(attr: &Attr, item: &Value) -> ElementKey {
    match item.get("value").and_then(|v| value_key(attr, v)) {
        Some(v) => ElementKey::Value(v, item.get("type").map(Value::to_string)),
        None => ElementKey::Whole(item.to_string()),
    }
}

/// A `value` as compared: strings and numbers as text, folded for a case-insensitive value.
fn value_key(attr: &Attr, v: &Value) -> Option<String> {
    let text = value_text(v)?;
    let case_exact = attr.sub("value").map_or(attr.case_exact, |s| s.case_exact);
    Some(if case_exact {
        text.into_owned()
    } else {
        fold(&text)
    })
}

fn merge(existing: &mut Value, new: Value) {
    if let (Value::Object(e), Value::Object(n)) = (existing, new) {
        for (k, v) in n {
            e.insert(k, v);
        }
    }
}

/// A member named in a request: its id and the `display` the client sent, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    pub id: String,
    pub display: Option<String>,
}

/// A change to a multi-valued reference attribute stored as rows (a group's `members`).
#[derive(Debug, Clone)]
pub enum MemberOp {
    Add(Vec<NewMember>),
    /// Replace the whole set (RFC 7644 §3.5.2.3).
    Replace(Vec<NewMember>),
    /// Entra's `Remove` with a value list: only these ids.
    Remove(Vec<String>),
    /// `remove` of the attribute without a value: all (RFC 7644 §3.5.2.2).
    RemoveAll,
    /// `remove` with a value filter: `members[value eq "u1"]`.
    RemoveWhere(Filter),
}

/// The members a PATCH or POST value names: `[{"value": id, "display"?: …}, …]`, one such
/// object, or bare ids.
pub fn members(value: &Value) -> Result<Vec<NewMember>> {
    let items: Vec<&Value> = match value {
        Value::Null => vec![],
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) if !s.is_empty() => Ok(NewMember {
                id: s.clone(),
                display: None,
            }),
            Value::Object(o) => match get_ci(o, "value") {
                Some(Value::String(s)) if !s.is_empty() => Ok(NewMember {
                    id: s.clone(),
                    display: get_ci(o, "display")
                        .and_then(Value::as_str)
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                }),
                _ => Err(invalid_value(format!(
                    "a member needs a 'value' (its id), not {}",
                    quote_json(v)
                ))),
            },
            other => Err(invalid_value(format!(
                "a member must be {{\"value\": id}}, not {}",
                quote_json(other)
            ))),
        })
        .collect()
}

/// Separate the operations on `attr` (a multi-valued attribute stored as rows) from the rest,
/// which [`apply`] handles. Order among member operations is kept; member and attribute
/// operations touch disjoint data, so their relative order does not matter.
pub fn take_members(ops: Vec<Operation>, attr: &str) -> Result<(Vec<Operation>, Vec<MemberOp>)> {
    let mut rest = Vec::new();
    let mut member_ops = Vec::new();
    for op in ops {
        match &op.target {
            Target::Attr {
                attr: a,
                filter,
                sub,
            } if !a.extension && a.attr.name == attr => {
                if sub.is_some() {
                    return Err(Error::bad_request(
                        ScimType::Mutability,
                        format!("the sub-attributes of '{attr}' cannot be changed; add or remove {attr} instead"),
                    ));
                }
                let value = op.value.clone().unwrap_or(Value::Null);
                member_ops.push(match (op.kind, filter) {
                    (Kind::Remove, Some(f)) => MemberOp::RemoveWhere(f.clone()),
                    (_, Some(_)) => {
                        return Err(invalid_path(format!(
                            "'{attr}' with a filter can only be removed"
                        )))
                    }
                    (Kind::Add, None) => MemberOp::Add(members(&value)?),
                    (Kind::Replace, None) => MemberOp::Replace(members(&value)?),
                    (Kind::Remove, None) => match members(&value)? {
                        listed if listed.is_empty() => MemberOp::RemoveAll,
                        listed => MemberOp::Remove(listed.into_iter().map(|m| m.id).collect()),
                    },
                });
            }
            Target::Resource => {
                let Some(Value::Object(obj)) = &op.value else {
                    rest.push(op);
                    continue;
                };
                let mut obj = obj.clone();
                let key = obj.keys().find(|k| k.eq_ignore_ascii_case(attr)).cloned();
                if let Some(v) = key.and_then(|k| obj.remove(&k)) {
                    let listed = members(&v)?;
                    member_ops.push(if op.kind == Kind::Replace {
                        MemberOp::Replace(listed)
                    } else {
                        MemberOp::Add(listed)
                    });
                }
                if !obj.is_empty() {
                    rest.push(Operation {
                        value: Some(Value::Object(obj)),
                        ..op
                    });
                }
            }
            _ => rest.push(op),
        }
    }
    Ok((rest, member_ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::resource::from_request;
    use crate::scim::schema::USER_TYPE;
    use serde_json::json;

    fn run(before: Value, ops: Value) -> Result<Data> {
        let data = from_request(&USER_TYPE, &before)?;
        let ops = parse(&USER_TYPE, &json!({ "Operations": ops }))?;
        apply(&USER_TYPE, &data, &ops)
    }

    fn emails(d: &Data) -> Value {
        d.get("emails").cloned().unwrap_or(Value::Null)
    }

    #[test]
    fn add_merges_a_value_already_present_under_unicode_case_folding() {
        let d = run(
            json!({"userName": "u", "emails": [{"value": "ÄLICE@x.de", "type": "work"}]}),
            json!([{"op": "add", "path": "emails", "value": [
                {"value": "älice@X.DE", "type": "work", "display": "A"},
                {"value": "älice@x.de", "type": "home"}
            ]}]),
        )
        .expect("applies");
        assert_eq!(
            emails(&d),
            json!([{"value": "älice@X.DE", "type": "work", "display": "A"},
                   {"value": "älice@x.de", "type": "home"}])
        );
    }

    #[test]
    fn the_last_new_primary_wins_in_both_matching_paths() {
        // Fewer than SCAN_BELOW new values scan; more build an index: same answer.
        for n in [2, SCAN_BELOW.saturating_add(2)] {
            let new: Vec<Value> = (0..n)
                .map(|i| json!({"value": format!("v{i}@x"), "primary": true}))
                .collect();
            let d = run(
                json!({"userName": "u", "emails": [{"value": "old@x", "primary": true}]}),
                json!([{"op": "add", "path": "emails", "value": new}]),
            )
            .expect("applies");
            let primaries: Vec<&str> = d["emails"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e.get("primary") == Some(&json!(true)))
                .filter_map(|e| e["value"].as_str())
                .collect();
            assert_eq!(
                primaries,
                vec![format!("v{}@x", n.saturating_sub(1))],
                "{n}"
            );
            assert_eq!(
                d["emails"].as_array().map(Vec::len),
                Some(n.saturating_add(1))
            );
        }
    }

    #[test]
    fn remove_with_a_value_list_removes_only_those() {
        let d = run(
            json!({"userName": "u", "emails": [{"value": "a@x"}, {"value": "B@x"}, {"value": "c@x"}]}),
            json!([{"op": "Remove", "path": "emails", "value": [{"value": "b@X"}, "c@x", {"display": "no value"}]}]),
        )
        .expect("applies");
        assert_eq!(emails(&d), json!([{"value": "a@x"}]));
    }

    #[test]
    fn multi_valued_attributes_hold_at_most_max_values() {
        let many = |n: usize, tag: &str| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"value": format!("{tag}{i}@x")}))
                .collect()
        };
        let e = run(
            json!({"userName": "u"}),
            json!([{"op": "add", "path": "emails", "value": many(MAX_VALUES.saturating_add(1), "a")}]),
        )
        .expect_err("too many");
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
        let e = run(
            json!({"userName": "u", "emails": many(MAX_VALUES, "a")}),
            json!([{"op": "add", "path": "emails", "value": many(1, "b")}]),
        )
        .expect_err("one more is too many");
        assert!(e.detail.contains("at most 1000"), "{}", e.detail);
        let e = run(
            json!({"userName": "u", "emails": many(MAX_VALUES, "a")}),
            json!([{"op": "add", "path": "emails[type eq \"new\"].value", "value": "z@x"}]),
        )
        .expect_err("a value created by a filtered add counts too");
        assert_eq!(e.status, 400);
        let full = run(
            json!({"userName": "u", "emails": many(MAX_VALUES, "a")}),
            json!([{"op": "add", "path": "emails", "value": many(3, "a")}]),
        )
        .expect("values already present are merged, not added");
        assert_eq!(full["emails"].as_array().map(Vec::len), Some(MAX_VALUES));
    }

    #[test]
    fn filtered_paths_compare_with_unicode_folding() {
        let d = run(
            json!({"userName": "u", "emails": [{"value": "STRASSE@x.de", "type": "work"}]}),
            json!([{"op": "remove", "path": "emails[value eq \"straße@X.DE\"]"}]),
        )
        .expect("applies");
        assert!(d.get("emails").is_none(), "{d:?}");
    }
}
