//! `/Users` handlers (RFC 7644 §3.3–3.6): parse the request, run the pure core, call the store,
//! shape the reply. No SQL and no JSON-path logic here.
//!
//! D1 round trips per operation: GET by id 1 (the user and its groups in one batch);
//! list/filter 1 (count and page in one batch; +1 to read groups when a user of the page has
//! any and the response keeps them); POST 1 (one batch); DELETE 1 (one batch; 2 with a specific `If-Match`); PUT and PATCH 2
//! (read, then one conditional batch), plus one read and one write per retry when a concurrent
//! write won the race.

use serde_json::Value;

use super::resources::{
    backoff, check_if_match, contention, new_id, new_uuid, not_modified, precondition_failed, Ctx,
    ListRequest, Selection, MAX_ATTEMPTS,
};
use super::Reply;
use crate::scim::error::{quote, Error, Result};
use crate::scim::list::list_response;
use crate::scim::patch;
use crate::scim::query::ListParams;
use crate::scim::resource::{self, etag, refs_json, Meta};
use crate::scim::schema::USER_TYPE;
use crate::store::users::{self as store, Delete, StoredUser, Update};

fn render(ctx: &Ctx, u: &StoredUser, sel: &Selection) -> Value {
    let location = ctx.location(&USER_TYPE, &u.id);
    let mut r = resource::render(
        &USER_TYPE,
        &u.data,
        &Meta {
            id: &u.id,
            version: u.version,
            created: u.created_at,
            last_modified: u.updated_at,
            location: &location,
            base: ctx.base,
            manager_exists: u.manager_exists,
        },
    );
    if !u.groups.is_empty() {
        r.insert("groups".into(), refs_json(ctx.base, &u.groups));
    }
    sel.apply(&mut r);
    Value::Object(r)
}

fn reply(ctx: &Ctx, status: u16, u: &StoredUser, sel: &Selection) -> Reply {
    Reply::json(status, render(ctx, u, sel)).with_header("etag", etag(u.version))
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("User '{}' not found", quote(id)))
}

/// `GET /Users` and `POST /Users/.search`.
pub async fn list(ctx: &Ctx<'_>, params: &ListParams) -> Result<Reply> {
    let (total, resources) = query(ctx, params).await?;
    Ok(Reply::json(
        200,
        list_response(total, params.start_index, resources),
    ))
}

/// The matching total and one page of rendered resources (also used by the root `/.search`).
pub async fn query(ctx: &Ctx<'_>, params: &ListParams) -> Result<(u64, Vec<Value>)> {
    let request = ListRequest::parse(&USER_TYPE, params)?;
    let q = request.query(params);
    let sel = Selection::of(&USER_TYPE, params);
    let (total, users) = store::list(&ctx.app.db, ctx.tenant_id, &q, sel.wants("groups")).await?;
    let resources = users.iter().map(|u| render(ctx, u, &sel)).collect();
    Ok((total, resources))
}

/// `GET /Users/{id}`; `If-None-Match` with the current version is 304 (RFC 7644 §3.14).
pub async fn get(
    ctx: &Ctx<'_>,
    id: &str,
    params: &ListParams,
    if_none_match: Option<&str>,
) -> Result<Reply> {
    let u = store::get(&ctx.app.db, ctx.tenant_id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if let Some(reply) = not_modified(if_none_match, u.version) {
        return Ok(reply);
    }
    Ok(reply(ctx, 200, &u, &Selection::of(&USER_TYPE, params)))
}

/// `POST /Users`: 201 with the resource and `Location` (RFC 7644 §3.3).
pub async fn create(ctx: &Ctx<'_>, body: &Value, params: &ListParams) -> Result<Reply> {
    let data = resource::from_request(&USER_TYPE, body)?;
    let id = new_uuid()?;
    let u = store::insert(
        &ctx.app.db,
        ctx.tenant_id,
        &id,
        &data,
        ctx.app.now,
        &new_id("w_")?,
    )
    .await?;
    Ok(reply(ctx, 201, &u, &Selection::of(&USER_TYPE, params))
        .with_header("location", ctx.location(&USER_TYPE, &id)))
}

/// `PUT /Users/{id}`: replace everything the client may write (RFC 7644 §3.5.1); `active`,
/// when omitted, keeps its stored value.
pub async fn replace(
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
    params: &ListParams,
    if_match: Option<&str>,
) -> Result<Reply> {
    write(
        ctx,
        id,
        if_match,
        |current| resource::replacement(&USER_TYPE, body, &current.data),
        params,
    )
    .await
}

/// `PATCH /Users/{id}` (RFC 7644 §3.5.2): 200 with the resource.
pub async fn patch(
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
    params: &ListParams,
    if_match: Option<&str>,
) -> Result<Reply> {
    let ops = patch::parse(&USER_TYPE, body)?;
    write(
        ctx,
        id,
        if_match,
        |current| patch::apply(&USER_TYPE, &current.data, &ops),
        params,
    )
    .await
}

/// Read, compute the new data from the current state, and write it only if nothing changed in
/// between; otherwise read again and recompute, so concurrent writers never lose each other's
/// changes. With `If-Match`, a changed version is 412 instead.
async fn write(
    ctx: &Ctx<'_>,
    id: &str,
    if_match: Option<&str>,
    compute: impl Fn(&StoredUser) -> Result<resource::Data>,
    params: &ListParams,
) -> Result<Reply> {
    let sel = Selection::of(&USER_TYPE, params);
    for attempt in 0..MAX_ATTEMPTS {
        let current = store::get(&ctx.app.db, ctx.tenant_id, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        check_if_match(if_match, current.version)?;
        let data = compute(&current)?;
        if data == current.data {
            return Ok(reply(ctx, 200, &current, &sel));
        }
        match store::update(
            &ctx.app.db,
            ctx.tenant_id,
            &current,
            &data,
            ctx.app.now,
            &new_id("w_")?,
        )
        .await?
        {
            Update::Done(u) => return Ok(reply(ctx, 200, &u, &sel)),
            Update::Stale if if_match.is_some() => return Err(precondition_failed()),
            Update::Stale => backoff(attempt).await,
        }
    }
    Err(contention("user"))
}

/// `DELETE /Users/{id}`: 204, then 404 (RFC 7644 §3.6). The user leaves every group.
pub async fn delete(ctx: &Ctx<'_>, id: &str, if_match: Option<&str>) -> Result<Reply> {
    let version = match if_match {
        None => None,
        Some(h) if h.trim() == "*" => None,
        Some(_) => {
            // Only a specific version can be compared in SQL; read it to test the header.
            let u = store::get(&ctx.app.db, ctx.tenant_id, id)
                .await?
                .ok_or_else(|| not_found(id))?;
            check_if_match(if_match, u.version)?;
            Some(u.version)
        }
    };
    match store::delete(&ctx.app.db, ctx.tenant_id, id, version, ctx.app.now).await? {
        Delete::Deleted => Ok(Reply::no_content()),
        Delete::NotFound => Err(not_found(id)),
        Delete::Stale => Err(precondition_failed()),
    }
}
