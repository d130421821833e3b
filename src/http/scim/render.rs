//! Stored resources to SCIM responses: JSON with `id`, `schemas`, `meta` and references, the
//! `ETag` and `Location` headers, `304`, and the ListResponse.

use serde_json::Value;

use super::super::app::App;
use super::super::reply::Reply;
use crate::scim::etag::etag;
use crate::scim::list::list_response;
use crate::scim::resource::{self, refs_json, Data, MemberRef, Meta, Selection};
use crate::scim::schema::{ResourceType, GROUP_TYPE, USER_TYPE};
use crate::service::Scope;
use crate::store::d1::D1;
use crate::store::groups::StoredGroup;
use crate::store::users::StoredUser;

/// What a SCIM handler works with: the service scope of the request, and the organisation's
/// SCIM root URL (`https://acme.example.com/api/scim/v2`, or the path form).
pub struct Ctx<'a> {
    pub scope: Scope<'a, D1, App>,
    pub base: String,
}

impl Ctx<'_> {
    pub fn location(&self, rt: &ResourceType, id: &str) -> String {
        format!("{}{}/{id}", self.base, rt.endpoint)
    }
}

/// A stored resource, as rendering sees it.
pub trait Rendered {
    const TYPE: &'static ResourceType;
    fn id(&self) -> &str;
    fn data(&self) -> &Data;
    fn version(&self) -> i64;
    fn times(&self) -> (i64, i64);
    /// Whether the enterprise manager's id names an existing user.
    fn manager_exists(&self) -> bool {
        false
    }
    /// The references attribute and its references, when read.
    fn refs(&self) -> Option<(&'static str, &[MemberRef])>;
}

impl Rendered for StoredUser {
    const TYPE: &'static ResourceType = &USER_TYPE;
    fn id(&self) -> &str {
        &self.id
    }
    fn data(&self) -> &Data {
        &self.data
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn times(&self) -> (i64, i64) {
        (self.created_at, self.updated_at)
    }
    fn manager_exists(&self) -> bool {
        self.manager_exists
    }
    fn refs(&self) -> Option<(&'static str, &[MemberRef])> {
        (!self.groups.is_empty()).then_some(("groups", self.groups.as_slice()))
    }
}

impl Rendered for StoredGroup {
    const TYPE: &'static ResourceType = &GROUP_TYPE;
    fn id(&self) -> &str {
        &self.id
    }
    fn data(&self) -> &Data {
        &self.data
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn times(&self) -> (i64, i64) {
        (self.created_at, self.updated_at)
    }
    fn refs(&self) -> Option<(&'static str, &[MemberRef])> {
        self.members.as_deref().map(|m| ("members", m))
    }
}

/// The resource as SCIM JSON, projected by `attributes` / `excludedAttributes`.
pub fn json<T: Rendered>(ctx: &Ctx, r: &T, sel: &Selection) -> Value {
    let location = ctx.location(T::TYPE, r.id());
    let (created, last_modified) = r.times();
    let mut out = resource::render(
        T::TYPE,
        r.data(),
        &Meta {
            id: r.id(),
            version: r.version(),
            created,
            last_modified,
            location: &location,
            base: &ctx.base,
            manager_exists: r.manager_exists(),
        },
    );
    if let Some((name, refs)) = r.refs() {
        out.insert(name.into(), refs_json(&ctx.base, refs));
    }
    sel.apply(&mut out);
    Value::Object(out)
}

/// One resource, with its version as the `ETag` header (RFC 7644 §3.14).
pub fn reply<T: Rendered>(ctx: &Ctx, status: u16, r: &T, sel: &Selection) -> Reply {
    Reply::json(status, json(ctx, r, sel)).with_header("etag", etag(r.version()))
}

/// A created resource: 201 with its `Location` (RFC 7644 §3.3).
pub fn created<T: Rendered>(ctx: &Ctx, r: &T, sel: &Selection) -> Reply {
    reply(ctx, 201, r, sel).with_header("location", ctx.location(T::TYPE, r.id()))
}

/// `304 Not Modified` (RFC 7644 §3.14).
pub fn not_modified(version: i64) -> Reply {
    Reply {
        status: 304,
        body: None,
        headers: vec![("etag", etag(version))],
    }
}

/// A page of resources as a ListResponse.
pub fn list<T: Rendered>(
    ctx: &Ctx,
    total: u64,
    start_index: u64,
    page: &[T],
    sel: &Selection,
) -> Reply {
    let resources = page.iter().map(|r| json(ctx, r, sel)).collect();
    Reply::json(200, list_response(total, start_index, resources))
}
