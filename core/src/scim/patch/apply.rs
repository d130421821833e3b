//! Running parsed operations on a resource's JSON (RFC 7644 §3.5.2.1–3), in order, on a copy:
//! any error leaves the stored resource as it was. One function per kind of target: the whole
//! resource (no path), a whole extension, one attribute, one attribute through a value filter.

use serde_json::{Map, Value};

use super::values::{add_values, element_from_equalities, matches, remove_listed};
use super::{invalid_value, Action, Operation, Target};
use crate::scim::error::{quote_json, Error, Result, ScimType};
use crate::scim::filter::Filter;
use crate::scim::resource::{
    container_mut, demote_extra_primaries, drop_empty_extension, normalize, set, too_many_values,
    validate, writable, Data, MAX_VALUES,
};
use crate::scim::schema::{Attr, AttrRef, Mutability, ResourceType, Schema};

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
        Target::Resource => apply_pathless(rt, data, op.action, value),
        Target::Extension(schema) => apply_extension(data, op.action, schema, value),
        Target::Attr { attr, filter, sub } => {
            if attr.attr.mutability == Mutability::ReadOnly
                || sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
            {
                return Err(Error::bad_request(
                    ScimType::Mutability,
                    format!("'{}' is read-only", attr.display()),
                ));
            }
            match filter {
                Some(filter) => apply_filtered(data, op.action, attr, filter, *sub, value),
                None => apply_attr(data, op.action, &AttrRef { sub: *sub, ..*attr }, value),
            }
        }
    }
}

/// No path (RFC 7644 §3.5.2.1): each key of the value object is itself a path, as Entra sends
/// them: `displayName`, `name.givenName`, `urn:…:User:employeeNumber`, or an extension URN with
/// an object of its attributes. Server-owned keys that clients echo back (`id`, `schemas`,
/// `meta`) are ignored rather than refused.
fn apply_pathless(
    rt: &'static ResourceType,
    data: &mut Data,
    action: Action,
    value: Value,
) -> Result<()> {
    let Value::Object(obj) = value else {
        return Ok(());
    };
    for (key, v) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let target = super::parse_path(rt, &key)?;
        if let Target::Attr { attr, .. } = &target {
            if attr.attr.mutability == Mutability::ReadOnly {
                continue;
            }
        }
        let op = Operation {
            action,
            target,
            value: Some(v),
        };
        apply_one(rt, data, &op)?;
    }
    Ok(())
}

