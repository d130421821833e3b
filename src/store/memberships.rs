//! Membership rows: the statements that change a group's member set, the statements that
//! remove a deleted user or group from every group, and the lookup that tells which ids are
//! users or groups of a tenant.
//!
//! A membership is a row of `memberships (tenant_id, group_id, member_id, member_type,
//! display)`. Adding members is `INSERT … ON CONFLICT DO NOTHING`, removing them `DELETE …
//! WHERE`: no statement reads or rewrites a member list, so concurrent member changes cannot
//! undo each other, and one member costs the same in a group of 10 or 100,000. The types here
//! are the store's own: the service turns a request's member operations into them.

use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

use super::filter_sql::member_condition;
use super::listing::MAX_PARAMS;
use super::{Executor, Outcome, Param, Stmt};
use crate::scim::error::{Error, Result, ScimType};
use crate::scim::filter::Filter;
use crate::scim::resource::RefType;

/// A member ready to be written: its id, what it is, and the display the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub kind: RefType,
    pub display: Option<String>,
}

/// A change to a group's member set, with members already resolved.
#[derive(Debug, Clone)]
pub enum MemberChange {
    Add(Vec<Member>),
    Remove(Vec<String>),
    RemoveAll,
    RemoveWhere(Filter),
}

/// The statements of member changes for one group, guarded by `write_id`: one statement per
/// change, the members of an add or remove travelling as one JSON array (`json_each`), so a
/// change of 1,600 members is one statement within D1's 100 bound parameters.
pub(crate) fn statements(
    tenant_id: &str,
    group_id: &str,
    write_id: &str,
    changes: &[MemberChange],
) -> Result<Vec<Stmt>> {
    let mut stmts = Vec::new();
    for change in changes {
        let Some((sql, params, tail)) = statement(change, tenant_id)? else {
            continue;
        };
        // Every statement's first two parameters are the tenant and the group; the guard's
        // come last, so a change that lost its version race writes nothing.
        let mut all: Vec<Param> = vec![tenant_id.into(), group_id.into()];
        all.extend(params);
        all.extend([tenant_id.into(), group_id.into(), write_id.into()]);
        if all.len() > MAX_PARAMS {
            return Err(Error::bad_request(
                ScimType::InvalidPath,
                format!("the members filter needs more than {MAX_PARAMS} bound values"),
            ));
        }
        stmts.push(Stmt::new(
            format!(
                "{sql} AND EXISTS (SELECT 1 FROM groups WHERE tenant_id = ? AND id = ? AND write_id = ?){tail}"
            ),
            all,
        ));
    }
    Ok(stmts)
}

/// A statement in three parts: the SQL up to the guard, its own parameters, what follows the
/// guard.
type Parts = (String, Vec<Param>, &'static str);

/// One change as SQL that binds the tenant and the group first and ends in a condition the
/// guard is appended to, with its own parameters; `None` for an empty change.
fn statement(change: &MemberChange, tenant_id: &str) -> Result<Option<Parts>> {
    Ok(Some(match change {
        MemberChange::Add(members) if members.is_empty() => return Ok(None),
        MemberChange::Remove(ids) if ids.is_empty() => return Ok(None),
        MemberChange::Add(members) => {
            let rows: Vec<Value> = members
                .iter()
                .map(|m| serde_json::json!({"id": m.id, "kind": m.kind.as_str(), "display": m.display}))
                .collect();
            // `WHERE 1` gives the guard an AND to follow; SQLite needs a WHERE before an
            // upsert clause on INSERT … SELECT anyway.
            (
                "INSERT INTO memberships (tenant_id, group_id, member_id, member_type, display) \
                 SELECT ?, ?, json_extract(j.value, '$.id'), json_extract(j.value, '$.kind'), \
                 json_extract(j.value, '$.display') FROM json_each(?) j WHERE 1"
                    .to_string(),
                vec![Value::Array(rows).to_string().into()],
                " ON CONFLICT DO NOTHING",
            )
        }
        MemberChange::Remove(ids) => (
            "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ? \
             AND member_id IN (SELECT value FROM json_each(?))"
                .to_string(),
            vec![Value::from(ids.clone()).to_string().into()],
            "",
        ),
        MemberChange::RemoveAll => (
            "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ?".to_string(),
            vec![],
            "",
        ),
        MemberChange::RemoveWhere(filter) => {
            let c = member_condition(filter, tenant_id)?;
            (
                format!(
                    "DELETE FROM memberships AS m WHERE m.tenant_id = ? AND m.group_id = ? AND {}",
                    c.sql
                ),
                c.params,
                "",
            )
        }
    }))
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
    #[derive(Deserialize)]
    struct Found {
        id: String,
        kind: String,
    }
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
