//! PATCH on an attribute stored as rows rather than in the resource's JSON (a group's
//! `members`): the operations on it become [`MemberOp`]s that the store runs as statements, so a
//! membership change never reads or rewrites the whole member list.

use serde_json::Value;

use super::{get_ci, invalid_path, invalid_value, Action, Operation, Target};
use crate::scim::error::{quote_json, Error, Result, ScimType};
use crate::scim::filter::Filter;

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
/// which [`super::apply`] handles. Order among member operations is kept; member and attribute
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
                member_ops.push(match (op.action, filter) {
                    (Action::Remove, Some(f)) => MemberOp::RemoveWhere(f.clone()),
                    (_, Some(_)) => {
                        return Err(invalid_path(format!(
                            "'{attr}' with a filter can only be removed"
                        )))
                    }
                    (Action::Add, None) => MemberOp::Add(members(&value)?),
                    (Action::Replace, None) => MemberOp::Replace(members(&value)?),
                    (Action::Remove, None) => match members(&value)? {
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
                    member_ops.push(if op.action == Action::Replace {
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