/// A whole extension by its URN: `remove` drops it; `add` and `replace` both merge into it
/// (RFC 7644 §3.5.2.3: sub-attributes not given are left unchanged).
fn apply_extension(
    data: &mut Data,
    action: Action,
    schema: &'static Schema,
    value: Value,
) -> Result<()> {
    match (action, value) {
        (Action::Remove, _) => {
            data.remove(schema.id);
        }
        (action, Value::Object(obj)) => {
            for (k, v) in obj {
                if let Some(attr) = schema.attr(&k) {
                    let a = AttrRef {
                        schema,
                        extension: true,
                        attr,
                        sub: None,
                    };
                    apply_attr(data, action, &a, v)?;
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

/// One operation on one attribute (or one sub-attribute, `a.sub`) without a filter.
fn apply_attr(data: &mut Data, action: Action, a: &AttrRef, value: Value) -> Result<()> {
    if !writable(a) {
        return Ok(());
    }
    match action {
        Action::Remove => {
            remove_attr(data, a, value);
            Ok(())
        }
        Action::Add if a.attr.multi_valued && a.sub.is_none() => add_to_multi(data, a, value),
        Action::Add | Action::Replace
            if a.attr.is_complex()
                && !a.attr.multi_valued
                && a.sub.is_none()
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
        Action::Add | Action::Replace => set(data, a, value),
    }
}

/// `remove` without a filter (RFC 7644 §3.5.2.2): the attribute, or one sub-attribute of it
/// (of every value, if multi-valued). Entra's removal with a value list removes only the listed
/// values, where the RFC would remove them all.
fn remove_attr(data: &mut Data, a: &AttrRef, value: Value) {
    let Some(container) = container_mut(data, a) else {
        return;
    };
    match (a.attr.multi_valued, a.sub, value) {
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
}

/// RFC 7644 §3.5.2.1: `add` to a multi-valued attribute appends; a value already present is not
/// added twice; a new primary demotes the others.
fn add_to_multi(data: &mut Data, a: &AttrRef, value: Value) -> Result<()> {
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
    if let Some(items) = values_mut(container, a.attr.name) {
        add_values(a.attr, items, new_items);
        if items.len() > MAX_VALUES {
            return Err(too_many_values(&a.display()));
        }
    }
    Ok(())
}

/// A multi-valued attribute's values, as an array to change in place: created empty when
/// absent, and replacing anything stored there that is not an array.
fn values_mut<'d>(container: &'d mut Data, name: &str) -> Option<&'d mut Vec<Value>> {
    let entry = container
        .entry(name.to_string())
        .or_insert_with(|| Value::Array(vec![]));
    if !entry.is_array() {
        *entry = Value::Array(vec![]);
    }
    entry.as_array_mut()
}

fn is_manager_attr(a: &AttrRef) -> bool {
    a.extension && a.attr.name == "manager"
}

fn no_target(a: &AttrRef) -> Error {
    Error::bad_request(
        ScimType::NoTarget,
        format!("no value of '{}' matches the filter", a.display()),
    )
}

/// An operation whose path has a value filter: `emails[type eq "work"].value`.
fn apply_filtered(
    data: &mut Data,
    action: Action,
    a: &AttrRef,
    filter: &Filter,
    sub: Option<&'static Attr>,
    value: Value,
) -> Result<()> {
    if !a.attr.multi_valued {
        return apply_filtered_single(data, action, &AttrRef { sub, ..*a }, filter, value);
    }
    // Normalised before the container is borrowed: an invalid value changes nothing.
    let new_fields = match action {
        Action::Remove => Map::new(),
        Action::Add | Action::Replace => filtered_fields(a, sub, value)?,
    };
    let Some(container) = container_mut(data, a) else {
        return Ok(());
    };
    if let Some(items) = values_mut(container, a.attr.name) {
        // One pass decides which values the filter selects; every step below is linear in them.
        let hit: Vec<bool> = items.iter().map(|v| matches(filter, v)).collect();
        match (action, sub) {
            (Action::Remove, None) => {
                let mut flags = hit.iter();
                items.retain(|_| !flags.next().copied().unwrap_or(false));
            }
            (Action::Remove, Some(s)) => {
                for (item, _) in items.iter_mut().zip(&hit).filter(|(_, h)| **h) {
                    if let Some(o) = item.as_object_mut() {
                        o.remove(s.name);
                    }
                }
            }
            (Action::Add | Action::Replace, _) if !hit.contains(&true) => {
                // Entra: create the value the filter describes (RFC 7644 would say noTarget).
                let element =
                    element_from_equalities(a.attr, filter).ok_or_else(|| no_target(a))?;
                create_described(items, element, new_fields);
            }
            (Action::Add | Action::Replace, _) => {
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
        items.retain(|v| v.as_object().is_none_or(|o| !o.is_empty()));
        if items.is_empty() {
            container.remove(a.attr.name);
        }
    }
    drop_empty_extension(data, a);
    Ok(())
}

/// A single-valued complex attribute with a filter (`manager[value eq "x"]`, `a.sub` the
/// sub-attribute after it, if any): it matches or not.
fn apply_filtered_single(
    data: &mut Data,
    action: Action,
    a: &AttrRef,
    filter: &Filter,
    value: Value,
) -> Result<()> {
    let Some(container) = container_mut(data, a) else {
        return Ok(());
    };
    let hit = container
        .get(a.attr.name)
        .is_some_and(|v| matches(filter, v));
    match action {
        Action::Remove => {
            match (hit, a.sub) {
                (false, _) => {}
                (true, None) => {
                    container.remove(a.attr.name);
                }
                (true, Some(s)) => {
                    if let Some(Value::Object(o)) = container.get_mut(a.attr.name) {
                        o.remove(s.name);
                    }
                }
            }
            drop_empty_extension(data, a);
            Ok(())
        }
        Action::Add | Action::Replace if hit => set(data, a, value),
        Action::Add | Action::Replace => Err(no_target(&AttrRef { sub: None, ..*a })),
    }
}

/// What an `add`/`replace` through a filter writes into each selected value: the one
/// sub-attribute the path names (`null` to clear it), or the fields of the value object.
fn filtered_fields(
    a: &AttrRef,
    sub: Option<&'static Attr>,
    value: Value,
) -> Result<Map<String, Value>> {
    Ok(match sub {
        Some(s) => {
            let v = normalize(s, value, &format!("{}.{}", a.display(), s.name))?;
            let mut m = Map::new();
            m.insert(s.name.to_string(), v.unwrap_or(Value::Null));
            m
        }
        None => {
            let one = Attr {
                multi_valued: false,
                ..*a.attr
            };
            match normalize(&one, value, &a.display())? {
                Some(Value::Object(m)) => m,
                Some(_) | None => Map::new(),
            }
        }
    })
}

/// Append the value a filter of equalities describes, with the operation's fields; a new
/// primary demotes the others.
fn create_described(
    items: &mut Vec<Value>,
    mut element: Map<String, Value>,
    new_fields: Map<String, Value>,
) {
    for (k, v) in new_fields {
        if !v.is_null() {
            element.insert(k, v);
        }
    }
    if element.get("primary") == Some(&Value::Bool(true)) {
        for other in items.iter_mut().filter_map(Value::as_object_mut) {
            other.remove("primary");
        }
    }
    items.push(Value::Object(element));
}
