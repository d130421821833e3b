//! The `/Users` operations (RFC 7644 §3.3–3.6).
//!
//! D1 round trips: GET by id 1 (the user and its groups in one batch); list 1 (+1 to read
//! groups when a user of the page has any and the response keeps them); POST 1; DELETE 1 (2
//! with a specific `If-Match`); PUT and PATCH 2 (read, then one conditional batch), plus one
//! read and one write per retry when a concurrent write won the race.

use serde_json::Value;

use super::resources::{self, Fetched, ListRequest, Outcome, Resource};
use super::{Runtime, Scope};
use crate::scim::error::Result;
use crate::scim::patch;
use crate::scim::query::ListParams;
use crate::scim::resource::{self, Data};
use crate::scim::schema::USER_TYPE;
use crate::store::users::{self as store, StoredUser};
use crate::store::{Delete, Executor, Written};

/// Users, for the shared operations of [`resources`].
pub struct Users;

impl Resource for Users {
    type Stored = StoredUser;
    type Change = Data;
    type Written = StoredUser;
    const NAME: &'static str = "User";

    fn version(stored: &StoredUser) -> i64 {
        stored.version
    }

    async fn read<E: Executor>(db: &E, tenant_id: &str, id: &str) -> Result<Option<StoredUser>> {
        store::get(db, tenant_id, id).await
    }

    async fn write<E: Executor>(
        db: &E,
        tenant_id: &str,
        current: &StoredUser,
        data: &Data,
        now: i64,
        write_id: &str,
    ) -> Result<Written<StoredUser>> {
        store::update(db, tenant_id, current, data, now, write_id).await
    }

    async fn delete<E: Executor>(
        db: &E,
        tenant_id: &str,
        id: &str,
        if_version: Option<i64>,
        now: i64,
    ) -> Result<Delete> {
        store::delete(db, tenant_id, id, if_version, now).await
    }
}

/// `GET /Users` and `POST /Users/.search`: the matching total and one page.
pub async fn list<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    params: &ListParams,
    with_groups: bool,
) -> Result<(u64, Vec<StoredUser>)> {
    let request = ListRequest::parse(&USER_TYPE, params)?;
    store::list(s.db, s.tenant_id, &request.query(params), with_groups).await
}

/// `GET /Users/{id}`.
pub async fn get<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    if_none_match: Option<&str>,
) -> Result<Fetched<StoredUser>> {
    let u = store::get(s.db, s.tenant_id, id)
        .await?
        .ok_or_else(|| resources::not_found::<Users>(id))?;
    let version = u.version;
    Ok(resources::fetched(u, version, if_none_match))
}

/// `POST /Users`.
pub async fn create<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    body: &Value,
) -> Result<StoredUser> {
    let data = resource::from_request(&USER_TYPE, body)?;
    let id = s.rt.random_uuid()?;
    let write_id = s.rt.random_id("w_")?;
    store::insert(s.db, s.tenant_id, &id, &data, s.rt.now(), &write_id).await
}

/// `PUT /Users/{id}`: replace everything the client may write (RFC 7644 §3.5.1); `active`,
/// when omitted, keeps its stored value.
pub async fn replace<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<StoredUser> {
    update(s, id, if_match, |current| {
        resource::replacement(&USER_TYPE, body, &current.data)
    })
    .await
}

/// `PATCH /Users/{id}` (RFC 7644 §3.5.2).
pub async fn patch<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<StoredUser> {
    let ops = patch::parse(&USER_TYPE, body)?;
    update(s, id, if_match, |current| {
        patch::apply(&USER_TYPE, &current.data, &ops)
    })
    .await
}

/// Compute the new data from the current user and write it if it differs.
async fn update<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    if_match: Option<&str>,
    compute: impl Fn(&StoredUser) -> Result<Data>,
) -> Result<StoredUser> {
    let outcome = resources::write::<Users, _, _>(s, id, if_match, None, |current| {
        let data = compute(current)?;
        Ok((data != current.data).then_some(data))
    })
    .await?;
    Ok(match outcome {
        Outcome::Unchanged(u) | Outcome::Written(u) => u,
    })
}

/// `DELETE /Users/{id}`: the user leaves every group.
pub async fn delete<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    if_match: Option<&str>,
) -> Result<()> {
    resources::delete::<Users, _, _>(s, id, if_match).await
}
