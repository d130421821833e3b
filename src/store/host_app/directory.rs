//! The directory shape: users and groups as the host app reads them (plain JSON, camelCase, no
//! SCIM envelope), built by SQL from the stored row so that one definition serves both the
//! directory API's reads and the change feed, whose events are written by `INSERT … SELECT` in
//! the batch of the change itself (see [`crate::store::trail`]).
//!
//! A user: `{id, externalId, userName, displayName, name, emails, active, role, roleSource,
//! roles, groups: [{id, displayName}], createdAt, updatedAt}`, where `role` is the user's
//! effective role ([`crate::store::roles`]) or null, and `roleSource` says where it came from:
//! `{"type": "attribute"}` (the primary `roles` value, what an app maps from Entra's
//! `roles[primary eq "True"].value`), `{"type": "group", "groupId"}` or `{"type": "default"}`.
//! A group: `{id, externalId, displayName, createdAt, updatedAt}`; its members are read page by
//! page ([`members`]), never inlined, so that a group of 100,000 stays cheap.

use crate::store::row::from_row;
use serde_json::Value;

use crate::store::{Executor, Param, Result, Stmt, StoreError};

use scim_core::scim::fold::fold;

/// An instant column (Unix milliseconds) as `YYYY-MM-DDTHH:MM:SS.mmmZ`, like `time::rfc3339`.
/// Integer arithmetic throughout, so the milliseconds are exact.
pub(crate) fn instant(column: &str) -> String {
    format!(
        "(strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000, 'unixepoch') || printf('.%03dZ', {column} % 1000))"
    )
}

/// The directory shape of the user row aliased `u`, as a JSON value expression. Its role is
/// the stored effective role, which every cause of a change brings up to date in its own batch.
pub(crate) fn user_json() -> String {
    format!(
        "json_object('id', u.id, 'externalId', u.external_id, 'userName', u.user_name, \
         'displayName', u.data ->> '$.displayName', 'name', u.data -> '$.name', \
         'emails', coalesce(u.data -> '$.emails', json('[]')), \
         'active', json(CASE WHEN u.active THEN 'true' ELSE 'false' END), \
         'role', u.role, \
         'roleSource', json(CASE WHEN u.role_source = 'group' \
           THEN json_object('type', 'group', 'groupId', u.role_group) \
           WHEN u.role_source IS NOT NULL THEN json_object('type', u.role_source) END), \
         'roles', coalesce(u.data -> '$.roles', json('[]')), \
         'groups', (SELECT json_group_array(json_object('id', x.id, 'displayName', x.display_name)) \
           FROM (SELECT gm.id, gm.display_name FROM memberships m JOIN groups gm \
           ON gm.tenant_id = m.tenant_id AND gm.id = m.group_id \
           WHERE m.tenant_id = u.tenant_id AND m.member_id = u.id ORDER BY m.group_id) x), \
         'createdAt', {}, 'updatedAt', {})",
        instant("u.created_at"),
        instant("u.updated_at")
    )
}

/// The directory shape of the group row aliased `g`, as a JSON value expression.
pub(crate) fn group_json() -> String {
    format!(
        "json_object('id', g.id, 'externalId', g.external_id, 'displayName', g.display_name, \
         'createdAt', {}, 'updatedAt', {})",
        instant("g.created_at"),
        instant("g.updated_at")
    )
}

/// Most rows one directory page returns.
pub const MAX_PAGE: u32 = 1_000;
/// Rows a page returns when the caller does not say.
pub const DEFAULT_PAGE: u32 = 100;

/// Which users a directory page lists.
#[derive(Debug, Default, Clone)]
pub struct UserQuery {
    pub active: Option<bool>,
    /// Exact userName, compared with Unicode case folding (as SCIM compares it).
    pub user_name: Option<String>,
    /// The id the previous page ended with.
    pub after: Option<String>,
    pub limit: u32,
}

/// A page of items in key order, and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Value>,
    /// The key (id, or seq) to pass as `after` for the next page, when there is one.
    pub next: Option<String>,
}

struct Row {
    id: String,
    j: String,
}
from_row!(Row { id, j });

/// Decode rows `(id, j)` read with one row more than `limit`: the JSON items, and the cursor.
pub(crate) fn page(out: crate::store::Outcome, limit: u32) -> Result<Page> {
    let mut rows: Vec<Row> = out.decode()?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|r| serde_json::from_str(&r.j))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| StoreError::Other(format!("JSON row: {e}")))?;
    Ok(Page { items, next })
}

/// A page of the tenant's users in id order (a primary-key range seek).
pub async fn users<E: Executor>(db: &E, tenant_id: &str, q: &UserQuery) -> Result<Page> {
    let mut sql = format!(
        "SELECT u.id, {} AS j FROM users u WHERE u.tenant_id = ? AND u.id > ?",
        user_json()
    );
    let mut params: Vec<Param> = vec![tenant_id.into(), q.after.clone().unwrap_or_default().into()];
    if let Some(active) = q.active {
        sql.push_str(" AND u.active = ?");
        params.push(active.into());
    }
    if let Some(name) = &q.user_name {
        sql.push_str(" AND u.user_name_key = ?");
        params.push(fold(name).into());
    }
    sql.push_str(" ORDER BY u.id LIMIT ?");
    params.push(i64::from(q.limit).saturating_add(1).into());
    page(db.query(Stmt::new(sql, params)).await?, q.limit)
}

