//! SQL for SCIM Groups and their memberships.
//!
//! A membership is a row of `memberships (tenant_id, group_id, member_id, member_type)`. Adding
//! members is `INSERT … ON CONFLICT DO NOTHING`, removing them `DELETE … WHERE`: no statement
//! reads or rewrites a member list, so concurrent member changes cannot undo each other, and one
//! member costs the same in a group of 10 or 100,000. Each member PATCH also bumps the group's
//! `version` (`version = version + 1`, one small row) so that `meta.version` changes.
//!
//! Statements that must commit together go in one batch; those after the group's own UPDATE are
//! guarded by the `write_id` it set (as for users), so a write that lost a version race changes
//! nothing.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

use super::filter_sql::{member_condition, Table};
use super::listing::{list_page, ListQuery, MAX_PARAMS};
use super::refs::{self, Refs};
use super::{Executor, Param, Stmt, StoreError};
use crate::scim::error::{quote, Error, Result, ScimType};
use crate::scim::filter::Filter;
use crate::scim::fold::fold;
use crate::scim::patch::{MemberOp, NewMember};
use crate::scim::resource::MemberRef;

/// A group as stored; `members` is `None` when the query did not ask for them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGroup {
    pub id: String,
    pub data: Map<String, Value>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub members: Option<Vec<MemberRef>>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    data: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    /// The group's member count, when the query asked for it (a list page with members).
    #[serde(default)]
    ref_count: i64,
}

impl Row {
    fn into_group(self) -> Result<StoredGroup> {
        let data = super::parse_data("group", &self.id, &self.data)?;
        Ok(StoredGroup {
            id: self.id,
            data,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            members: None,
        })
    }
}

const SELECT: &str = "SELECT g.id, g.data, g.version, g.created_at, g.updated_at FROM groups g";

/// One page of groups and the total that match; with members, each group's members, the page
/// cut short once their members pass [`refs::PAGE_BUDGET`] rows.
pub async fn list<E: Executor>(
    db: &E,
    tenant_id: &str,
    q: &ListQuery<'_>,
    with_members: bool,
) -> Result<(u64, Vec<StoredGroup>)> {
    if !with_members {
        let (n, rows) = list_page::<_, Row>(db, Table::Groups, SELECT, tenant_id, q).await?;
        let groups = rows
            .into_iter()
            .map(Row::into_group)
            .collect::<Result<_>>()?;
        return Ok((n, groups));
    }
    let select = format!(
        "SELECT g.id, g.data, g.version, g.created_at, g.updated_at, {} FROM groups g",
        Refs::Members.count_column("g")
    );
    let (n, mut rows) = list_page::<_, Row>(db, Table::Groups, &select, tenant_id, q).await?;
    rows.truncate(refs::within_budget(rows.iter().map(|r| r.ref_count)));
    let counts: Vec<i64> = rows.iter().map(|r| r.ref_count).collect();
    let mut groups = rows
        .into_iter()
        .map(Row::into_group)
        .collect::<Result<Vec<_>>>()?;
    // Groups without members need no second read (Entra's groups are usually read with
    // `excludedAttributes=members`, and then none of this runs).
    let ids: Vec<String> = groups
        .iter()
        .zip(&counts)
        .filter(|(_, n)| **n > 0)
        .map(|(g, _)| g.id.clone())
        .collect();
    let mut members = refs::read_all(db, Refs::Members, tenant_id, &ids).await?;
    for g in &mut groups {
        g.members = Some(members.remove(&g.id).unwrap_or_default());
    }
    Ok((n, groups))
}

/// One group; with members, their first page comes in the same batch as the group's row, and
/// every member is read however many there are.
pub async fn get<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    with_members: bool,
) -> Result<Option<StoredGroup>> {
    let row = row_stmt(tenant_id, id);
    if !with_members {
        return db
            .query(row)
            .await?
            .first::<Row>()?
            .map(Row::into_group)
            .transpose();
    }
    let Some((row, members)) =
        refs::row_with_refs::<_, Row>(db, row, Refs::Members, tenant_id, id).await?
    else {
        return Ok(None);
    };
    let mut group = row.into_group()?;
    group.members = Some(members);
    Ok(Some(group))
}

