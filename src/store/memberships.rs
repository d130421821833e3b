//! Membership rows: the statements that change a group's member set, the statements that
//! remove a deleted user or group from every group, and the lookup that tells which ids are
//! users or groups of a tenant.
//!
//! A membership is a row of `memberships (tenant_id, group_id, member_id, member_type,
//! display)`. Adding members is `INSERT … ON CONFLICT DO NOTHING`, removing them `DELETE …
//! WHERE`: no statement reads or rewrites a member list, so concurrent member changes cannot
//! undo each other, and one member costs the same in a group of 10 or 100,000. The types here
//! are the store's own: the service turns a request's member operations into them.

use crate::store::row::from_row;
use serde_json::Value;
use std::collections::HashMap;

use super::directory::group_json;
use super::filter_sql::member_condition;
use super::listing::MAX_PARAMS;
use super::roles;
use super::trail::EventType;
use super::{Executor, Outcome, Param, Result, Stmt, StoreError};
use scim_core::scim::filter::Filter;
use scim_core::scim::resource::RefType;

/// A member ready to be written: its id, what it is, and the display the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub kind: RefType,
    pub display: Option<String>,
}

/// A member named by its id only: what it is (a user or a group of the tenant) is resolved in
/// the batch that writes it, and an id that is neither is skipped ([`unresolved_stmt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub id: String,
    pub display: Option<String>,
}

/// A change to a group's member set, with members already resolved (or, for
/// [`MemberChange::AddNamed`], resolved in its own batch).
#[derive(Debug, Clone)]
pub enum MemberChange {
    Add(Vec<Member>),
    /// Add these members, each resolved in the statement that adds it: a member add that needs
    /// no read before its batch.
    AddNamed(Vec<Named>),
    /// Make the member set exactly these (a PUT, or a PATCH `replace` of `members`): members
    /// not listed are removed, listed ones added; members in both stay untouched.
    Set(Vec<Member>),
    Remove(Vec<String>),
    RemoveAll,
    RemoveWhere(Filter),
}

/// The statements of member changes for one group, guarded by `write_id`: one statement per
/// change, the members of an add or remove travelling as one JSON array (`json_each`), so a
/// change of 1,600 members is one statement within D1's 100 bound parameters. Before each
/// change, the statements that record it in the change feed (see [`events`]).
pub(crate) fn statements(
    tenant_id: &str,
    group_id: &str,
    write_id: &str,
    now: i64,
    changes: &[MemberChange],
) -> Result<Vec<Stmt>> {
    let mut stmts = Vec::new();
    let guard = |sql: String, params: Vec<Param>, tail: &str| -> Result<Stmt> {
        // Every statement's first two parameters are the tenant and the group; the guard's
        // come last, so a change that lost its version race writes nothing.
        let mut all: Vec<Param> = vec![tenant_id.into(), group_id.into()];
        all.extend(params);
        all.extend([tenant_id.into(), group_id.into(), write_id.into()]);
        Ok(Stmt::new(
            format!(
                "{sql} AND EXISTS (SELECT 1 FROM groups WHERE tenant_id = ? AND id = ? AND write_id = ?){tail}"
            ),
            within_limit(all)?,
        ))
    };
    // Roles from groups: the users these changes may re-role, before and after them.
    let mut named: Vec<&str> = Vec::new();
    let mut whole = false;
    for change in changes {
        match change {
            MemberChange::Add(ms) => named.extend(ms.iter().map(|m| m.id.as_str())),
            MemberChange::AddNamed(ms) => named.extend(ms.iter().map(|m| m.id.as_str())),
            MemberChange::Remove(ids) => named.extend(ids.iter().map(String::as_str)),
            MemberChange::Set(_) | MemberChange::RemoveAll | MemberChange::RemoveWhere(_) => {
                whole = true
            }
        }
    }
    let (before, after) = roles::around_members(tenant_id, group_id, write_id, &named, whole, now);
    stmts.extend(before);
    for change in changes {
        for (kind, candidates, params) in events(change, tenant_id, group_id)? {
            let mut all: Vec<Param> = vec![tenant_id.into(), now.into()];
            all.extend(params);
            all.extend([tenant_id.into(), group_id.into(), write_id.into()]);
            stmts.push(Stmt::new(
                event_insert(kind, &candidates),
                within_limit(all)?,
            ));
        }
        for (sql, params, tail) in statement(change, tenant_id)? {
            stmts.push(guard(sql, params, tail)?);
        }
    }
    stmts.extend(after);
    Ok(stmts)
}

