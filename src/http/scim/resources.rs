//! `/Users` and `/Groups` (RFC 7644 §3.3–3.6): one handler for both. The operation goes to the
//! resource service ([`crate::service::resources`], with the [`Kind`] of the endpoint), the
//! result is rendered with the request's `attributes` / `excludedAttributes`. References (a
//! user's `groups`, a group's `members`) are read only when the response keeps them: Entra
//! sends `excludedAttributes=members` on every group query.
//!
//! A group PATCH answers 204 No Content, as Entra prefers; with `attributes` or
//! `excludedAttributes` in the query it answers 200 with the resource instead.
//!
//! Sequential paging (Okta's import walks `startIndex=1, 101, 201, …`): this isolate remembers
//! where each page of a list ended, so that the next page seeks past that resource instead of
//! stepping over every row before it. A page asked on another isolate, or after
//! [`ANCHOR_TTL_MS`], steps over them as RFC 7644 §3.4.2.4 describes; the two agree unless
//! resources before the page were deleted in between, when the seek loses none of the rest.

use std::cell::RefCell;
use std::collections::HashMap;

use super::render::{self, Ctx};
use super::Op;
use crate::http::isolate::remember;
use crate::http::reply::Reply;
use crate::service::resources::Table;
use crate::service::resources::{self, Anchor, Fetched, Kind};
use crate::service::Runtime;
use scim_core::scim::error::Result;
use scim_core::scim::query::ListParams;
use scim_core::scim::resource::Selection;

/// How long a page's end is remembered for the next page.
pub const ANCHOR_TTL_MS: i64 = 300_000;
/// Bound on the remembered page ends.
const MAX_ANCHORS: usize = 1_000;

thread_local! {
    /// (organisation, endpoint, filter, startIndex of the next page) -> where the page before
    /// it ended, and when.
    static ANCHORS: RefCell<HashMap<String, (Anchor, i64)>> = RefCell::new(HashMap::new());
}

/// The key of a page in [`ANCHORS`]; `None` under `sortBy` (the seek is in the default order).
fn anchor_key(tenant_id: &str, table: Table, params: &ListParams, start: u64) -> Option<String> {
    if params.sort_by.is_some() {
        return None;
    }
    let filter = params.filter.as_deref().unwrap_or_default();
    Some(format!(
        "{tenant_id}\u{0}{}\u{0}{filter}\u{0}{start}",
        table.name()
    ))
}

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
            let now = s.rt.now();
            let key = |start| anchor_key(s.tenant_id, K::TABLE, &params, start);
            let after = key(params.start_index).and_then(|k| {
                ANCHORS.with(|m| {
                    m.borrow()
                        .get(&k)
                        .filter(|(_, at)| now.saturating_sub(*at) < ANCHOR_TTL_MS)
                        .map(|(a, _)| a.clone())
                })
            });
            let (total, page) =
                resources::list::<K, _, _>(s, &params, sel.wants(refs), after.as_ref()).await?;
            let next = params.start_index.saturating_add(page.len() as u64);
            if let (Some(k), Some(end)) = (key(next), Anchor::after(&page)) {
                ANCHORS.with(|m| remember(&mut m.borrow_mut(), MAX_ANCHORS, k, (end, now)));
            }
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
