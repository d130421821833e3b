//! What only `/Groups` does (RFC 7644 §3.3–3.6, Entra's group dialect), and member
//! resolution; listing, reading and deleting are the shared ones of [`resources`].
//!
//! Members are rows (see [`crate::store::memberships`]): a member change never reads the member
//! list and never needs to retry, since member changes commute. A change that also rewrites the
//! group's attributes (`displayName`), or that comes with `If-Match`, is written on the
//! condition of the version read, like a user's.
//!
//! Every member a request adds (over all its operations) is resolved in the same batch that
//! reads the group: a PATCH is one read and one write, and a PATCH or PUT of a group that does
//! not exist is 404 before any member is judged. A member id that is not a user or group of
//! the tenant is skipped with a warning in the request's log entry, and the rest is
//! applied: identity providers treat a 400 as permanent (Okta does not retry), so one stale or
//! not-yet-provisioned user would otherwise drop a whole batch of membership changes. The
//! group itself as its member, or a member without `value`, is still 400.
//!
//! D1 round trips: GET by id 1; list 1 (+1 to read members when the page has any and the
//! response keeps them); POST 1 (+1 to resolve members, +1 to read back members when any were
//! given); PATCH 2, but 1 for one that only adds members or only removes them by id and has
//! no `If-Match` ([`members_only`]: Entra's and Okta's pushes; 2 when it skips an unknown
//! member, whose warning its log entry then carries); PUT 3 (read and resolve, write, read
//! back); DELETE 1 (2 with a specific
//! `If-Match`). Reading a group's members takes one more round trip per 5,000 members past the
//! first page.

use serde_json::Value;
use std::collections::{HashMap, HashSet};

use super::resources::{self, changed_attributes, Described, Kind, Write};
use super::{Runtime, Scope};
use crate::store::groups as store;
use crate::store::listing::MAX_PARAMS;
use crate::store::memberships::{self, Member, MemberChange, Named};
use crate::store::resources::Stored;
use crate::store::table::Table;
use crate::store::trail::{Event, EventType, Trail};
use crate::store::{Executor, StoreError, Written};
use scim_core::scim::error::{quote, Error, Result, ScimType};
use scim_core::scim::patch::{self, members, MemberOp, NewMember};
use scim_core::scim::resource::{self, Data, RefType};
use scim_core::scim::schema::GROUP_TYPE;

/// Groups.
pub struct Groups;

/// One write of a group: its new attributes (if they change), its member changes, and the
/// version it is conditional on (when it rewrites attributes, or under `If-Match`).
pub struct GroupChange {
    pub data: Option<Data>,
    pub members: Vec<MemberChange>,
    pub if_version: Option<i64>,
    /// Member ids the request named that the tenant does not have (skipped).
    pub skipped: usize,
}

impl Kind for Groups {
    const TABLE: Table = Table::Groups;
    const REFS_ON_WRITE: bool = false;
    type Change = GroupChange;

    /// `group.updated` (with the attributes that changed) when its attributes change; the
    /// membership events are the store's, from the member changes.
    fn describe(current: &Stored, change: &GroupChange) -> Described {
        let mut events = Vec::new();
        let mut parts = Vec::new();
        if let Some(data) = &change.data {
            let changed = changed_attributes(&current.data, data);
            if !changed.is_empty() {
                parts.push(format!("updated: {}", changed.join(", ")));
                events.push(Event {
                    kind: EventType::GroupUpdated,
                    changed,
                });
            }
        }
        parts.extend(change.members.iter().map(member_words));
        parts.extend(skipped_words(change.skipped));
        Described {
            events,
            summary: format!("{{}}: {}", parts.join("; ")),
        }
    }