fn row_stmt(tenant_id: &str, id: &str) -> Stmt {
    Stmt::new(
        format!("{SELECT} WHERE g.tenant_id = ? AND g.id = ?"),
        vec![tenant_id.into(), id.into()],
    )
}

/// Which of these ids are users or groups of the tenant: one statement, whatever the number of
/// ids (they travel as one JSON array), one primary-key seek per id.
fn kinds_stmt(tenant_id: &str, ids: &[&str]) -> Stmt {
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

fn decode_kinds(out: super::Outcome) -> Result<HashMap<String, &'static str>> {
    #[derive(Deserialize)]
    struct Found {
        id: String,
        kind: String,
    }
    Ok(out
        .decode::<Found>()?
        .into_iter()
        .map(|f| (f.id, if f.kind == "Group" { "Group" } else { "User" }))
        .collect())
}

/// A member ready to be written: its id, what it is, and the display the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub kind: &'static str,
    pub display: Option<String>,
}

/// The members named by a request, each once, in order.
fn unique_members<'a>(listed: impl IntoIterator<Item = &'a NewMember>) -> Vec<&'a NewMember> {
    let mut seen = std::collections::HashSet::new();
    listed
        .into_iter()
        .filter(|m| seen.insert(m.id.as_str()))
        .collect()
}