/// D1 binds at most [`MAX_PARAMS`] values per statement; only a `members[…]` filter can
/// pass it.
fn within_limit(params: Vec<Param>) -> Result<Vec<Param>> {
    if params.len() > MAX_PARAMS {
        return Err(StoreError::TooManyParameters {
            needed: params.len(),
        });
    }
    Ok(params)
}

/// Members per membership event: a change of 100,000 members is 100 events, each row far
/// under D1's row size limit.
pub const MEMBERS_PER_EVENT: u32 = 1_000;

/// A membership event type, the SQL that selects its members (`id`, `kind`) as they are before
/// the change, and that SQL's parameters.
type EventPart = (&'static str, String, Vec<Param>);

const ADDED: &str = EventType::GroupMembersAdded.name();
const REMOVED: &str = EventType::GroupMembersRemoved.name();

/// The members a change adds or removes for real (an add of a member already there, or a
/// remove of one that is not, records nothing), read before the change applies.
fn events(change: &MemberChange, tenant_id: &str, group_id: &str) -> Result<Vec<EventPart>> {
    let not_present = |members: &[Member]| -> EventPart {
        (
            ADDED,
            "SELECT json_extract(j.value, '$.id') AS id, json_extract(j.value, '$.kind') AS kind \
             FROM json_each(?) j WHERE NOT EXISTS (SELECT 1 FROM memberships p WHERE p.tenant_id = ? \
             AND p.group_id = ? AND p.member_id = json_extract(j.value, '$.id'))"
                .to_string(),
            vec![members_json(members).into(), tenant_id.into(), group_id.into()],
        )
    };
    let present = |condition: String, extra: Vec<Param>| -> EventPart {
        let mut params: Vec<Param> = vec![tenant_id.into(), group_id.into()];
        params.extend(extra);
        (
            REMOVED,
            format!(
                "SELECT m.member_id AS id, m.member_type AS kind FROM memberships m \
                 WHERE m.tenant_id = ? AND m.group_id = ?{condition}"
            ),
            params,
        )
    };
    Ok(match change {
        MemberChange::Add(members) if members.is_empty() => vec![],
        MemberChange::AddNamed(named) if named.is_empty() => vec![],
        MemberChange::Remove(ids) if ids.is_empty() => vec![],
        MemberChange::Add(members) => vec![not_present(members)],
        MemberChange::AddNamed(named) => vec![(
            ADDED,
            format!(
                "SELECT r.id, r.kind FROM ({}) r WHERE r.kind IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM memberships p WHERE p.tenant_id = ? AND p.group_id = ? \
                 AND p.member_id = r.id)",
                resolving()
            ),
            [
                resolving_params(tenant_id, named),
                vec![tenant_id.into(), group_id.into()],
            ]
            .concat(),
        )],
        MemberChange::Set(members) => vec![
            present(
                " AND m.member_id NOT IN (SELECT json_extract(value, '$.id') FROM json_each(?))"
                    .to_string(),
                vec![members_json(members).into()],
            ),
            not_present(members),
        ],
        MemberChange::Remove(ids) => vec![present(
            " AND m.member_id IN (SELECT value FROM json_each(?))".to_string(),
            vec![Value::from(ids.clone()).to_string().into()],
        )],
        MemberChange::RemoveAll => vec![present(String::new(), vec![])],
        MemberChange::RemoveWhere(filter) => {
            let c = member_condition(filter, tenant_id)?;
            vec![present(format!(" AND {}", c.sql), c.params)]
        }
    })
}

/// The `INSERT INTO events` of one membership event type, its members selected by
/// `candidates` and split into events of [`MEMBERS_PER_EVENT`], each with the group's shape.
/// Parameters: the tenant, the time, `candidates`' own, then the guard's (tenant, group,
/// write_id): the group row must carry this write's `write_id`.
fn event_insert(kind: &str, candidates: &str) -> String {
    format!(
        "INSERT INTO events (tenant_id, type, resource_id, at, data) \
         SELECT ?, '{kind}', g.id, ?, json_object('group', {}, 'members', \
         json_group_array(json_object('id', x.id, 'type', x.kind))) \
         FROM (SELECT c.id, c.kind, (row_number() OVER (ORDER BY c.id) - 1) / {MEMBERS_PER_EVENT} AS chunk \
         FROM ({candidates}) c) x JOIN groups g \
         ON g.tenant_id = ? AND g.id = ? AND g.write_id = ? GROUP BY x.chunk ORDER BY x.chunk",
        group_json()
    )
}

/// The members of a JSON array `j` of [`Named`] with what each is: `id`, `display`, and
/// `kind` (`User`, `Group`, or NULL for an id that is neither). Parameters: the tenant twice,
/// then the array.
fn resolving() -> &'static str {
    "SELECT json_extract(j.value, '$.id') AS id, json_extract(j.value, '$.display') AS display, \
     CASE WHEN EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = ? \
       AND u.id = json_extract(j.value, '$.id')) THEN 'User' \
     WHEN EXISTS (SELECT 1 FROM groups h WHERE h.tenant_id = ? \
       AND h.id = json_extract(j.value, '$.id')) THEN 'Group' END AS kind \
     FROM json_each(?) j"
}

