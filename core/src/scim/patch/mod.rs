//! PATCH (RFC 7644 §3.5.2) with the dialects identity providers actually send.
//!
//! Parse, then apply: the body becomes typed [`Operation`]s first, then [`apply`] runs them in
//! order on a copy of the resource. Any error leaves the stored resource untouched (the caller
//! persists the result only on success), so a PATCH is all-or-nothing.
//!
//! Entra's dialect (Microsoft's "Tutorial: Develop and plan provisioning for a SCIM endpoint" and
//! "Known issues and resolutions with SCIM 2.0 protocol compliance"), accepted alongside the RFC:
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
//!
//! The parts: [`parse`] turns the body into [`Operation`]s, [`apply`] runs them on a resource's
//! JSON, the value rules (matching a value filter, adding without duplicates, removing a listed
//! set) are in `values`, and [`take_members`] separates the operations on an attribute stored as
//! rows (a group's `members`) for the store to run as statements.

mod apply;
mod members;
mod parse;
#[cfg(test)]
mod tests;
mod values;

use serde_json::{Map, Value};

use super::error::{Error, ScimType};
use super::filter::Filter;
use super::resource::normalize;
use super::schema::{Attr, AttrRef, Mutability, ResourceType, Schema};

pub use apply::apply;
pub use members::{members, take_members, MemberOp, NewMember};
pub use parse::{parse, parse_path};
pub use values::matches;

/// Most operations accepted in one request.
pub const MAX_OPERATIONS: usize = 1000;

/// An operation's `op` (RFC 7644 §3.5.2), read in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
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
    Extension(&'static Schema),
    /// Well-formed, but not an attribute this server has: the operation is a no-op.
    Unknown(String),
}

/// One parsed operation: what it does, where, and with which value.
#[derive(Debug, Clone)]
pub struct Operation {
    pub action: Action,
    pub target: Target,
    pub value: Option<Value>,
}

/// The value `ops` set `active` to, when that is all they do: one `replace` (or `add`) of
/// `active` by its path (Entra's disable: `{"op": "Replace", "path": "active", "value":
/// "False"}`) or by a value object with only `active` (Okta's). Such a change commutes with
/// any other write, so the store can make it without reading the user first.
pub fn only_active(ops: &[Operation]) -> Option<bool> {
    let [op] = ops else {
        return None;
    };
    if op.action == Action::Remove {
        return None;
    }
    let value = op.value.as_ref()?;
    match &op.target {
        Target::Attr {
            attr,
            filter: None,
            sub: None,
        } if !attr.extension && attr.sub.is_none() && attr.attr.name == "active" => {
            super::value::as_bool(value)
        }
        Target::Resource => match value.as_object()?.iter().collect::<Vec<_>>()[..] {
            [(key, v)] if key.eq_ignore_ascii_case("active") => super::value::as_bool(v),
            _ => None,
        },
        _ => None,
    }
}

/// One single-valued leaf a PATCH sets, and its normalised value: what [`leaf_sets`] finds.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafSet {
    pub attr: AttrRef,
    pub value: Value,
}

/// The single-valued leaves `ops` set, each to a value, when that is all they do (operations
/// on attributes this server does not have aside): `replace` or `add` of `displayName`,
/// `name.givenName` or `urn:…:User:department`, by its path or as a key of a path-less value
/// object (Entra's attribute updates; Okta's), the last value of a leaf kept. Setting a leaf to
/// a value does not depend on anything else the resource holds, so such a PATCH can be one
/// conditional write with no read before it (RFC 7644 §3.5.2.1 and §3.5.2.3 give it the same
/// result as [`apply`] on whatever the resource is then).
///
/// `None` for everything else, which [`apply`] runs on the resource read first: a removal or
/// a value that unassigns (null, `""`), a value filter, a multi-valued or complex attribute as
/// a whole, the manager (an id, stored as one), a read-only or write-only leaf, a value
/// [`apply`] would refuse (it gives the error), or nothing at all to set.
pub fn leaf_sets(rt: &'static ResourceType, ops: &[Operation]) -> Option<Vec<LeafSet>> {
    let mut sets: Vec<LeafSet> = Vec::new();
    let mut push = |set: LeafSet| {
        sets.retain(|s| s.attr != set.attr);
        sets.push(set);
    };
    for op in ops {
        if op.action == Action::Remove {
            return None;
        }
        let value = op.value.as_ref()?;
        match &op.target {
            Target::Unknown(_) => {}
            Target::Attr {
                attr,
                filter: None,
                sub,
            } => push(leaf_set(AttrRef { sub: *sub, ..*attr }, value)?),
            Target::Resource => {
                for (key, v) in value.as_object()? {
                    if key.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    match parse_path(rt, key).ok()? {
                        Target::Unknown(_) => {}
                        // A read-only attribute echoed back in a path-less value is ignored.
                        Target::Attr { attr, .. }
                            if attr.attr.mutability == Mutability::ReadOnly => {}
                        Target::Attr {
                            attr,
                            filter: None,
                            sub,
                        } => push(leaf_set(AttrRef { sub, ..attr }, v)?),
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
    }
    (!sets.is_empty()).then_some(sets)
}

/// `a` set to `value`, if `a` is a single-valued leaf a client writes and `value` assigns it.
fn leaf_set(a: AttrRef, value: &Value) -> Option<LeafSet> {
    let leaf = a.leaf();
    let parent_ok = a.sub.is_none() || (a.attr.is_complex() && !a.attr.multi_valued);
    // What `apply` writes as given ([`crate::scim::resource::set`]): not read-only (refused
    // or ignored), not write-only (ignored), not the manager (stored as its id).
    let written = |m: Mutability| matches!(m, Mutability::ReadWrite | Mutability::Immutable);
    if !parent_ok
        || a.attr.name == "manager"
        || a.attr.multi_valued
        || leaf.is_complex()
        || leaf.multi_valued
        || !written(a.attr.mutability)
        || !written(leaf.mutability)
    {
        return None;
    }
    match normalize(leaf, value.clone(), &a.display()).ok()?? {
        Value::Array(_) | Value::Object(_) | Value::Null => None,
        value => Some(LeafSet { attr: a, value }),
    }
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

fn invalid_value(detail: impl Into<String>) -> Error {
    Error::bad_request(ScimType::InvalidValue, detail)
}
