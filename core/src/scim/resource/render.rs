//! The canonical form to SCIM JSON (RFC 7643 §3): `id`, `schemas` (the core schema and each
//! extension present), `meta` (with the weak ETag as `version`), the manager's `$ref`, and the
//! references of a group's `members` and a user's `groups`.

use serde_json::{Map, Value};

use super::Data;
use crate::scim::etag::etag;
use crate::scim::schema::ResourceType;
use crate::time::rfc3339;

/// What a reference points at: the `type` of a group's member (RFC 7643 §4.2: `User` or
/// `Group`) or of a user's group (§4.1.2: `direct`; nothing here is `indirect`, since nested
/// groups are not expanded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefType {
    User,
    Group,
    Direct,
}

impl RefType {
    pub fn as_str(self) -> &'static str {
        match self {
            RefType::User => "User",
            RefType::Group => "Group",
            RefType::Direct => "direct",
        }
    }

    pub fn parse(s: &str) -> Option<RefType> {
        [RefType::User, RefType::Group, RefType::Direct]
            .into_iter()
            .find(|t| t.as_str() == s)
    }

    /// The endpoint of the resource referred to, for its `$ref`.
    fn endpoint(self) -> &'static str {
        match self {
            RefType::User => "Users",
            RefType::Group | RefType::Direct => "Groups",
        }
    }
}

/// A reference from one resource to another: a group's member, or a user's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub id: String,
    pub kind: RefType,
    pub display: Option<String>,
}

/// The JSON of a list of references (`members` of a group, `groups` of a user), with `$ref`s
/// into the tenant's SCIM root.
pub fn refs_json(base: &str, refs: &[MemberRef]) -> Value {
    Value::Array(
        refs.iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("value".into(), Value::String(r.id.clone()));
                m.insert(
                    "$ref".into(),
                    Value::String(format!("{base}/{}/{}", r.kind.endpoint(), r.id)),
                );
                if let Some(d) = &r.display {
                    m.insert("display".into(), Value::String(d.clone()));
                }
                m.insert("type".into(), Value::String(r.kind.as_str().into()));
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
pub(super) fn set_schemas(rt: &'static ResourceType, out: &mut Map<String, Value>) {
    let mut schemas = vec![Value::String(rt.schema.id.into())];
    for ext in rt.extensions {
        if out.contains_key(ext.id) {
            schemas.push(Value::String(ext.id.into()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
}