/// [`resolving`]'s parameters for `named`.
fn resolving_params(tenant_id: &str, named: &[Named]) -> Vec<Param> {
    let rows: Vec<Value> = named
        .iter()
        .map(|m| serde_json::json!({"id": m.id, "display": m.display}))
        .collect();
    vec![
        tenant_id.into(),
        tenant_id.into(),
        Value::Array(rows).to_string().into(),
    ]
}

/// The SQL selecting the ids of `named` that are no user or group of the tenant (skipped by
/// the statements of [`MemberChange::AddNamed`]), and its parameters.
fn unresolved(tenant_id: &str, named: &[Named]) -> (String, Vec<Param>) {
    (
        format!("SELECT r.id FROM ({}) r WHERE r.kind IS NULL", resolving()),
        resolving_params(tenant_id, named),
    )
}

/// [`unresolved`] as a statement, read in the same batch as the add.
pub(crate) fn unresolved_stmt(tenant_id: &str, named: &[Named]) -> Stmt {
    let (sql, params) = unresolved(tenant_id, named);
    Stmt::new(sql, params)
}

/// The condition (and its parameters) that no id of `named` is unresolved: what guards the
/// log entry a member add writes in its batch (one that skips members writes its entry, with
/// the warnings, in a second call).
pub(crate) fn all_resolved(tenant_id: &str, named: &[Named]) -> (String, Vec<Param>) {
    let (sql, params) = unresolved(tenant_id, named);
    (format!("NOT EXISTS ({sql})"), params)
}

fn members_json(members: &[Member]) -> String {
    let rows: Vec<Value> = members
        .iter()
        .map(|m| serde_json::json!({"id": m.id, "kind": m.kind.as_str(), "display": m.display}))
        .collect();
    Value::Array(rows).to_string()
}