/// Check that every named member is a user or group of this tenant other than the group
/// itself: any other id is 400 `invalidValue`, before anything is written.
fn check_members(
    group_id: &str,
    named: &[&NewMember],
    kinds: &HashMap<String, &'static str>,
) -> Result<()> {
    if named.iter().any(|m| m.id == group_id) {
        return Err(Error::bad_request(
            ScimType::InvalidValue,
            "a group cannot be a member of itself",
        ));
    }
    let missing: Vec<&str> = named
        .iter()
        .map(|m| m.id.as_str())
        .filter(|id| !kinds.contains_key(*id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::bad_request(
        ScimType::InvalidValue,
        format!(
            "no user or group of this organisation has the id{}: {}{}",
            if missing.len() > 1 { "s" } else { "" },
            missing
                .iter()
                .take(5)
                .map(|m| quote(m))
                .collect::<Vec<_>>()
                .join(", "),
            match missing.len().saturating_sub(5) {
                0 => String::new(),
                more => format!(" and {more} more"),
            }
        ),
    ))
}

fn resolved(listed: &[NewMember], kinds: &HashMap<String, &'static str>) -> Vec<Member> {
    unique_members(listed)
        .into_iter()
        .filter_map(|m| {
            kinds.get(&m.id).map(|kind| Member {
                id: m.id.clone(),
                kind,
                display: m.display.clone(),
            })
        })
        .collect()
}

/// Resolve the members of a new group (POST) in one statement. A member listed twice is kept
/// once.
pub async fn resolve<E: Executor>(
    db: &E,
    tenant_id: &str,
    group_id: &str,
    listed: &[NewMember],
) -> Result<Vec<Member>> {
    let named = unique_members(listed);
    if named.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<&str> = named.iter().map(|m| m.id.as_str()).collect();
    let kinds = decode_kinds(db.query(kinds_stmt(tenant_id, &ids)).await?)?;
    check_members(group_id, &named, &kinds)?;
    Ok(resolved(listed, &kinds))
}

/// Read a group and resolve every member its member operations add, in one batch (one round
/// trip, however many operations): `None` when the group does not exist, so that a PATCH or PUT
/// of a missing group is 404 before any member is judged.
pub async fn prepare<E: Executor>(
    db: &E,
    tenant_id: &str,
    group_id: &str,
    ops: Vec<MemberOp>,
) -> Result<Option<(StoredGroup, Vec<MemberChange>)>> {
    let named = unique_members(ops.iter().flat_map(|op| match op {
        MemberOp::Add(listed) | MemberOp::Replace(listed) => listed.as_slice(),
        _ => &[],
    }));
    let ids: Vec<&str> = named.iter().map(|m| m.id.as_str()).collect();
    let mut stmts = vec![row_stmt(tenant_id, group_id)];
    if !ids.is_empty() {
        stmts.push(kinds_stmt(tenant_id, &ids));
    }
    let mut outs = db.batch(stmts).await?.into_iter();
    let Some(group) = outs.next().map(|o| o.first::<Row>()).transpose()?.flatten() else {
        return Ok(None);
    };
    let kinds = match outs.next() {
        Some(o) => decode_kinds(o)?,
        None => HashMap::new(),
    };
    check_members(group_id, &named, &kinds)?;
    let mut changes = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            MemberOp::Add(listed) => changes.push(MemberChange::Add(resolved(&listed, &kinds))),
            MemberOp::Replace(listed) => {
                changes.push(MemberChange::RemoveAll);
                changes.push(MemberChange::Add(resolved(&listed, &kinds)));
            }
            MemberOp::Remove(ids) => changes.push(MemberChange::Remove(ids)),
            MemberOp::RemoveAll => changes.push(MemberChange::RemoveAll),
            MemberOp::RemoveWhere(f) => changes.push(MemberChange::RemoveWhere(f)),
        }
    }
    Ok(Some((group.into_group()?, changes)))
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
fn member_statements(
    tenant_id: &str,
    group_id: &str,
    write_id: &str,
    changes: &[MemberChange],
) -> Result<Vec<Stmt>> {
    let guard = "EXISTS (SELECT 1 FROM groups WHERE tenant_id = ? AND id = ? AND write_id = ?)";
    let scope = || -> Vec<Param> { vec![tenant_id.into(), group_id.into()] };
    let guard_params =
        || -> Vec<Param> { vec![tenant_id.into(), group_id.into(), write_id.into()] };
    let mut stmts = Vec::new();
    for change in changes {
        match change {
            MemberChange::Add(members) if members.is_empty() => {}
            MemberChange::Add(members) => {
                let rows: Vec<Value> = members
                    .iter()
                    .map(|m| serde_json::json!({"id": m.id, "kind": m.kind, "display": m.display}))
                    .collect();
                let mut params = scope();
                params.push(Value::Array(rows).to_string().into());
                params.extend(guard_params());
                stmts.push(Stmt::new(
                    format!(
                        "INSERT INTO memberships (tenant_id, group_id, member_id, member_type, display) \
                         SELECT ?, ?, json_extract(j.value, '$.id'), json_extract(j.value, '$.kind'), \
                         json_extract(j.value, '$.display') FROM json_each(?) j WHERE {guard} \
                         ON CONFLICT DO NOTHING"
                    ),
                    params,
                ));
            }
            MemberChange::Remove(ids) if ids.is_empty() => {}
            MemberChange::Remove(ids) => {
                let mut params = scope();
                params.push(serde_json::Value::from(ids.clone()).to_string().into());
                params.extend(guard_params());
                stmts.push(Stmt::new(
                    format!(
                        "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ? \
                         AND member_id IN (SELECT value FROM json_each(?)) AND {guard}"
                    ),
                    params,
                ));
            }
            MemberChange::RemoveAll => {
                let mut params = scope();
                params.extend(guard_params());
                stmts.push(Stmt::new(
                    format!(
                        "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ? AND {guard}"
                    ),
                    params,
                ));
            }
            MemberChange::RemoveWhere(filter) => {
                let c = member_condition(filter, tenant_id)?;
                let mut params = scope();
                params.extend(c.params);
                params.extend(guard_params());
                if params.len() > MAX_PARAMS {
                    return Err(Error::bad_request(
                        ScimType::InvalidPath,
                        format!("the members filter needs more than {MAX_PARAMS} bound values"),
                    ));
                }
                stmts.push(Stmt::new(
                    format!(
                        "DELETE FROM memberships AS m WHERE m.tenant_id = ? AND m.group_id = ? AND {} AND {guard}",
                        c.sql
                    ),
                    params,
                ));
            }
        }
    }
    Ok(stmts)
}

