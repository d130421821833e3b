//! `/Users` (RFC 7644 §3.3–3.6): the operation goes to [`crate::service::users`], the result is
//! rendered with the request's `attributes` / `excludedAttributes`.

use super::render::{self, Ctx};
use super::Op;
use crate::http::reply::Reply;
use crate::scim::error::Result;
use crate::scim::resource::Selection;
use crate::scim::schema::USER_TYPE;
use crate::service::resources::Fetched;
use crate::service::users;

pub async fn handle(ctx: &Ctx<'_>, op: Op) -> Result<Reply> {
    let s = &ctx.scope;
    let select = |params| Selection::of(&USER_TYPE, params);
    Ok(match op {
        Op::List(params) => {
            let sel = select(&params);
            let (total, page) = users::list(s, &params, sel.wants("groups")).await?;
            render::list(ctx, total, params.start_index, &page, &sel)
        }
        Op::Create(body, params) => {
            render::created(ctx, &users::create(s, &body).await?, &select(&params))
        }
        Op::Get {
            id,
            params,
            if_none_match,
        } => match users::get(s, &id, if_none_match.as_deref()).await? {
            Fetched::NotModified(version) => render::not_modified(version),
            Fetched::Found(u) => render::reply(ctx, 200, &u, &select(&params)),
        },
        Op::Replace {
            id,
            body,
            params,
            if_match,
        } => {
            let u = users::replace(s, &id, &body, if_match.as_deref()).await?;
            render::reply(ctx, 200, &u, &select(&params))
        }
        Op::Patch {
            id,
            body,
            params,
            if_match,
        } => {
            let u = users::patch(s, &id, &body, if_match.as_deref()).await?;
            render::reply(ctx, 200, &u, &select(&params))
        }
        Op::Delete { id, if_match } => {
            users::delete(s, &id, if_match.as_deref()).await?;
            Reply::no_content()
        }
    })
}