    async fn write<E: Executor>(w: Write<'_, E, GroupChange>) -> Result<Written<Option<Stored>>> {
        let c = w.change;
        let (id, data) = (&w.current.id, c.data.as_ref());
        let written = store::write(
            w.db,
            w.tenant_id,
            id,
            c.if_version,
            data,
            &c.members,
            w.now,
            w.write_id,
            w.trail,
        );
        let written = written.await.map_err(|e| refused(e, data))?;
        Ok(written.map(|()| None))
    }

    /// The new group with its members (`[]` when none were given).
    async fn create<E: Executor, R: Runtime>(s: &Scope<'_, E, R>, body: &Value) -> Result<Stored> {
        let (data, listed) = split_body(body)?;
        s.name(Table::Groups, &data);
        let id = s.rt.random_uuid()?;
        let named = unique(&listed);
        let ids: Vec<&str> = named.iter().map(|m| m.id.as_str()).collect();
        let kinds = memberships::kinds(s.db, s.tenant_id, &ids).await?;
        let skipped = check_members(s, &id, &named, &kinds)?;
        let members = resolved(&listed, &kinds);
        let had_members = !members.is_empty();
        let now = s.rt.now();
        let write_id = s.rt.random_id("w_")?;
        let mut summary = format!("{{}} created with {} members", members.len());
        if let Some(words) = skipped_words(skipped) {
            summary = format!("{summary}; {words}");
        }
        let entry = s.log_entry(&summary);
        let trail = Trail::single(EventType::GroupCreated, entry.as_ref());
        let t = s.tenant_id;
        store::insert(s.db, t, &id, &data, members, now, &write_id, &trail)
            .await
            .map_err(|e| refused(e, Some(&data)))?;
        s.committed();
        if had_members {
            return resources::read(s, Table::Groups, &id, true).await;
        }
        Ok(Stored {
            id,
            data,
            version: 1,
            created_at: now,
            updated_at: now,
            manager_exists: false,
            refs: Some(vec![]),
        })
    }

    /// Replace the attributes and the member set.
    async fn replace<E: Executor, R: Runtime>(
        s: &Scope<'_, E, R>,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Stored> {
        let (data, listed) = split_body(body)?;
        let (current, members, skipped) = prepare(s, id, vec![MemberOp::Replace(listed)]).await?;
        resources::write::<Groups, _, _>(s, id, if_match, Some(current), |current| {
            Ok(Some(GroupChange {
                data: Some(data.clone()),
                members: members.clone(),
                if_version: Some(current.version),
                skipped,
            }))
        })
        .await?;
        resources::read(s, Table::Groups, id, true).await
    }

    /// Attribute operations run on the group's data, member operations become row changes.
    async fn patch<E: Executor, R: Runtime>(
        s: &Scope<'_, E, R>,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Option<Stored>> {
        let ops = patch::parse(&GROUP_TYPE, body)?;
        let (attr_ops, member_ops) = patch::take_members(ops, "members")?;
        if attr_ops.is_empty() && if_match.is_none() {
            if let Some(change) = commuting(&member_ops) {
                return members_only(s, id, change).await.map(|()| None);
            }
        }
        let (current, members, skipped) = prepare(s, id, member_ops).await?;
        resources::write::<Groups, _, _>(s, id, if_match, Some(current), |current| {
            let data = if attr_ops.is_empty() {
                None
            } else {
                let data = patch::apply(&GROUP_TYPE, &current.data, &attr_ops)?;
                (data != current.data).then_some(data)
            };
            if data.is_none() && members.is_empty() {
                return Ok(None);
            }
            // Member changes alone commute and need no condition, unless the client asked
            // for the version it saw.
            let conditional = data.is_some() || if_match.is_some();
            Ok(Some(GroupChange {
                data,
                members: members.clone(),
                if_version: conditional.then_some(current.version),
                skipped,
            }))
        })
        .await?;
        Ok(None)
    }
}