/// A page of the tenant's groups in id order.
pub async fn groups<E: Executor>(
    db: &E,
    tenant_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Page> {
    let sql = format!(
        "SELECT g.id, {} AS j FROM groups g WHERE g.tenant_id = ? AND g.id > ? ORDER BY g.id LIMIT ?",
        group_json()
    );
    let params = vec![
        tenant_id.into(),
        after.unwrap_or_default().into(),
        i64::from(limit).saturating_add(1).into(),
    ];
    page(db.query(Stmt::new(sql, params)).await?, limit)
}

/// One user or group in the directory shape.
pub async fn one<E: Executor>(
    db: &E,
    tenant_id: &str,
    group: bool,
    id: &str,
) -> Result<Option<Value>> {
    let sql = if group {
        format!(
            "SELECT g.id, {} AS j FROM groups g WHERE g.tenant_id = ? AND g.id = ?",
            group_json()
        )
    } else {
        format!(
            "SELECT u.id, {} AS j FROM users u WHERE u.tenant_id = ? AND u.id = ?",
            user_json()
        )
    };
    let out = db
        .query(Stmt::new(sql, vec![tenant_id.into(), id.into()]))
        .await?;
    Ok(page(out, 1)?.items.into_iter().next())
}

/// A page of a group's members in id order (a primary-key range seek of `memberships`):
/// `{id, type, userName}` for a user, `{id, type, displayName}` for a group. `None` when the
/// group does not exist.
pub async fn members<E: Executor>(
    db: &E,
    tenant_id: &str,
    group_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Option<Page>> {
    let exists = Stmt::new(
        "SELECT 1 AS e FROM groups WHERE tenant_id = ? AND id = ?",
        vec![tenant_id.into(), group_id.into()],
    );
    let list = Stmt::new(
        "SELECT m.member_id AS id, CASE m.member_type \
         WHEN 'User' THEN json_object('id', m.member_id, 'type', 'User', 'userName', \
           (SELECT user_name FROM users WHERE tenant_id = m.tenant_id AND id = m.member_id)) \
         ELSE json_object('id', m.member_id, 'type', 'Group', 'displayName', \
           (SELECT display_name FROM groups WHERE tenant_id = m.tenant_id AND id = m.member_id)) \
         END AS j FROM memberships m WHERE m.tenant_id = ? AND m.group_id = ? AND m.member_id > ? \
         ORDER BY m.member_id LIMIT ?",
        vec![
            tenant_id.into(),
            group_id.into(),
            after.unwrap_or_default().into(),
            i64::from(limit).saturating_add(1).into(),
        ],
    );
    let mut outs = db.batch(vec![exists, list]).await?.into_iter();
    if outs.next().is_none_or(|o| o.rows.is_empty()) {
        return Ok(None);
    }
    match outs.next() {
        Some(out) => page(out, limit).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::Sqlite;
    use pollster::block_on;
    use scim_core::time::rfc3339;

    #[test]
    fn sql_instants_read_like_the_workers() {
        let db = Sqlite::migrated();
        for ms in [
            0,
            999,
            1_000,
            1_764_000_000_123,
            1_764_003_599_999,
            253_402_300_799_999,
        ] {
            let out = block_on(db.query(Stmt::new(
                format!("SELECT {} AS t", instant("?")),
                vec![ms.into(), ms.into()],
            )))
            .expect("query");
            assert_eq!(out.rows[0]["t"], Value::String(rfc3339(ms)), "{ms}");
        }
    }

    /// The backticked keys of the README's sentence that starts with `intro` (up to its
    /// closing `}`), outer keys only.
    fn readme_keys(intro: &str) -> Vec<String> {
        let readme = include_str!("../../../README.md");
        let text = readme
            .split(intro)
            .nth(1)
            .expect("the README describes the shape");
        let (mut depth, mut keys, mut shape) = (0, Vec::new(), String::new());
        for c in text.chars() {
            match c {
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                _ => {}
            }
            if depth == 0 && c == '}' {
                break;
            }
            if depth == 1 {
                shape.push(c);
            }
        }
        for (i, part) in shape.split('"').enumerate() {
            if i % 2 == 1 {
                keys.push(part.to_string());
            }
        }
        keys.sort();
        keys
    }

    fn keys_of(v: &Value) -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn the_readme_tells_the_shapes_the_sql_makes() {
        let db = crate::store::fixture::seeded(&serde_json::json!({
            "displayName": "Sales", "members": ["u1"]
        }));
        let q = UserQuery {
            active: None,
            user_name: None,
            after: None,
            limit: 1,
        };
        let users = block_on(users(&db, crate::store::fixture::T, &q)).expect("users");
        assert_eq!(keys_of(&users.items[0]), readme_keys("A user is `"));
        let groups = block_on(groups(&db, crate::store::fixture::T, None, 1)).expect("groups");
        assert_eq!(keys_of(&groups.items[0]), readme_keys("A\ngroup is `"));
    }
}