/// A statement in three parts: the SQL up to the guard, its own parameters, what follows the
/// guard.
type Parts = (String, Vec<Param>, &'static str);

const INSERT_MEMBERS: &str =
    "INSERT INTO memberships (tenant_id, group_id, member_id, member_type, display) \
     SELECT ?, ?, json_extract(j.value, '$.id'), json_extract(j.value, '$.kind'), \
     json_extract(j.value, '$.display') FROM json_each(?) j WHERE 1";

/// One change as SQL that binds the tenant and the group first and ends in a condition the
/// guard is appended to, with its own parameters; none for an empty change.
fn statement(change: &MemberChange, tenant_id: &str) -> Result<Vec<Parts>> {
    Ok(match change {
        MemberChange::Add(members) if members.is_empty() => vec![],
        MemberChange::AddNamed(named) if named.is_empty() => vec![],
        MemberChange::Remove(ids) if ids.is_empty() => vec![],
        MemberChange::AddNamed(named) => vec![(
            format!(
                "INSERT INTO memberships (tenant_id, group_id, member_id, member_type, display) \
                 SELECT ?, ?, r.id, r.kind, r.display FROM ({}) r WHERE r.kind IS NOT NULL",
                resolving()
            ),
            resolving_params(tenant_id, named),
            " ON CONFLICT DO NOTHING",
        )],
        // `WHERE 1` gives the guard an AND to follow; SQLite needs a WHERE before an upsert
        // clause on INSERT … SELECT anyway.
        MemberChange::Add(members) => vec![(
            INSERT_MEMBERS.to_string(),
            vec![members_json(members).into()],
            " ON CONFLICT DO NOTHING",
        )],
        MemberChange::Set(members) => vec![
            (
                "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ? \
                 AND member_id NOT IN (SELECT json_extract(value, '$.id') FROM json_each(?))"
                    .to_string(),
                vec![members_json(members).into()],
                "",
            ),
            (
                INSERT_MEMBERS.to_string(),
                vec![members_json(members).into()],
                " ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display",
            ),
        ],
        MemberChange::Remove(ids) => vec![(
            "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ? \
             AND member_id IN (SELECT value FROM json_each(?))"
                .to_string(),
            vec![Value::from(ids.clone()).to_string().into()],
            "",
        )],
        MemberChange::RemoveAll => vec![(
            "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ?".to_string(),
            vec![],
            "",
        )],
        MemberChange::RemoveWhere(filter) => {
            let c = member_condition(filter, tenant_id)?;
            vec![(
                format!(
                    "DELETE FROM memberships AS m WHERE m.tenant_id = ? AND m.group_id = ? AND {}",
                    c.sql
                ),
                c.params,
                "",
            )]
        }
    })
}

/// Statements that remove a deleted user or group from every group it was in (bumping those
/// groups' versions), once `table` no longer holds `id`.
pub(crate) fn forget_member(tenant_id: &str, id: &str, table: &'static str, now: i64) -> Vec<Stmt> {
    let gone = format!("NOT EXISTS (SELECT 1 FROM {table} WHERE tenant_id = ? AND id = ?)");
    vec![
        Stmt::new(
            format!(
                "UPDATE groups SET version = version + 1, updated_at = ? WHERE tenant_id = ? \
                 AND id IN (SELECT group_id FROM memberships WHERE tenant_id = ? AND member_id = ?) AND {gone}"
            ),
            vec![now.into(), tenant_id.into(), tenant_id.into(), id.into(), tenant_id.into(), id.into()],
        ),
        Stmt::new(
            format!("DELETE FROM memberships WHERE tenant_id = ? AND member_id = ? AND {gone}"),
            vec![tenant_id.into(), id.into(), tenant_id.into(), id.into()],
        ),
    ]
}

/// The change-feed events of [`forget_member`]: `group.members_removed` for every group the
/// resource is in, written before the delete, on the condition that the row is there at
/// `if_version` (any version when `None`), which holds exactly when the delete removes it.
pub(crate) fn forget_member_events(
    tenant_id: &str,
    id: &str,
    table: &'static str,
    now: i64,
    if_version: Option<i64>,
) -> Stmt {
    Stmt::new(
        format!(
            "INSERT INTO events (tenant_id, type, resource_id, at, data) \
             SELECT ?, '{REMOVED}', g.id, ?, json_object('group', {}, 'members', \
             json_array(json_object('id', m.member_id, 'type', m.member_type))) \
             FROM memberships m INDEXED BY memberships_by_member \
             JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
             WHERE m.tenant_id = ? AND m.member_id = ? AND EXISTS (SELECT 1 FROM {table} \
             WHERE tenant_id = ? AND id = ? AND (? IS NULL OR version = ?))",
            group_json()
        ),
        vec![
            tenant_id.into(),
            now.into(),
            tenant_id.into(),
            id.into(),
            tenant_id.into(),
            id.into(),
            if_version.into(),
            if_version.into(),
        ],
    )
}

/// Which of these ids are users or groups of the tenant: one statement, whatever the number of
/// ids (they travel as one JSON array), one primary-key seek per id.
pub(crate) fn kinds_stmt(tenant_id: &str, ids: &[&str]) -> Stmt {
    let ids_json = serde_json::Value::from(ids.to_vec()).to_string();
    Stmt::new(
        "SELECT id, 'User' AS kind FROM users WHERE tenant_id = ? AND id IN (SELECT value FROM json_each(?)) \
         UNION ALL SELECT id, 'Group' AS kind FROM groups WHERE tenant_id = ? AND id IN (SELECT value FROM json_each(?))",
        vec![
            tenant_id.into(),
            ids_json.clone().into(),
            tenant_id.into(),
            ids_json.into(),
        ],
    )
}

pub(crate) fn decode_kinds(out: Outcome) -> Result<HashMap<String, RefType>> {
    struct Found {
        id: String,
        kind: String,
    }
    from_row!(Found { id, kind });
    Ok(out
        .decode::<Found>()?
        .into_iter()
        .map(|f| {
            let kind = if f.kind == "Group" {
                RefType::Group
            } else {
                RefType::User
            };
            (f.id, kind)
        })
        .collect())
}

/// Which of these ids are users or groups of the tenant (one statement).
pub async fn kinds<E: Executor>(
    db: &E,
    tenant_id: &str,
    ids: &[&str],
) -> Result<HashMap<String, RefType>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    decode_kinds(db.query(kinds_stmt(tenant_id, ids)).await?)
}
