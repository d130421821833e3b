//! The `/Users` and `/Groups` operations as the SCIM edge calls them (RFC 7644 §3.3–3.6): one
//! function each, which runs the operation and tells the request's provisioning-log entry what
//! it did and what the reply will be, so that the edge only parses and renders.
//!
//! A write's log entry rides in its batch, before the reply exists: each write records the
//! status its reply will have before it runs.
//!
//! Sequential paging (Okta's import walks `startIndex=1, 101, 201, …`): this isolate remembers
//! where each page of a list ended, so that the next page seeks past that resource instead of
//! stepping over every row before it. A page asked on another isolate, or after
//! [`ANCHOR_TTL_MS`], steps over them as RFC 7644 §3.4.2.4 describes; the two agree unless
//! resources before the page were deleted in between, when the seek loses none of the rest.

use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

use super::groups::Groups;
use super::isolate::remember;
use super::resources::{self, Anchor, Fetched, Kind, Stored, Table};
use super::users::Users;
use super::{Executor, Runtime, Scope};
use scim_core::scim::error::Result;
use scim_core::scim::query::ListParams;
use scim_core::scim::resource::Selection;

/// How long a page's end is remembered for the next page.
pub const ANCHOR_TTL_MS: i64 = 300_000;
/// Bound on the remembered page ends.
const MAX_ANCHORS: usize = 1_000;

thread_local! {
    /// (tenant, endpoint, filter, startIndex of the next page) -> where the page before
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

/// Whether the reply shows references (a user's `groups`, a group's `members`): they are read
/// only then, since Entra sends `excludedAttributes=members` on every group query.
fn with_refs(table: Table, sel: &Selection) -> bool {
    sel.wants(table.refs().attribute())
}

fn expect<E, R>(s: &Scope<'_, E, R>, status: u16) {
    if let Some(a) = s.log {
        a.expect_status(status);
    }
}

/// A page of a list and the total that match, seeking past the page before it when this
/// isolate remembers where that one ended.
///
/// Each operation takes the endpoint's table, not its [`Kind`]: what does not differ between
/// users and groups is compiled once, and the edge's handler with it.
pub async fn list<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    params: &ListParams,
    sel: &Selection,
) -> Result<(u64, Vec<Stored>)> {
    let now = s.rt.now();
    let key = |start| anchor_key(s.tenant_id, table, params, start);
    let after = key(params.start_index).and_then(|k| {
        ANCHORS.with(|m| {
            m.borrow()
                .get(&k)
                .filter(|(_, at)| now.saturating_sub(*at) < ANCHOR_TTL_MS)
                .map(|(a, _)| a.clone())
        })
    });
    let (total, page) =
        resources::list(s, table, params, with_refs(table, sel), after.as_ref()).await?;
    let next = params.start_index.saturating_add(page.len() as u64);
    if let (Some(k), Some(end)) = (key(next), Anchor::after(&page)) {
        ANCHORS.with(|m| remember(&mut m.borrow_mut(), MAX_ANCHORS, k, (end, now)));
    }
    if let Some(a) = s.log {
        a.summary(format!("{} of {total} found", page.len()));
    }
    Ok((total, page))
}

/// `GET /…/{id}` under `If-None-Match`, named in the log when found.
pub async fn get<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    id: &str,
    sel: &Selection,
    if_none_match: Option<&str>,
) -> Result<Fetched<Stored>> {
    let got = resources::get(s, table, id, with_refs(table, sel), if_none_match).await?;
    if let (Some(a), Fetched::Found(r)) = (s.log, &got) {
        s.name(table, &r.data);
        a.summary("{} read".into());
    }
    Ok(got)
}

/// `POST /…`: 201 with the created resource.
pub async fn create<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    body: &Value,
) -> Result<Stored> {
    expect(s, 201);
    match table {
        Table::Users => Users::create(s, body).await,
        Table::Groups => Groups::create(s, body).await,
    }
}

/// `PUT /…/{id}`: 200 with the resource as replaced.
pub async fn replace<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<Stored> {
    expect(s, 200);
    match table {
        Table::Users => Users::replace(s, id, body, if_match).await,
        Table::Groups => Groups::replace(s, id, body, if_match).await,
    }
}

/// `PATCH /…/{id}`: the resource to answer 200 with, or `None` for 204 No Content. A group
/// PATCH answers 204, as Entra prefers, unless the query asks for attributes
/// (`attributes` / `excludedAttributes`): then 200 with the resource, read again if the write
/// did not return it.
pub async fn patch<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    sel: &Selection,
) -> Result<Option<Stored>> {
    let no_content = table == Table::Groups && sel.is_empty();
    expect(s, if no_content { 204 } else { 200 });
    let patched = match table {
        Table::Users => Users::patch(s, id, body, if_match).await?,
        Table::Groups => Groups::patch(s, id, body, if_match).await?,
    };
    match patched {
        Some(r) => Ok(Some(r)),
        None if sel.is_empty() => Ok(None),
        None => Ok(Some(
            resources::read(s, table, id, with_refs(table, sel)).await?,
        )),
    }
}

/// `DELETE /…/{id}`: 204.
pub async fn delete<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    id: &str,
    if_match: Option<&str>,
) -> Result<()> {
    expect(s, 204);
    resources::delete(s, table, id, if_match).await
}
