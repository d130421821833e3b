//! `/Groups` handlers (RFC 7644 §3.3–3.6, entra-dialect.md §1.6).
//!
//! Member changes are rows (see [`crate::store::groups`]): a member PATCH never reads the member
//! list and never retries. A PATCH that also changes attributes (`displayName`) writes them
//! conditionally on the version read and retries on a lost race, like a user PATCH.
//!
//! Group PATCH answers 204 No Content, as Entra prefers; with `attributes` or
//! `excludedAttributes` in the query it answers 200 with the resource instead.
//!
//! D1 round trips: GET by id 1; list/filter 1 (+1 to read members when the page has any and
//! the response keeps them); POST 1 (+1 to resolve members, +1 to read back members when any
//! were given); PATCH 2 (the group and every added member in one read, then one write; +1 to
//! read back when a body is asked for); PUT 3 (read and resolve, write, read back); DELETE 1.
//! Reading a group's members takes one more round trip per 5,000 members past the first page.

use serde_json::Value;

use super::resources::{
    backoff, check_if_match, contention, new_id, new_uuid, not_modified, precondition_failed, Ctx,
    ListRequest, Selection, MAX_ATTEMPTS,
};
use super::Reply;
use crate::scim::error::{quote, Error, Result};
use crate::scim::list::list_response;
use crate::scim::patch::{self, members, MemberOp, NewMember};
use crate::scim::query::ListParams;
use crate::scim::resource::{self, etag, refs_json, Data, Meta};
use crate::scim::schema::GROUP_TYPE;
use crate::store::groups::{self as store, MemberChange, StoredGroup, Write};

fn render(ctx: &Ctx, g: &StoredGroup, sel: &Selection) -> Value {
    let location = ctx.location(&GROUP_TYPE, &g.id);
    let mut r = resource::render(
        &GROUP_TYPE,
        &g.data,
        &Meta {
            id: &g.id,
            version: g.version,
            created: g.created_at,
            last_modified: g.updated_at,
            location: &location,
            base: ctx.base,
            manager_exists: false,
        },
    );
    if let Some(members) = &g.members {
        r.insert("members".into(), refs_json(ctx.base, members));
    }
    sel.apply(&mut r);
    Value::Object(r)
}

fn reply(ctx: &Ctx, status: u16, g: &StoredGroup, sel: &Selection) -> Reply {
    Reply::json(status, render(ctx, g, sel)).with_header("etag", etag(g.version))
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("Group '{}' not found", quote(id)))
}

/// `GET /Groups` and `POST /Groups/.search`. Members are read only if the response keeps them.
pub async fn list(ctx: &Ctx<'_>, params: &ListParams) -> Result<Reply> {
    let (total, resources) = query(ctx, params).await?;
    Ok(Reply::json(
        200,
        list_response(total, params.start_index, resources),
    ))
}

/// The matching total and one page of rendered resources (also used by the root `/.search`).
pub async fn query(ctx: &Ctx<'_>, params: &ListParams) -> Result<(u64, Vec<Value>)> {
    let request = ListRequest::parse(&GROUP_TYPE, params)?;
    let q = request.query(params);
    let sel = Selection::of(&GROUP_TYPE, params);
    let (total, groups) = store::list(&ctx.app.db, ctx.tenant_id, &q, sel.wants("members")).await?;
    let resources = groups.iter().map(|g| render(ctx, g, &sel)).collect();
    Ok((total, resources))
}

async fn read(ctx: &Ctx<'_>, id: &str, with_members: bool) -> Result<StoredGroup> {
    store::get(&ctx.app.db, ctx.tenant_id, id, with_members)
        .await?
        .ok_or_else(|| not_found(id))
}

/// `GET /Groups/{id}`.
pub async fn get(
    ctx: &Ctx<'_>,
    id: &str,
    params: &ListParams,
    if_none_match: Option<&str>,
) -> Result<Reply> {
    let sel = Selection::of(&GROUP_TYPE, params);
    let g = read(ctx, id, sel.wants("members")).await?;
    if let Some(reply) = not_modified(if_none_match, g.version) {
        return Ok(reply);
    }
    Ok(reply(ctx, 200, &g, &sel))
}

/// Split a create/replace body into the group's attributes and its members.
fn split_body(body: &Value) -> Result<(Data, Vec<NewMember>)> {
    let mut data = resource::from_request(&GROUP_TYPE, body)?;
    data.remove("members");
    let listed = match body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("members")))
    {
        Some((_, v)) => members(v)?,
        None => vec![],
    };
    Ok((data, listed))
}

