//! `/Users` and `/Groups` (RFC 7644 §3.3–3.6): one handler for both. The operation goes to the
//! operations service ([`crate::service::operations`], with the [`Kind`] of the endpoint), the
//! result is rendered with the request's `attributes` / `excludedAttributes`. References (a
//! user's `groups`, a group's `members`) are read only when the response keeps them: Entra
//! sends `excludedAttributes=members` on every group query.
//! What each operation tells the log, a group PATCH's 204 and the paging anchors are the
//! service's too.

use super::render::{self, Ctx};
use super::Op;
use crate::http::reply::Reply;
use crate::service::operations;
use crate::service::resources::{Fetched, Table};
use scim_core::scim::error::Result;
use scim_core::scim::resource::Selection;

/// The operation on the endpoint of `table`: one handler, not one per `Kind` (the wasm
/// holds it once).
pub async fn handle(ctx: &Ctx<'_>, table: Table, op: Op) -> Result<Reply> {
    let s = &ctx.scope;
    let select = |params| Selection::of(table.resource_type(), params);
    Ok(match op {
        Op::List(params) => {
            let sel = select(&params);
            let (total, page) = operations::list(s, table, &params, &sel).await?;
            render::list(ctx, table, total, params.start_index, &page, &sel)
        }
        Op::Create(body, params) => {
            let r = operations::create(s, table, &body).await?;
            render::created(ctx, table, &r, &select(&params))
        }
        Op::Get {
            id,
            params,
            if_none_match,
        } => {
            let sel = select(&params);
            let inm = if_none_match.as_deref();
            match operations::get(s, table, &id, &sel, inm).await? {
                Fetched::NotModified(version) => render::not_modified(version),
                Fetched::Found(r) => render::reply(ctx, table, 200, &r, &sel),
            }
        }
        Op::Replace {
            id,
            body,
            params,
            if_match,
        } => {
            let r = operations::replace(s, table, &id, &body, if_match.as_deref()).await?;
            render::reply(ctx, table, 200, &r, &select(&params))
        }
        Op::Patch {
            id,
            body,
            params,
            if_match,
        } => {
            let sel = select(&params);
            match operations::patch(s, table, &id, &body, if_match.as_deref(), &sel).await? {
                Some(r) => render::reply(ctx, table, 200, &r, &sel),
                None => Reply::no_content(),
            }
        }
        Op::Delete { id, if_match } => {
            operations::delete(s, table, &id, if_match.as_deref()).await?;
            Reply::no_content()
        }
    })
}