/// The one member change of operations that only add members, or only remove members by
/// id (Entra's and Okta's group pushes): such a change commutes with every other write of the
/// group, so it needs no read of the group before its batch. `None` for anything else.
fn commuting(ops: &[MemberOp]) -> Option<MemberChange> {
    if ops.is_empty() {
        return None;
    }
    if ops.iter().all(|op| matches!(op, MemberOp::Add(_))) {
        let listed: Vec<&NewMember> = ops
            .iter()
            .flat_map(|op| match op {
                MemberOp::Add(listed) => listed.as_slice(),
                _ => &[],
            })
            .collect();
        let named = unique(listed)
            .into_iter()
            .map(|m| Named {
                id: m.id.clone(),
                display: m.display.clone(),
            })
            .collect();
        return Some(MemberChange::AddNamed(named));
    }
    let mut ids: Vec<String> = Vec::new();
    for op in ops {
        match op {
            MemberOp::Remove(listed) => ids.extend(listed.iter().cloned()),
            _ => return None,
        }
    }
    Some(MemberChange::Remove(ids))
}

/// A commuting member change ([`commuting`]) in one D1 call: 404 when the group does not
/// exist (nothing is written or judged), 400 for the group as its own member; members that
/// are no user or group of the tenant are skipped with a warning, and then the log entry
/// (its warnings known only once the batch has run) is written in a second call.
async fn members_only<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    change: MemberChange,
) -> Result<()> {
    let added: &[Named] = match &change {
        MemberChange::AddNamed(named) => named,
        _ => &[],
    };
    if added.iter().any(|m| m.id == id) {
        return Err(Error::bad_request(
            ScimType::InvalidValue,
            "a group cannot be a member of itself",
        ));
    }
    let write_id = s.rt.random_id("w_")?;
    let entry = s.log_entry(&format!("{{}}: {}", member_words(&change)));
    let trail = Trail {
        events: vec![],
        log: entry.as_ref(),
    };
    let now = s.rt.now();
    let written = store::write_members(s.db, s.tenant_id, id, &change, now, &write_id, &trail);
    let (name, skipped) = written
        .await
        .map_err(|e| refused(e, None))?
        .ok_or_else(|| resources::not_found::<Groups>(id))?;
    if skipped.is_empty() {
        s.committed();
        return Ok(());
    }
    let Some(a) = s.log else {
        return Ok(());
    };
    a.name(Some(&name));
    for m in &skipped {
        s.warn(skipped_warning(m));
    }
    let resolved = added.len().saturating_sub(skipped.len());
    let words = skipped_words(skipped.len()).unwrap_or_default();
    a.summary(format!("{{}}: {} added; {words}", members_n(resolved)));
    // Rare (a stale or not yet provisioned id): the entry, now with its warnings, in a
    // second call before the response, so that a committed change always has its entry.
    if let Some(entry) = a.succeeded(&[&GROUP_TYPE], s.rt.clock()) {
        crate::service::log::record(s.db, s.tenant_id, &[entry], &[]).await?;
        a.committed();
    }
    Ok(())
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

/// The group as it is now, its member changes, and how many named members were skipped, with
/// every member the operations add resolved in the same batch: 404 before any member is judged.
async fn prepare<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    group_id: &str,
    ops: Vec<MemberOp>,
) -> Result<(Stored, Vec<MemberChange>, usize)> {
    let named = unique(ops.iter().flat_map(|op| match op {
        MemberOp::Add(listed) | MemberOp::Replace(listed) => listed.as_slice(),
        _ => &[],
    }));
    let ids: Vec<&str> = named.iter().map(|m| m.id.as_str()).collect();
    let (group, kinds) = store::get_with_kinds(s.db, s.tenant_id, group_id, &ids).await?;
    let group = group.ok_or_else(|| resources::not_found::<Groups>(group_id))?;
    s.name(Table::Groups, &group.data);
    let skipped = check_members(s, group_id, &named, &kinds)?;
    let mut changes = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            MemberOp::Add(listed) => changes.push(MemberChange::Add(resolved(&listed, &kinds))),
            MemberOp::Replace(listed) => changes.push(MemberChange::Set(resolved(&listed, &kinds))),
            MemberOp::Remove(ids) => changes.push(MemberChange::Remove(ids)),
            MemberOp::RemoveAll => changes.push(MemberChange::RemoveAll),
            MemberOp::RemoveWhere(f) => changes.push(MemberChange::RemoveWhere(f)),
        }
    }
    Ok((group, changes, skipped))
}

