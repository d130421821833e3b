//! `/Groups` (RFC 7644 §3.3–3.6, Entra's group dialect): the operation goes to
//! [`crate::service::groups`], the result is rendered with the request's `attributes` /
//! `excludedAttributes`. Members are read only when the response keeps them (Entra sends
//! `excludedAttributes=members` on every group query).
//!
//! A group PATCH answers 204 No Content, as Entra prefers; with `attributes` or
//! `excludedAttributes` in the query it answers 200 with the resource instead.

use super::render::{self, Ctx};
use super::Op;
use crate::http::reply::Reply;
use crate::scim::error::Result;
use crate::scim::resource::Selection;
use crate::scim::schema::GROUP_TYPE;
use crate::service::groups;
use crate::service::resources::Fetched;

pub async fn handle(ctx: &Ctx<'_>, op: Op) -> Result<Reply> {
    let s = &ctx.scope;
    let select = |params| Selection::of(&GROUP_TYPE, params);
    Ok(match op {
        Op::List(params) => {
            let sel = select(&params);
            let (total, page) = groups::list(s, &params, sel.wants("members")).await?;
            render::list(ctx, total, params.start_index, &page, &sel)
        }
        Op::Create(body, params) => {
            render::created(ctx, &groups::create(s, &body).await?, &select(&params))
        }
        Op::Get {
            id,
            params,
            if_none_match,
        } => {
            let sel = select(&params);
            match groups::get(s, &id, sel.wants("members"), if_none_match.as_deref()).await? {
                Fetched::NotModified(version) => render::not_modified(version),
                Fetched::Found(g) => render::reply(ctx, 200, &g, &sel),
            }
        }
        Op::Replace {
            id,
            body,
            params,
            if_match,
        } => {
            let g = groups::replace(s, &id, &body, if_match.as_deref()).await?;
            render::reply(ctx, 200, &g, &select(&params))
        }
        Op::Patch {
            id,
            body,
            params,
            if_match,
        } => {
            groups::patch(s, &id, &body, if_match.as_deref()).await?;
            let sel = select(&params);
            if sel.is_empty() {
                return Ok(Reply::no_content());
            }
            let g = groups::read(s, &id, sel.wants("members")).await?;
            render::reply(ctx, 200, &g, &sel)
        }
        Op::Delete { id, if_match } => {
            groups::delete(s, &id, if_match.as_deref()).await?;
            Reply::no_content()
        }
    })
}