/// Statements that remove a deleted user or group from every group it was in (bumping those
/// groups' versions), once `table` no longer holds `id`.
pub fn forget_member(tenant_id: &str, id: &str, table: &'static str, now: i64) -> Vec<Stmt> {
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

fn columns(data: &Map<String, Value>) -> (String, Option<String>) {
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    (text("displayName").unwrap_or_default(), text("externalId"))
}

fn taken(display_name: &str) -> Error {
    Error::conflict(format!(
        "a group named '{}' already exists in this organisation",
        quote(display_name)
    ))
}

/// Insert a group with its members in one batch. A taken displayName is 409 `uniqueness`.
pub async fn insert<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    data: &Map<String, Value>,
    members: Vec<Member>,
    now: i64,
    write_id: &str,
) -> Result<()> {
    let (display_name, external_id) = columns(data);
    let mut stmts = vec![Stmt::new(
        "INSERT INTO groups (tenant_id, id, display_name, display_name_key, external_id, data, version, write_id, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        vec![
            tenant_id.into(),
            id.into(),
            display_name.as_str().into(),
            fold(&display_name).into(),
            external_id.into(),
            Value::Object(data.clone()).to_string().into(),
            write_id.into(),
            now.into(),
            now.into(),
        ],
    )];
    if !members.is_empty() {
        stmts.extend(member_statements(
            tenant_id,
            id,
            write_id,
            &[MemberChange::Add(members)],
        )?);
    }
    match db.batch(stmts).await {
        Ok(_) => Ok(()),
        Err(StoreError::Unique(_)) => Err(taken(&display_name)),
        Err(e) => Err(e.into()),
    }
}

/// The result of a group write.
#[derive(Debug, PartialEq, Eq)]
pub enum Write {
    Done,
    /// The group's version was no longer the one read (or the group is gone).
    Stale,
}