/// The members named by a request, each once, in order.
fn unique<'a>(listed: impl IntoIterator<Item = &'a NewMember>) -> Vec<&'a NewMember> {
    let mut seen = HashSet::new();
    listed
        .into_iter()
        .filter(|m| seen.insert(m.id.as_str()))
        .collect()
}

/// The group cannot be its own member (400 `invalidValue`); a named id that is no user or
/// group of this tenant is skipped with a warning. Returns how many were skipped.
fn check_members<E, R: Runtime>(
    s: &Scope<'_, E, R>,
    group_id: &str,
    named: &[&NewMember],
    kinds: &HashMap<String, RefType>,
) -> Result<usize> {
    if named.iter().any(|m| m.id == group_id) {
        return Err(Error::bad_request(
            ScimType::InvalidValue,
            "a group cannot be a member of itself",
        ));
    }
    let mut skipped = 0usize;
    for m in named.iter().filter(|m| !kinds.contains_key(&m.id)) {
        skipped = skipped.saturating_add(1);
        s.warn(skipped_warning(&m.id));
    }
    Ok(skipped)
}

/// The log's warning for member id `id`, skipped.
fn skipped_warning(id: &str) -> String {
    format!(
        "member '{}' skipped: no user or group of this organisation has this id",
        quote(id)
    )
}

/// `k` members, in words.
fn members_n(k: usize) -> String {
    if k == 1 {
        "1 member".to_string()
    } else {
        format!("{k} members")
    }
}

/// A member change in words, for the log.
fn member_words(change: &MemberChange) -> String {
    match change {
        MemberChange::Add(m) => format!("{} added", members_n(m.len())),
        MemberChange::AddNamed(m) => format!("{} added", members_n(m.len())),
        MemberChange::Set(m) => format!("members set to {}", members_n(m.len())),
        MemberChange::Remove(ids) => format!("{} removed", members_n(ids.len())),
        MemberChange::RemoveAll => "all members removed".to_string(),
        MemberChange::RemoveWhere(_) => "members removed by filter".to_string(),
    }
}

fn skipped_words(skipped: usize) -> Option<String> {
    match skipped {
        0 => None,
        1 => Some("1 unknown member skipped".to_string()),
        k => Some(format!("{k} unknown members skipped")),
    }
}

/// The listed members with what each is, each once.
fn resolved(listed: &[NewMember], kinds: &HashMap<String, RefType>) -> Vec<Member> {
    unique(listed)
        .into_iter()
        .filter_map(|m| {
            kinds.get(&m.id).map(|kind| Member {
                id: m.id.clone(),
                kind: *kind,
                display: m.display.clone(),
            })
        })
        .collect()
}

/// The store's refusals of a group write, in SCIM's words: a displayName another group of the
/// tenant has, in any case (409 `uniqueness`, RFC 7644 §3.3); a `members[…]` filter that
/// needs more values than a statement binds (400 `invalidPath`).
fn refused(e: StoreError, data: Option<&Data>) -> Error {
    match e {
        e if e.is_unique_on("display_name_key") => {
            let name = data
                .and_then(|d| d.get("displayName"))
                .and_then(Value::as_str);
            Error::conflict(format!(
                "a group named '{}' already exists in this organisation",
                quote(name.unwrap_or_default())
            ))
        }
        StoreError::TooManyParameters { .. } => Error::bad_request(
            ScimType::InvalidPath,
            format!("the members filter needs more than {MAX_PARAMS} bound values"),
        ),
        e => e.into(),
    }
}
