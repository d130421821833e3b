//! Reading a PatchOp body (RFC 7644 §3.5.2) into typed operations, and a `path` into what it
//! targets. Nothing here touches a resource: a body that does not parse changes nothing.

use serde_json::Value;

use super::{get_ci, invalid_path, syntax, Action, Operation, Target, MAX_OPERATIONS};
use crate::scim::error::{quote, Error, Result, ScimType};
use crate::scim::filter::parse_value_filter;
use crate::scim::schema::{AttrRef, Resolved, ResourceType};

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
            parse_op(rt, op).map_err(|e| e.prefixed(&format!("operation {n}: ")))
        })
        .collect()
}

fn parse_op(rt: &'static ResourceType, op: &Value) -> Result<Operation> {
    let obj = op
        .as_object()
        .ok_or_else(|| syntax("each operation must be an object"))?;
    let action = parse_action(get_ci(obj, "op"))?;
    let value = get_ci(obj, "value").cloned();
    let target = match get_ci(obj, "path") {
        None | Some(Value::Null) => Target::Resource,
        Some(Value::String(p)) if p.trim().is_empty() => Target::Resource,
        Some(Value::String(p)) => parse_path(rt, p.trim())?,
        Some(_) => return Err(invalid_path("'path' must be a string")),
    };
    check_shape(action, &target, value.as_ref())?;
    Ok(Operation {
        action,
        target,
        value,
    })
}

/// `op` in any case: Entra sends `Add`, `Replace` and `Remove`.
fn parse_action(op: Option<&Value>) -> Result<Action> {
    match op
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => Ok(Action::Add),
        Some("replace") => Ok(Action::Replace),
        Some("remove") => Ok(Action::Remove),
        Some(other) => Err(syntax(format!(
            "unknown op '{}' (expected add, replace or remove)",
            quote(other)
        ))),
        None => Err(syntax("'op' is missing")),
    }
}

/// The combinations RFC 7644 §3.5.2 rules out: `remove` needs a path (§3.5.2.2, `noTarget`),
/// `add` and `replace` need a value, and a value without a path is an object of attributes.
fn check_shape(action: Action, target: &Target, value: Option<&Value>) -> Result<()> {
    match (action, target, value) {
        (Action::Remove, Target::Resource, _) => Err(Error::bad_request(
            ScimType::NoTarget,
            "remove needs a path",
        )),
        (Action::Add | Action::Replace, Target::Resource, Some(v)) if !v.is_object() => Err(
            syntax("without a path, 'value' must be an object of attributes"),
        ),
        (Action::Add | Action::Replace, _, None) => Err(syntax("add and replace need a 'value'")),
        _ => Ok(()),
    }
}

/// Parse a PATCH path (RFC 7644 §3.5.2 `PATH = attrPath / valuePath [subAttr]`).
pub fn parse_path(rt: &'static ResourceType, path: &str) -> Result<Target> {
    let shown = quote(path);
    let (head, filter_text, tail) = split_path(path, &shown)?;
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
        .map_err(|e| invalid_path(format!("'{shown}': {}", e.marked())))?;
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

/// `emails[type eq "work"].value` → (`emails`, `type eq "work"`, `value`). The filter ends at
/// the last `]`, so a `]` inside a quoted filter value does not cut it short.
fn split_path<'p>(
    path: &'p str,
    shown: &str,
) -> Result<(&'p str, Option<&'p str>, Option<&'p str>)> {
    let Some((head, bracketed)) = path.split_once('[') else {
        return Ok((path, None, None));
    };
    let (inner, tail) = bracketed
        .rsplit_once(']')
        .ok_or_else(|| invalid_path(format!("'{shown}': unbalanced '['")))?;
    let tail = match tail {
        "" => None,
        t => Some(
            t.strip_prefix('.')
                .ok_or_else(|| invalid_path(format!("'{shown}': expected '.' after ']'")))?,
        ),
    };
    Ok((head, Some(inner), tail))
}
