//! Stored resources to SCIM responses: JSON with `id`, `schemas`, `meta` and references, the
//! `ETag` and `Location` headers, `304`, and the ListResponse.

use serde_json::Value;

use super::super::app::Platform;
use super::super::reply::Reply;
use crate::http::d1::D1;
use crate::service::auth::Gated;
use crate::service::resources::Refs;
use crate::service::resources::Stored;
use crate::service::resources::Table;
use crate::service::Scope;
use scim_core::scim::etag::etag;
use scim_core::scim::list::list_response;
use scim_core::scim::resource::{self, refs_json, Meta, Selection};

/// What a SCIM handler works with: the service scope of the request, and the tenant's
/// SCIM root URL (`https://acme.example.com/api/scim/v2`, or the path form).
pub struct Ctx<'a> {
    pub scope: Scope<'a, Gated<'a, D1>, Platform>,
    pub base: String,
}

impl Ctx<'_> {
    pub fn location(&self, table: Table, id: &str) -> String {
        format!("{}{}/{id}", self.base, table.resource_type().endpoint)
    }
}

/// The resource as SCIM JSON, projected by `attributes` / `excludedAttributes`.
pub fn json(ctx: &Ctx, table: Table, r: &Stored, sel: &Selection) -> Value {
    let location = ctx.location(table, &r.id);
    let mut out = resource::render(
        table.resource_type(),
        &r.data,
        &Meta {
            id: &r.id,
            version: r.version,
            created: r.created_at,
            last_modified: r.updated_at,
            location: &location,
            base: &ctx.base,
            manager_exists: r.manager_exists,
        },
    );
    let refs = table.refs();
    match r.refs.as_deref() {
        // A user in no group has no `groups`; a group with no members has `members: []`.
        Some([]) if refs == Refs::Groups => {}
        Some(list) => {
            out.insert(refs.attribute().into(), refs_json(&ctx.base, list));
        }
        None => {}
    }
    sel.apply(&mut out);
    Value::Object(out)
}

/// One resource, with its version as the `ETag` header (RFC 7644 §3.14).
pub fn reply(ctx: &Ctx, table: Table, status: u16, r: &Stored, sel: &Selection) -> Reply {
    Reply::json(status, json(ctx, table, r, sel)).with_header("etag", etag(r.version))
}

/// A created resource: 201 with its `Location` (RFC 7644 §3.3).
pub fn created(ctx: &Ctx, table: Table, r: &Stored, sel: &Selection) -> Reply {
    reply(ctx, table, 201, r, sel).with_header("location", ctx.location(table, &r.id))
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
pub fn list(
    ctx: &Ctx,
    table: Table,
    total: u64,
    start_index: u64,
    page: &[Stored],
    sel: &Selection,
) -> Reply {
    let resources = page.iter().map(|r| json(ctx, table, r, sel)).collect();
    Reply::json(200, list_response(total, start_index, resources))
}
