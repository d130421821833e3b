//! What only `/Users` does (RFC 7644 §3.3–3.6); listing, reading and deleting are the shared
//! ones of [`resources`].
//!
//! D1 round trips: GET by id 1 (the user and its groups in one batch); list 1 (+1 to read
//! groups when a user of the page has any and the response keeps them); POST 1; DELETE 1 (2
//! with a specific `If-Match`); PUT and PATCH 2 (read, then one conditional batch), plus one
//! read and one write per retry when a concurrent write won the race. Without `If-Match`, 1:
//! a PATCH that only sets `active` (Entra's disable, Okta's: [`set_active`]), and one that only
//! sets single-valued leaves stored in `data` (Entra's attribute updates, `displayName`,
//! `name.givenName`, `urn:…:User:department`: [`set_leaves`]).

use serde_json::Value;

use super::resources::{self, changed_attributes, Described, Kind, Outcome, Write};
use super::{Runtime, Scope};
use crate::store::resources::Stored;
use crate::store::table::Table;
use crate::store::trail::{Event, EventType, Trail};
use crate::store::users as store;
use crate::store::{Executor, StoreError, Written};
use scim_core::scim::error::{quote, Error, Result};
use scim_core::scim::patch;
use scim_core::scim::resource::{self, Data};
use scim_core::scim::schema::USER_TYPE;
use scim_core::scim::value::as_bool;

/// Users.
pub struct Users;

impl Kind for Users {
    const TABLE: Table = Table::Users;
    const REFS_ON_WRITE: bool = true;
    /// The user's new data.
    type Change = Data;

    /// `user.deactivated` or `user.reactivated` when `active` flips, `user.updated`
    /// otherwise; each with the names of every attribute that changed.
    fn describe(current: &Stored, new: &Data) -> Described {
        let changed = changed_attributes(&current.data, new);
        let (was, is) = (active(&current.data), active(new));
        let (kind, flipped) = match (was, is) {
            (true, false) => (EventType::UserDeactivated, Some("deactivated")),
            (false, true) => (EventType::UserReactivated, Some("reactivated")),
            _ => (EventType::UserUpdated, None),
        };
        let mut parts: Vec<String> = Vec::new();
        if let Some(flipped) = flipped {
            parts.push(format!("{{}} {flipped}"));
        }
        let role = primary_role(new);
        if role != primary_role(&current.data) {
            let to = role.map_or("none".to_string(), |r| r.chars().take(64).collect());
            parts.push(format!("role changed to {to}"));
        }
        let others: Vec<&str> = changed
            .iter()
            .map(String::as_str)
            .filter(|n| *n != "active" && *n != "roles")
            .collect();
        if !others.is_empty() || parts.is_empty() {
            parts.push(format!("updated: {}", others.join(", ")));
        }
        let mut summary = parts.join("; ");
        if !summary.starts_with("{}") {
            summary = format!("{{}}: {summary}");
        }
        Described {
            events: vec![Event { kind, changed }],
            summary,
        }
    }

    async fn write<E: Executor>(w: Write<'_, E, Data>) -> Result<Written<Option<Stored>>> {
        let (db, t, current) = (w.db, w.tenant_id, w.current);
        let written = store::update(db, t, current, w.change, w.now, w.write_id, w.trail);
        let written = written.await.map_err(|e| user_name_taken(e, w.change))?;
        Ok(written.map(Some))
    }

    async fn create<E: Executor, R: Runtime>(s: &Scope<'_, E, R>, body: &Value) -> Result<Stored> {
        let data = resource::from_request(&USER_TYPE, body)?;
        s.name(Table::Users, &data);
        let id = s.rt.random_uuid()?;
        let write_id = s.rt.random_id("w_")?;
        let entry = s.log_entry("{} created");
        let trail = Trail::single(EventType::UserCreated, entry.as_ref());
        let now = s.rt.now();
        let created = store::insert(s.db, s.tenant_id, &id, &data, now, &write_id, &trail)
            .await
            .map_err(|e| user_name_taken(e, &data))?;
        s.committed();
        Ok(created)
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
        if if_match.is_none() {
            if let Some(to) = patch::only_active(&ops) {
                return set_active(s, id, to).await.map(Some);
            }
            let leaves = patch::leaf_sets(&USER_TYPE, &ops).and_then(|l| store::leaves(&l));
            if let Some(leaves) = leaves {
                return set_leaves(s, id, &leaves).await.map(Some);
            }
        }
        update(s, id, if_match, |current| {
            patch::apply(&USER_TYPE, &current.data, &ops)
        })
        .await
        .map(Some)
    }
}

