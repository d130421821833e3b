//! What only `/Users` does (RFC 7644 §3.3–3.6); listing, reading and deleting are the shared
//! ones of [`resources`].
//!
//! D1 round trips: GET by id 1 (the user and its groups in one batch); list 1 (+1 to read
//! groups when a user of the page has any and the response keeps them); POST 1; DELETE 1 (2
//! with a specific `If-Match`); PUT and PATCH 2 (read, then one conditional batch), plus one
//! read and one write per retry when a concurrent write won the race.

use serde_json::Value;

use super::resources::{self, Kind, Outcome, Write};
use super::{Runtime, Scope};
use crate::scim::error::Result;
use crate::scim::patch;
use crate::scim::resource::{self, Data};
use crate::scim::schema::USER_TYPE;
use crate::store::resources::Stored;
use crate::store::table::Table;
use crate::store::users as store;
use crate::store::{Executor, Written};

/// Users.
pub struct Users;

impl Kind for Users {
    const TABLE: Table = Table::Users;
    const REFS_ON_WRITE: bool = true;
    /// The user's new data.
    type Change = Data;

    async fn write<E: Executor>(w: Write<'_, E, Data>) -> Result<Written<Option<Stored>>> {
        let written = store::update(w.db, w.tenant_id, w.current, w.change, w.now, w.write_id);
        Ok(written.await?.map(Some))
    }

    async fn create<E: Executor, R: Runtime>(s: &Scope<'_, E, R>, body: &Value) -> Result<Stored> {
        let data = resource::from_request(&USER_TYPE, body)?;
        let id = s.rt.random_uuid()?;
        let write_id = s.rt.random_id("w_")?;
        store::insert(s.db, s.tenant_id, &id, &data, s.rt.now(), &write_id).await
    }

    /// Replace everything the client may write; `active`, when omitted, keeps its stored value.
    async fn replace<E: Executor, R: Runtime>(
        s: &Scope<'_, E, R>,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Stored> {
        update(s, id, if_match, |current| {
            resource::replacement(&USER_TYPE, body, &current.data)
        })
        .await
    }

    async fn patch<E: Executor, R: Runtime>(
        s: &Scope<'_, E, R>,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Option<Stored>> {
        let ops = patch::parse(&USER_TYPE, body)?;
        update(s, id, if_match, |current| {
            patch::apply(&USER_TYPE, &current.data, &ops)
        })
        .await
        .map(Some)
    }
}

/// Compute the new data from the current user and write it if it differs.
async fn update<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    if_match: Option<&str>,
    compute: impl Fn(&Stored) -> Result<Data>,
) -> Result<Stored> {
    let outcome = resources::write::<Users, _, _>(s, id, if_match, None, |current| {
        let data = compute(current)?;
        Ok((data != current.data).then_some(data))
    })
    .await?;
    match outcome {
        Outcome::Unchanged(u) | Outcome::Written(Some(u)) => Ok(u),
        Outcome::Written(None) => resources::read::<Users, _, _>(s, id, true).await,
    }
}