/// `POST /Groups`: 201 with `Location`; `members: []` when none were given.
pub async fn create(ctx: &Ctx<'_>, body: &Value, params: &ListParams) -> Result<Reply> {
    let (data, listed) = split_body(body)?;
    let id = new_uuid()?;
    let members = store::resolve(&ctx.app.db, ctx.tenant_id, &id, &listed).await?;
    let had_members = !members.is_empty();
    store::insert(
        &ctx.app.db,
        ctx.tenant_id,
        &id,
        &data,
        members,
        ctx.app.now,
        &new_id("w_")?,
    )
    .await?;
    let sel = Selection::of(&GROUP_TYPE, params);
    let g = if had_members {
        read(ctx, &id, true).await?
    } else {
        StoredGroup {
            id: id.clone(),
            data,
            version: 1,
            created_at: ctx.app.now,
            updated_at: ctx.app.now,
            members: Some(vec![]),
        }
    };
    Ok(reply(ctx, 201, &g, &sel).with_header("location", ctx.location(&GROUP_TYPE, &id)))
}

/// `PUT /Groups/{id}`: replace the attributes and the member set.
pub async fn replace(
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
    params: &ListParams,
    if_match: Option<&str>,
) -> Result<Reply> {
    let (data, listed) = split_body(body)?;
    let (current, changes) = prepare(ctx, id, vec![MemberOp::Replace(listed)]).await?;
    write(
        ctx,
        id,
        if_match,
        |_| Ok(Some(data.clone())),
        &changes,
        current,
    )
    .await?;
    Ok(reply(
        ctx,
        200,
        &read(ctx, id, true).await?,
        &Selection::of(&GROUP_TYPE, params),
    ))
}

/// `PATCH /Groups/{id}`: 204, or 200 with the resource when `attributes` /
/// `excludedAttributes` ask for one.
pub async fn patch(
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
    params: &ListParams,
    if_match: Option<&str>,
) -> Result<Reply> {
    let ops = patch::parse(&GROUP_TYPE, body)?;
    let (attr_ops, member_ops) = patch::take_members(ops, "members")?;
    let (current, changes) = prepare(ctx, id, member_ops).await?;
    let compute = |current: &StoredGroup| -> Result<Option<Data>> {
        if attr_ops.is_empty() {
            return Ok(None);
        }
        let data = patch::apply(&GROUP_TYPE, &current.data, &attr_ops)?;
        Ok((data != current.data).then_some(data))
    };
    write(ctx, id, if_match, compute, &changes, current).await?;
    let sel = Selection::of(&GROUP_TYPE, params);
    if sel.is_empty() {
        return Ok(Reply::no_content());
    }
    Ok(reply(
        ctx,
        200,
        &read(ctx, id, sel.wants("members")).await?,
        &sel,
    ))
}

/// The group as it is now and its member changes with every added member resolved: one round
/// trip; 404 before any member is judged.
async fn prepare(
    ctx: &Ctx<'_>,
    id: &str,
    ops: Vec<MemberOp>,
) -> Result<(StoredGroup, Vec<MemberChange>)> {
    store::prepare(&ctx.app.db, ctx.tenant_id, id, ops)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Write attribute changes (conditionally, retried on a lost race) and member changes (which
/// commute) in one batch per attempt. The first attempt starts from `first`, the group as
/// [`prepare`] read it; a retry reads it again.
async fn write(
    ctx: &Ctx<'_>,
    id: &str,
    if_match: Option<&str>,
    compute: impl Fn(&StoredGroup) -> Result<Option<Data>>,
    changes: &[MemberChange],
    first: StoredGroup,
) -> Result<()> {
    let mut first = Some(first);
    for attempt in 0..MAX_ATTEMPTS {
        let current = match first.take() {
            Some(g) => g,
            None => read(ctx, id, false).await?,
        };
        check_if_match(if_match, current.version)?;
        let data = compute(&current)?;
        if data.is_none() && changes.is_empty() {
            return Ok(());
        }
        // With If-Match, even member-only changes must apply to the version the client saw.
        let conditional = data
            .clone()
            .or_else(|| if_match.map(|_| current.data.clone()));
        match store::write(
            &ctx.app.db,
            ctx.tenant_id,
            id,
            current.version,
            conditional.as_ref(),
            changes,
            ctx.app.now,
            &new_id("w_")?,
        )
        .await?
        {
            Write::Done => return Ok(()),
            Write::Stale if if_match.is_some() => return Err(precondition_failed()),
            Write::Stale if conditional.is_none() => return Err(not_found(id)),
            Write::Stale => backoff(attempt).await,
        }
    }
    Err(contention("group"))
}

/// `DELETE /Groups/{id}`: 204, then 404; the group leaves the groups it was in.
pub async fn delete(ctx: &Ctx<'_>, id: &str, if_match: Option<&str>) -> Result<Reply> {
    let version = match if_match {
        None => None,
        Some(h) if h.trim() == "*" => None,
        Some(_) => {
            let g = read(ctx, id, false).await?;
            check_if_match(if_match, g.version)?;
            Some(g.version)
        }
    };
    if store::delete(&ctx.app.db, ctx.tenant_id, id, version, ctx.app.now).await? {
        return Ok(Reply::no_content());
    }
    if version.is_some()
        && store::get(&ctx.app.db, ctx.tenant_id, id, false)
            .await?
            .is_some()
    {
        return Err(precondition_failed());
    }
    Err(not_found(id))
}