/// Set user `id`'s `active`, in one D1 call: the write is conditional on the value differing
/// and reads nothing first (it commutes with every other write), records
/// `user.deactivated`/`user.reactivated` and its log entry only if it changed the user, and
/// reads the user back in the same batch (404 when there is none).
async fn set_active<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    to: bool,
) -> Result<Stored> {
    let (kind, summary) = if to {
        (EventType::UserReactivated, "{} reactivated")
    } else {
        (EventType::UserDeactivated, "{} deactivated")
    };
    let write_id = s.rt.random_id("w_")?;
    let entry = s.log_entry(summary);
    let trail = Trail {
        events: vec![Event {
            kind,
            changed: vec!["active".to_string()],
        }],
        log: entry.as_ref(),
    };
    let now = s.rt.now();
    let written = store::set_active(s.db, s.tenant_id, id, to, now, &write_id, &trail).await?;
    answered(s, id, written)
}

/// Set leaves of user `id`'s data, in one D1 call: as [`set_active`], the write is conditional
/// on a value differing and reads nothing first; its `user.updated` event and log entry name
/// the attributes that really changed, worked out by the write itself.
async fn set_leaves<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    leaves: &[store::Leaf],
) -> Result<Stored> {
    let write_id = s.rt.random_id("w_")?;
    let entry = s.log_entry("{}: updated: {changed}");
    let trail = Trail {
        events: vec![Event {
            kind: EventType::UserUpdated,
            changed: vec![],
        }],
        log: entry.as_ref(),
    };
    let now = s.rt.now();
    let written = store::set_leaves(s.db, s.tenant_id, id, leaves, now, &write_id, &trail);
    answered(s, id, written.await?)
}

/// What a write that read nothing first answers: the user it read back (404: none), named in
/// the request's log entry, which its batch carried if it changed the user.
fn answered<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    (changed, user): (bool, Option<Stored>),
) -> Result<Stored> {
    let user = user.ok_or_else(|| resources::not_found::<Users>(id))?;
    s.name(Table::Users, &user.data);
    if changed {
        s.committed();
    } else if let Some(a) = s.log {
        a.summary("{}: no change".into());
    }
    Ok(user)
}

/// Whether the user is active (a user without `active` is, as SCIM clients assume).
fn active(data: &Data) -> bool {
    data.get("active").and_then(as_bool).unwrap_or(true)
}

/// The value of the user's primary role: what an app maps as the user's role.
fn primary_role(data: &Data) -> Option<&str> {
    data.get("roles")?
        .as_array()?
        .iter()
        .find(|r| r.get("primary").and_then(as_bool) == Some(true))?
        .get("value")?
        .as_str()
}

/// Compute the new data from the current user and write it if it differs.
async fn update<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    if_match: Option<&str>,
    compute: impl Fn(&Stored) -> Result<Data>,
) -> Result<Stored> {
    let outcome = resources::write::<Users, _, _>(s, id, if_match, None, |current| {
        s.name(Table::Users, &current.data);
        let data = compute(current)?;
        Ok((data != current.data).then_some(data))
    })
    .await?;
    match outcome {
        Outcome::Unchanged(u) | Outcome::Written(Some(u)) => Ok(u),
        Outcome::Written(None) => resources::read(s, Table::Users, id, true).await,
    }
}

/// A UNIQUE refusal on the userName's key: another user of the tenant has the name, in
/// any case (409 `uniqueness`, RFC 7644 §3.3).
fn user_name_taken(e: StoreError, data: &Data) -> Error {
    if !e.is_unique_on("user_name_key") {
        return e.into();
    }
    let name = data.get("userName").and_then(Value::as_str);
    Error::conflict(format!(
        "userName '{}' is already taken in this organisation",
        quote(name.unwrap_or_default())
    ))
}
