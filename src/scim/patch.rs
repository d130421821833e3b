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

use super::error::{Error, Result, ScimType};
use super::filter::{parse_value_filter, Filter, Op};
use super::resource::{
    container_mut, demote_extra_primaries, drop_empty_extension, normalize, set, validate,
    writable, Data,
};
use super::schema::{Attr, AttrRef, Mutability, Resolved, ResourceType, Type};
use crate::store::filter_sql::as_bool;

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
                "unknown op '{other}' (expected add, replace or remove)"
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
    let (head, filter_text, tail) = match path.split_once('[') {
        Some((head, bracketed)) => {
            let (inner, tail) = bracketed
                .rsplit_once(']')
                .ok_or_else(|| invalid_path(format!("'{path}': unbalanced '['")))?;
            let tail = match tail {
                "" => None,
                t => Some(
                    t.strip_prefix('.')
                        .ok_or_else(|| invalid_path(format!("'{path}': expected '.' after ']'")))?,
                ),
            };
            (head, Some(inner), tail)
        }
        None => (path, None, None),
    };
    if head.is_empty() || head.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '(' | ')'))
    {
        return Err(invalid_path(format!("'{path}' is not an attribute path")));
    }
    let attr = match rt.resolve(head) {
        Resolved::Attr(a) => a,
        Resolved::Extension(schema) if filter_text.is_none() => {
            return Ok(Target::Extension(schema))
        }
        Resolved::Extension(_) => {
            return Err(invalid_path(format!(
                "'{path}': an extension cannot take a filter"
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
            "'{path}': only a complex attribute can take a filter"
        )));
    }
    let filter = parse_value_filter(filter_text, attr, rt)
        .map_err(|e| invalid_path(format!("'{path}': {}", e.detail)))?;
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
                        "'{}' takes an object, not {other}",
                        schema.id
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
                    let listed: Vec<Value> = listed
                        .iter()
                        .filter_map(|v| v.get("value").or(Some(v)).cloned())
                        .collect();
                    if let Some(Value::Array(items)) = container.get_mut(a.attr.name) {
                        items.retain(|item| {
                            !listed
                                .iter()
                                .any(|l| same_value(a.attr, item.get("value"), l))
                        });
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
                for item in new_items {
                    if item.get("primary") == Some(&Value::Bool(true)) {
                        for other in items.iter_mut().filter_map(Value::as_object_mut) {
                            other.remove("primary");
                        }
                    }
                    match items
                        .iter_mut()
                        .find(|existing| same_element(a.attr, existing, &item))
                    {
                        Some(existing) => merge(existing, item),
                        None => items.push(item),
                    }
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
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let (Some(mut a), Some(mut e)) = (text(actual), text(expected)) else {
        return false;
    };
    if !sub.case_exact {
        a = a.to_lowercase();
        e = e.to_lowercase();
    }
    match op {
        Op::Eq => a == e,
        Op::Ne => a != e,
        Op::Co => a.contains(&e),
        Op::Sw => a.starts_with(&e),
        Op::Ew => a.ends_with(&e),
        Op::Gt => a > e,
        Op::Ge => a >= e,
        Op::Lt => a < e,
        Op::Le => a <= e,
    }
}

/// Two values of a multi-valued attribute are the same value (compared by `value`, honouring
/// its case rules).
fn same_value(attr: &Attr, actual: Option<&Value>, listed: &Value) -> bool {
    let sub = attr.sub("value").copied().unwrap_or(*attr);
    compare(&sub, actual, Op::Eq, listed)
}

fn same_element(attr: &Attr, existing: &Value, new: &Value) -> bool {
    match (existing.get("value"), new.get("value")) {
        (Some(_), Some(v)) => {
            same_value(attr, existing.get("value"), v) && existing.get("type") == new.get("type")
        }
        _ => existing == new,
    }
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
                    "a member needs a 'value' (its id), not {v}"
                ))),
            },
            other => Err(invalid_value(format!(
                "a member must be {{\"value\": id}}, not {other}"
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