/// Write a group's attributes (if `data` is given, conditionally on `expected_version`) and
/// its member changes, in one batch. Without `data`, the version is bumped unconditionally:
/// member changes commute, so they never need to retry.
#[allow(clippy::too_many_arguments)]
pub async fn write<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    expected_version: i64,
    data: Option<&Map<String, Value>>,
    changes: &[MemberChange],
    now: i64,
    write_id: &str,
) -> Result<Write> {
    let head = match data {
        Some(data) => {
            let (display_name, external_id) = columns(data);
            Stmt::new(
                "UPDATE groups SET display_name = ?, display_name_key = ?, external_id = ?, data = ?, version = version + 1, \
                 write_id = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND version = ?",
                vec![
                    display_name.as_str().into(),
                    fold(&display_name).into(),
                    external_id.into(),
                    Value::Object(data.clone()).to_string().into(),
                    write_id.into(),
                    now.into(),
                    tenant_id.into(),
                    id.into(),
                    expected_version.into(),
                ],
            )
        }
        None => Stmt::new(
            "UPDATE groups SET version = version + 1, write_id = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
            vec![write_id.into(), now.into(), tenant_id.into(), id.into()],
        ),
    };
    let mut stmts = vec![head];
    stmts.extend(member_statements(tenant_id, id, write_id, changes)?);
    let outs = match db.batch(stmts).await {
        Ok(outs) => outs,
        Err(StoreError::Unique(_)) => {
            let name = data.map(columns).map(|c| c.0).unwrap_or_default();
            return Err(taken(&name));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(if outs.first().map_or(0, |o| o.changes) == 0 {
        Write::Stale
    } else {
        Write::Done
    })
}

/// Delete a group: its row, its members, and its membership in other groups, in one batch.
/// Returns false if there was no such group (at `if_version`, when given).
pub async fn delete<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    if_version: Option<i64>,
    now: i64,
) -> Result<bool> {
    let mut stmts = vec![
        super::delete_at_version("groups", tenant_id, id, if_version),
        Stmt::new(
            "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ? \
             AND NOT EXISTS (SELECT 1 FROM groups WHERE tenant_id = ? AND id = ?)",
            vec![tenant_id.into(), id.into(), tenant_id.into(), id.into()],
        ),
    ];
    stmts.extend(forget_member(tenant_id, id, "groups", now));
    let outs = db.batch(stmts).await?;
    Ok(outs.first().map_or(0, |o| o.changes) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse;
    use crate::scim::patch;
    use crate::scim::resource::from_request;
    use crate::scim::schema::{GROUP_TYPE, USER_TYPE};
    use crate::store::listing::list_where;
    use crate::store::sqlite::Sqlite;
    use crate::store::tenants::{create_tenant, NewTenant};
    use crate::store::users;
    use pollster::block_on;
    use serde_json::json;
    use std::path::Path;

    const T: &str = "ten_a";

    /// Tenant A with users u1..u5 and groups g1 ("Sales", members from `before`) and g2;
    /// tenant B with one user.
    fn db(before: &Value) -> Sqlite {
        let db = Sqlite::migrated();
        for (id, sub) in [(T, "a"), ("ten_b", "b")] {
            block_on(create_tenant(
                &db,
                NewTenant {
                    id,
                    subdomain: sub,
                    name: sub,
                    provisioning_enabled: true,
                    now: 0,
                },
            ))
            .expect("tenant");
        }
        for i in 1..=5 {
            let data = from_request(&USER_TYPE, &json!({"userName": format!("user{i}@x.org")}))
                .expect("user");
            block_on(users::insert(&db, T, &format!("u{i}"), &data, i, "w")).expect("insert");
        }
        let other = from_request(&USER_TYPE, &json!({"userName": "b@x.org"})).expect("user");
        block_on(users::insert(
            &db,
            "ten_b",
            "other-tenant-user",
            &other,
            1,
            "w",
        ))
        .expect("insert");
        let members: Vec<Member> = before["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .map(|s| Member {
                        id: s.to_string(),
                        kind: "User",
                        display: Some(format!("{s} display")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sales = json!({"displayName": before["displayName"].as_str().unwrap_or("Sales")});
        block_on(insert(
            &db,
            T,
            "g1",
            sales.as_object().expect("object"),
            members,
            10,
            "w1",
        ))
        .expect("g1");
        block_on(insert(
            &db,
            T,
            "g2",
            json!({"displayName": "Marketing"})
                .as_object()
                .expect("object"),
            vec![],
            11,
            "w2",
        ))
        .expect("g2");
        db
    }

    fn state(db: &Sqlite, id: &str) -> Value {
        let g = block_on(get(db, T, id, true))
            .expect("get")
            .expect("exists");
        let mut members: Vec<String> = g
            .members
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.id)
            .collect();
        members.sort();
        let mut s = g.data.clone();
        s.insert("members".into(), json!(members));
        Value::Object(s)
    }

    fn replay(path: &Path) -> std::result::Result<(), String> {
        let f: Value =
            serde_json::from_str(&std::fs::read_to_string(path).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        let before = f
            .get("before")
            .cloned()
            .unwrap_or(json!({"displayName": "Sales", "members": []}));
        let db = db(&before);
        let request = &f["request"];
        let (result, id) = match f["operation"].as_str() {
            Some("group_create") => {
                let r = (|| {
                    let mut data = from_request(&GROUP_TYPE, request)?;
                    data.remove("members");
                    let listed = patch::members(request.get("members").unwrap_or(&Value::Null))?;
                    let members = block_on(resolve(&db, T, "gnew", &listed))?;
                    block_on(insert(&db, T, "gnew", &data, members, 20, "w3"))
                })();
                (r, "gnew")
            }
            Some("group_patch") => {
                let r = (|| {
                    let ops = patch::parse(&GROUP_TYPE, request)?;
                    let (attr_ops, member_ops) = patch::take_members(ops, "members")?;
                    let (current, changes) = block_on(prepare(&db, T, "g1", member_ops))?
                        .ok_or_else(|| Error::not_found("g1"))?;
                    let data = if attr_ops.is_empty() {
                        None
                    } else {
                        Some(patch::apply(&GROUP_TYPE, &current.data, &attr_ops)?)
                    };
                    block_on(write(
                        &db,
                        T,
                        "g1",
                        current.version,
                        data.as_ref(),
                        &changes,
                        30,
                        "w4",
                    ))
                    .map(|_| ())
                })();
                (r, "g1")
            }
            other => return Err(format!("unknown operation {other:?}")),
        };
        if let (Err(e), Some(err)) = (&result, f.get("error")) {
            let ok = u64::from(e.status) == err["status"].as_u64().unwrap_or(0)
                && e.scim_type.map(|t| t.as_str()) == err["scimType"].as_str();
            if !ok {
                return Err(format!(
                    "expected error {err}, got {} {:?}: {}",
                    e.status, e.scim_type, e.detail
                ));
            }
        } else if let Err(e) = result {
            return Err(format!(
                "unexpected error {} {:?}: {}",
                e.status, e.scim_type, e.detail
            ));
        } else if let Some(err) = f.get("error") {
            return Err(format!("expected error {err}, but it succeeded"));
        }
        let got = state(&db, id);
        if got != f["expect"] {
            return Err(format!("expected {}\n   got      {got}", f["expect"]));
        }
        Ok(())
    }

    #[test]
    fn group_fixtures_leave_the_expected_membership() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut failures = Vec::new();
        let mut count = 0;
        for source in ["entra", "okta"] {
            let mut files: Vec<_> = std::fs::read_dir(root.join(source))
                .expect("dir")
                .map(|e| e.expect("entry").path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("group"))
                })
                .collect();
            files.sort();
            for file in files {
                count += 1;
                if let Err(why) = replay(&file) {
                    failures.push(format!("{}: {why}", file.display()));
                }
            }
        }
        assert!(count >= 20, "only {count} group fixtures");
        assert!(
            failures.is_empty(),
            "{} of {count} failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    fn ids(db: &Sqlite, filter: &str) -> Vec<String> {
        let f = parse(filter, &GROUP_TYPE).unwrap_or_else(|e| panic!("{filter}: {}", e.detail));
        let q = ListQuery {
            filter: Some(&f),
            sort_by: None,
            descending: false,
            start_index: 1,
            count: 100,
        };
        let (n, groups) = block_on(list(db, T, &q, false)).expect("list");
        assert_eq!(n as usize, groups.len());
        assert!(
            groups.iter().all(|g| g.members.is_none()),
            "members not read when not asked for"
        );
        groups.into_iter().map(|g| g.id).collect()
    }

    #[test]
    fn entra_group_queries() {
        let db = db(&json!({"displayName": "Sales", "members": ["u1", "u2"]}));
        assert_eq!(ids(&db, r#"displayName eq "sales""#), ["g1"]);
        assert_eq!(
            ids(&db, r#"displayName eq "7d420df3""#),
            Vec::<String>::new()
        );
        assert_eq!(ids(&db, r#"id eq "g1" and members eq "u1""#), ["g1"]);
        assert_eq!(
            ids(&db, r#"id eq "g1" and members eq "u3""#),
            Vec::<String>::new()
        );
        assert_eq!(ids(&db, r#"members[value eq "u2"]"#), ["g1"]);
        assert_eq!(ids(&db, r#"id eq "g1" and members[value eq "u2"]"#), ["g1"]);
        assert_eq!(ids(&db, r#"members[display eq "U1 DISPLAY"]"#), ["g1"]);
        assert_eq!(ids(&db, r#"members pr"#), ["g1"]);
        assert_eq!(ids(&db, r#"not (members pr)"#), ["g2"]);
        // The user side: groups[value eq …] and groups.value.
        let f = parse(r#"groups[value eq "g1"]"#, &USER_TYPE).expect("parse");
        let q = ListQuery {
            filter: Some(&f),
            sort_by: None,
            descending: false,
            start_index: 1,
            count: 10,
        };
        let (_, us) = block_on(users::list(&db, T, &q, true)).expect("list");
        assert_eq!(
            us.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            ["u1", "u2"]
        );
        assert_eq!(
            us[0].groups,
            vec![MemberRef {
                id: "g1".into(),
                kind: "direct".into(),
                display: Some("Sales".into())
            }]
        );
        for (filter, must_use) in [
            (r#"displayName eq "Sales""#, "groups_by_display_name_key"),
            (r#"externalId eq "x""#, "groups_by_external_id"),
            (
                r#"id eq "g1" and members eq "u1""#,
                "(tenant_id=? AND id=?)",
            ),
            (r#"members[value eq "u1"]"#, "memberships_by_member"),
        ] {
            let f = parse(filter, &GROUP_TYPE).expect("parse");
            let w = list_where(Table::Groups, T, Some(&f)).expect("where");
            let plan = db.plan(
                &format!("SELECT g.id FROM groups g WHERE {}", w.sql),
                &w.params,
            );
            assert!(
                plan.contains(must_use),
                "{filter}: plan does not use {must_use}:\n{plan}"
            );
            assert!(!plan.contains("SCAN g"), "{filter}: scans groups:\n{plan}");
            println!("{filter}\n{plan}");
        }
    }

    #[test]
    fn deleting_users_and_groups_removes_their_memberships() {
        let db = db(&json!({"displayName": "Sales", "members": ["u1", "u2"]}));
        let changes = vec![MemberChange::Add(vec![Member {
            id: "g2".into(),
            kind: "Group",
            display: None,
        }])];
        block_on(write(&db, T, "g1", 1, None, &changes, 40, "w5")).expect("nest");
        assert_eq!(
            block_on(get(&db, T, "g1", false))
                .expect("get")
                .expect("g1")
                .version,
            2
        );
        assert_eq!(
            block_on(users::delete(&db, T, "u1", None, 50)).expect("delete"),
            users::Delete::Deleted
        );
        assert_eq!(state(&db, "g1")["members"], json!(["g2", "u2"]));
        assert_eq!(
            block_on(get(&db, T, "g1", false))
                .expect("get")
                .expect("g1")
                .version,
            3,
            "member removal bumps the version"
        );
        assert!(block_on(delete(&db, T, "g2", None, 60)).expect("delete"));
        assert_eq!(state(&db, "g1")["members"], json!(["u2"]));
        assert!(block_on(delete(&db, T, "g1", Some(1), 70))
            .map(|d| !d)
            .expect("stale delete refused"));
        assert!(block_on(delete(&db, T, "g1", None, 70)).expect("delete"));
        assert_eq!(db.count("SELECT COUNT(*) FROM memberships"), 0);
        assert!(!block_on(delete(&db, T, "g1", None, 70)).expect("second delete"));
    }

    #[test]
    fn display_names_compare_with_unicode_case_folding() {
        let db = db(&json!({"displayName": "Équipe Straße", "members": []}));
        assert_eq!(ids(&db, r#"displayName eq "ÉQUIPE STRASSE""#), ["g1"]);
        assert_eq!(ids(&db, r#"displayName sw "équipe""#), ["g1"]);
        let e = block_on(insert(
            &db,
            T,
            "g3",
            json!({"displayName": "équipe strasse"})
                .as_object()
                .expect("object"),
            vec![],
            80,
            "w7",
        ))
        .expect_err("taken");
        assert_eq!((e.status, e.scim_type), (409, Some(ScimType::Uniqueness)));
    }

    #[test]
    fn renaming_onto_a_taken_display_name_is_409() {
        let db = db(&json!({"displayName": "Sales", "members": []}));
        let data = json!({"displayName": "MARKETING"});
        let e =
            block_on(write(&db, T, "g1", 1, data.as_object(), &[], 80, "w6")).expect_err("taken");
        assert_eq!((e.status, e.scim_type), (409, Some(ScimType::Uniqueness)));
        let e = block_on(insert(
            &db,
            T,
            "g3",
            data.as_object().expect("object"),
            vec![],
            80,
            "w7",
        ))
        .expect_err("taken");
        assert_eq!(e.status, 409);
    }

    #[test]
    fn a_group_larger_than_a_page_is_read_whole() {
        let db = db(&json!({"displayName": "Sales", "members": []}));
        let n = 2 * refs::PAGE + 1234;
        pollster::block_on(db.query(Stmt::new(
            format!(
                "INSERT INTO memberships (tenant_id, group_id, member_id, member_type) \
                 SELECT 'ten_a', 'g1', printf('m%06d', i), 'User' FROM \
                 (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) SELECT i FROM n)"
            ),
            vec![],
        )))
        .expect("seed");
        let g = block_on(get(&db, T, "g1", true)).expect("get").expect("g1");
        let members = g.members.expect("members");
        assert_eq!(members.len(), n);
        let distinct: std::collections::HashSet<&str> =
            members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(distinct.len(), n, "no member twice across pages");
        // A list page stops after the group that passes the budget (the page is short, and
        // says so by its length); the next page goes on from there.
        let page = |start_index| {
            let q = ListQuery {
                filter: None,
                sort_by: None,
                descending: false,
                start_index,
                count: 10,
            };
            let (total, listed) = block_on(list(&db, T, &q, true)).expect("list");
            let sizes: Vec<usize> = listed
                .iter()
                .map(|g| g.members.as_ref().map_or(0, Vec::len))
                .collect();
            (total, sizes)
        };
        assert_eq!(page(1), (2, vec![n]));
        assert_eq!(page(2), (2, vec![0]));
        let (total, without) = block_on(list(
            &db,
            T,
            &ListQuery {
                filter: None,
                sort_by: None,
                descending: false,
                start_index: 1,
                count: 10,
            },
            false,
        ))
        .expect("list");
        assert_eq!((total, without.len()), (2, 2), "no budget without members");
    }

    #[test]
    fn a_page_of_groups_stops_at_the_member_budget() {
        let db = db(&json!({"displayName": "Sales", "members": []}));
        // Three more groups of 4,000 members each: 12,000 > 10,000, so a page holds two.
        for g in ["g3", "g4", "g5"] {
            block_on(db.query(Stmt::new(
                format!(
                    "INSERT INTO groups (tenant_id, id, display_name, display_name_key, data, version, write_id, created_at, updated_at) \
                     VALUES ('ten_a', '{g}', '{g}', '{g}', '{{}}', 1, 'w', 100, 100)"
                ),
                vec![],
            )))
            .expect("group");
            block_on(db.query(Stmt::new(
                format!(
                    "INSERT INTO memberships (tenant_id, group_id, member_id, member_type) \
                     SELECT 'ten_a', '{g}', printf('m%06d', i), 'User' FROM \
                     (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) SELECT i FROM n)"
                ),
                vec![],
            )))
            .expect("members");
        }
        let q = ListQuery {
            filter: None,
            sort_by: None,
            descending: false,
            start_index: 3,
            count: 10,
        };
        let (total, listed) = block_on(list(&db, T, &q, true)).expect("list");
        let ids: Vec<&str> = listed.iter().map(|g| g.id.as_str()).collect();
        assert_eq!((total, ids), (5, vec!["g3", "g4"]));
        assert!(listed
            .iter()
            .all(|g| g.members.as_ref().map(Vec::len) == Some(4000)));
    }

    #[test]
    fn a_large_member_list_is_chunked_under_the_parameter_limit() {
        let db = db(&json!({"displayName": "Sales", "members": []}));
        let many: Vec<Member> = (0..500)
            .map(|i| Member {
                id: format!("x{i}"),
                kind: "User",
                display: None,
            })
            .collect();
        block_on(write(
            &db,
            T,
            "g1",
            1,
            None,
            &[MemberChange::Add(many)],
            90,
            "w8",
        ))
        .expect("add");
        assert_eq!(
            db.count("SELECT COUNT(*) FROM memberships WHERE group_id = 'g1'"),
            500
        );
        let remove: Vec<String> = (0..250).map(|i| format!("x{i}")).collect();
        block_on(write(
            &db,
            T,
            "g1",
            2,
            None,
            &[MemberChange::Remove(remove)],
            91,
            "w9",
        ))
        .expect("remove");
        assert_eq!(
            db.count("SELECT COUNT(*) FROM memberships WHERE group_id = 'g1'"),
            250
        );
    }
}
#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::store::sqlite::Sqlite;

    /// Resolving members and reading references are index seeks per id, not scans, however
    /// many ids travel in the JSON array.
    #[test]
    fn member_resolution_and_reference_pages_are_index_seeks() {
        let db = Sqlite::migrated();
        let kinds = kinds_stmt("t", &["a", "b"]);
        let plan = db.plan(&kinds.sql, &kinds.params);
        println!("{plan}");
        assert!(
            !plan.contains("SCAN users") && !plan.contains("SCAN groups"),
            "{plan}"
        );
        for refs in [Refs::Members, Refs::Groups] {
            let page = refs.page("t", &["a".into()], Some(&("a".into(), "b".into())));
            let plan = db.plan(&page.sql, &page.params);
            println!("{refs:?}\n{plan}");
            assert!(!plan.contains("SCAN m"), "{refs:?}: {plan}");
        }
    }
}
