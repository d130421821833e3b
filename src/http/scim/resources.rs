//! `/Users` and `/Groups` (RFC 7644 §3.3–3.6): one handler for both. The operation goes to the
//! resource service ([`crate::service::resources`], with the [`Kind`] of the endpoint), the
//! result is rendered with the request's `attributes` / `excludedAttributes`. References (a
//! user's `groups`, a group's `members`) are read only when the response keeps them: Entra
//! sends `excludedAttributes=members` on every group query.
//!
//! A group PATCH answers 204 No Content, as Entra prefers; with `attributes` or
//! `excludedAttributes` in the query it answers 200 with the resource instead.

use super::render::{self, Ctx};
use super::Op;
use crate::http::reply::Reply;
use crate::scim::error::Result;
use crate::scim::resource::Selection;
use crate::service::resources::{self, Fetched, Kind};
use crate::store::table::Table;

pub async fn handle<K: Kind>(ctx: &Ctx<'_>, op: Op) -> Result<Reply> {
    let s = &ctx.scope;
    let select = |params| Selection::of(K::TABLE.resource_type(), params);
    let refs = K::TABLE.refs().attribute();
    // A write's log entry rides in its batch, before the reply exists: it records the status
    // the reply will have.
    let expect = |status| {
        if let Some(a) = s.audit {
            a.expect_status(status);
        }
    };
    Ok(match op {
        Op::List(params) => {
            let sel = select(&params);
            let (total, page) = resources::list::<K, _, _>(s, &params, sel.wants(refs)).await?;
            if let Some(a) = s.audit {
                a.summary(format!("{} of {total} found", page.len()));
            }
            render::list::<K>(ctx, total, params.start_index, &page, &sel)
        }
        Op::Create(body, params) => {
            expect(201);
            render::created::<K>(ctx, &K::create(s, &body).await?, &select(&params))
        }
        Op::Get {
            id,
            params,
            if_none_match,
        } => {
            let sel = select(&params);
            let inm = if_none_match.as_deref();
            let got = resources::get::<K, _, _>(s, &id, sel.wants(refs), inm).await?;
            if let (Some(a), Fetched::Found(r)) = (s.audit, &got) {
                s.name(K::TABLE, &r.data);
                a.summary("{} read".into());
            }
            match got {
                Fetched::NotModified(version) => render::not_modified(version),
                Fetched::Found(r) => render::reply::<K>(ctx, 200, &r, &sel),
            }
        }
        Op::Replace {
            id,
            body,
            params,
            if_match,
        } => {
            expect(200);
            let r = K::replace(s, &id, &body, if_match.as_deref()).await?;
            render::reply::<K>(ctx, 200, &r, &select(&params))
        }
        Op::Patch {
            id,
            body,
            params,
            if_match,
        } => {
            let sel = select(&params);
            expect(if K::TABLE == Table::Groups && sel.is_empty() {
                204
            } else {
                200
            });
            match K::patch(s, &id, &body, if_match.as_deref()).await? {
                Some(r) => render::reply::<K>(ctx, 200, &r, &sel),
                None if sel.is_empty() => Reply::no_content(),
                None => {
                    let r = resources::read::<K, _, _>(s, &id, sel.wants(refs)).await?;
                    render::reply::<K>(ctx, 200, &r, &sel)
                }
            }
        }
        Op::Delete { id, if_match } => {
            expect(204);
            resources::delete::<K, _, _>(s, &id, if_match.as_deref()).await?;
            Reply::no_content()
        }
    })
}
