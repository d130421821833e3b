//! SQL for moving a tenant's rows from one shard to another (the plan is
//! [`crate::service::moves`]'s).
//!
//! Rows travel as JSON: a chunk is read from the old shard as one JSON array (one statement,
//! a consistent snapshot) and written to the new one from that array bound as one parameter
//! (`json_each`), so a chunk costs two D1 calls whatever its width, within D1's 100 bound
//! parameters per statement. Every write is idempotent (`INSERT OR REPLACE` by primary key; a
//! copied event or log entry is unique by where it was first committed), so a chunk copied
//! twice, after a crash or by a retried driver, leaves one copy.

use crate::store::row::from_row;
use serde_json::Value;

use super::{Executor, Param, Result, Stmt, StoreError};

/// One table a tenant's rows are copied from, as far as copying needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    /// Every column but the tenant's id (and, for events and logs, `seq`).
    pub columns: &'static [&'static str],
    /// The chunk order (the primary key within the tenant).
    pub key: &'static [&'static str],
    /// Rows per chunk: a few hundred KB of JSON at most.
    pub chunk: i64,
}

pub const USERS: Table = Table {
    name: "users",
    columns: &[
        "id",
        "user_name",
        "external_id",
        "active",
        "manager_id",
        "data",
        "version",
        "write_id",
        "created_at",
        "updated_at",
        "user_name_key",
        "role",
        "role_source",
        "role_group",
        "role_tag",
        "write_changes",
    ],
    key: &["id"],
    chunk: 100,
};

/// A user's multi-valued attributes: copied with their user, never alone.
pub const USER_VALUES: Table = Table {
    name: "user_values",
    columns: &[
        "user_id",
        "attr",
        "value",
        "type",
        "display",
        "is_primary",
        "value_key",
    ],
    key: &["user_id"],
    chunk: 0,
};

pub const GROUPS: Table = Table {
    name: "groups",
    columns: &[
        "id",
        "display_name",
        "external_id",
        "data",
        "version",
        "write_id",
        "created_at",
        "updated_at",
        "display_name_key",
    ],
    key: &["id"],
    chunk: 200,
};

pub const MEMBERSHIPS: Table = Table {
    name: "memberships",
    columns: &["group_id", "member_id", "member_type", "display"],
    key: &["group_id", "member_id"],
    chunk: 1000,
};

pub const TOKENS: Table = Table {
    name: "tokens",
    columns: &[
        "id",
        "hash",
        "hint",
        "created_at",
        "last_used_at",
        "expires_at",
        "minted_by",
    ],
    key: &["id"],
    chunk: 100,
};

pub const OAUTH_CLIENTS: Table = Table {
    name: "oauth_clients",
    columns: &[
        "client_id",
        "issuer",
        "subject",
        "audience",
        "jwks_uri",
        "created_at",
        "updated_at",
    ],
    key: &["client_id"],
    chunk: 100,
};

pub const OAUTH_SECRETS: Table = Table {
    name: "oauth_secrets",
    columns: &[
        "id",
        "hash",
        "hint",
        "created_at",
        "expires_at",
        "last_used_at",
    ],
    key: &["id"],
    chunk: 100,
};

pub const OAUTH_ASSERTIONS: Table = Table {
    name: "oauth_assertions",
    columns: &["jti", "expires_at", "token_id"],
    key: &["jti"],
    chunk: 100,
};

pub const ROLE_MAPPINGS: Table = Table {
    name: "role_mappings",
    columns: &["group_id", "role"],
    key: &["group_id"],
    chunk: 500,
};

/// Alerts raised: their events travel with the feed; the rows say they are raised.
pub const ALERTS: Table = Table {
    name: "alerts",
    columns: &["kind", "raised_at", "detail"],
    key: &["kind"],
    chunk: 100,
};

/// Retired credentials' hashes: a request presenting one after the move still raises the
/// provisioning_failing alert.
pub const RETIRED_CREDENTIALS: Table = Table {
    name: "retired_credentials",
    columns: &["hash", "retired_at", "expires_at", "seen_at"],
    key: &["hash"],
    chunk: 100,
};

/// The tenant's counts of users and groups: copied for completeness (and so removed from the
/// old shard with the rest); the switch counts them again ([`recount`]).
pub const RESOURCE_COUNTS: Table = Table {
    name: "resource_counts",
    columns: &["kind", "n"],
    key: &["kind"],
    chunk: 100,
};

/// The statements that set tenant `tenant_id`'s counts of users and groups to what this shard
/// holds: at the switch, inside its freeze, after the last copy (a chunk copied again after a
/// failed round is `INSERT OR REPLACE`d, whose replaced rows fire no delete trigger, and would
/// be counted twice).
pub fn recount(tenant_id: &str) -> Vec<Stmt> {
    ["users", "groups"]
        .iter()
        .map(|table| {
            Stmt::new(
                format!(
                    "INSERT OR REPLACE INTO resource_counts (tenant_id, kind, n) \
                     SELECT ?1, '{table}', count(*) FROM {table} WHERE tenant_id = ?1"
                ),
                vec![tenant_id.into()],
            )
        })
        .collect()
}

pub const CONSOLE_LINKS: Table = Table {
    name: "console_links",
    columns: &["hash", "created_at", "expires_at"],
    key: &["hash"],
    chunk: 100,
};

pub const CONSOLE_SESSIONS: Table = Table {
    name: "console_sessions",
    columns: &["hash", "csrf", "created_at", "expires_at"],
    key: &["hash"],
    chunk: 100,
};

pub const EVENTS: Table = Table {
    name: "events",
    columns: &["type", "resource_id", "at", "data"],
    key: &["seq"],
    chunk: 100,
};

pub const LOGS: Table = Table {
    name: "logs",
    columns: &[
        "at",
        "method",
        "route",
        "resource_type",
        "resource_id",
        "resource_name",
        "status",
        "failed",
        "scim_type",
        "detail",
        "summary",
        "warnings",
        "duration_ms",
        "request_id",
        "refusal_key",
        "count",
    ],
    key: &["seq"],
    chunk: 200,
};

/// Whether a table's rows are appended in `seq` order (events, log entries): copied by seq
/// range, each copy keeping where it was first committed.
fn appended(t: &Table) -> bool {
    t.key == ["seq"]
}

/// `json_object('c', c, …)` of a table's columns (plus, for appended tables, where each row was
/// first committed: `origin` is the old shard's binding unless it already came from another).
fn row_json(t: &Table) -> String {
    let mut parts: Vec<String> = t.columns.iter().map(|c| format!("'{c}', {c}")).collect();
    if appended(t) {
        parts.push("'origin', coalesce(origin, ?)".into());
        parts.push("'origin_seq', coalesce(origin_seq, seq)".into());
    }
    for k in t.key {
        parts.push(format!("'k_{k}', {k}"));
    }
    format!("json_object({})", parts.join(", "))
}

/// What a chunk's read says: its rows (a JSON array), how many, and the last row's key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    pub rows: String,
    pub count: i64,
    /// Rows copied along with these (a chunk of users' values).
    pub along: i64,
    /// The last row's key, as a JSON array of its key columns (empty: no rows).
    pub last: Vec<Value>,
}

struct ChunkRow {
    rows: Option<String>,
    count: i64,
}
from_row!(ChunkRow { rows, count });

/// A read of `t`'s rows of tenant `tenant_id` after key `after` (empty: from the
/// start), at most `upto` in seq for appended tables, ordered by key, at most `limit`; `extra`
/// narrows it further (`AND …` with its parameters).
pub fn read_stmt(
    t: &Table,
    tenant_id: &str,
    origin: &str,
    after: &[Value],
    upto: Option<i64>,
    limit: i64,
    extra: Option<(&str, Vec<Param>)>,
) -> Stmt {
    let (rows, mut params) = chunk_rows(t, "*", tenant_id, after, upto, limit, extra);
    if appended(t) {
        params.insert(0, origin.into());
    }
    Stmt::new(
        format!(
            "SELECT json_group_array(json(j)) AS rows, count(*) AS count FROM (SELECT {} AS j \
             FROM ({rows}))",
            row_json(t)
        ),
        params,
    )
}

/// The rows of a chunk (`SELECT {what} FROM …`), with their parameters.
fn chunk_rows(
    t: &Table,
    what: &str,
    tenant_id: &str,
    after: &[Value],
    upto: Option<i64>,
    limit: i64,
    extra: Option<(&str, Vec<Param>)>,
) -> (String, Vec<Param>) {
    let mut params: Vec<Param> = vec![tenant_id.into()];
    let mut filter = String::new();
    if !after.is_empty() && after.len() == t.key.len() {
        let cols = t.key.join(", ");
        let marks = vec!["?"; t.key.len()].join(", ");
        filter.push_str(&format!(" AND ({cols}) > ({marks})"));
        for v in after {
            params.push(match v {
                Value::Number(n) => n.as_i64().unwrap_or(0).into(),
                Value::String(s) => s.as_str().into(),
                _ => Param::Null,
            });
        }
    }
    if let Some(upto) = upto {
        filter.push_str(" AND seq <= ?");
        params.push(upto.into());
    }
    if let Some((sql, more)) = extra {
        filter.push_str(sql);
        params.extend(more);
    }
    params.push(limit.into());
    let order = t.key.join(", ");
    (
        format!(
            "SELECT {what} FROM {} WHERE tenant_id = ?{filter} ORDER BY {order} LIMIT ?",
            t.name
        ),
        params,
    )
}

/// The chunk a [`read_stmt`] read.
pub fn chunk_of(out: super::Outcome, t: &Table) -> Result<Chunk> {
    let row: Option<ChunkRow> = out.first()?;
    let Some(row) = row else {
        return Ok(Chunk::default());
    };
    let rows = row.rows.unwrap_or_else(|| "[]".into());
    let parsed: Value = serde_json::from_str(&rows)
        .map_err(|e| StoreError::Other(format!("a chunk of {}: {e}", t.name)))?;
    let last = parsed
        .as_array()
        .and_then(|a| a.last())
        .map(|r| {
            t.key
                .iter()
                .map(|k| r.get(format!("k_{k}")).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .unwrap_or_default();
    Ok(Chunk {
        rows,
        count: row.count,
        along: 0,
        last,
    })
}

/// Write a chunk's rows into the new shard, for tenant `tenant_id`.
pub fn write_stmt(t: &Table, tenant_id: &str, rows: &str) -> Stmt {
    let mut cols: Vec<&str> = vec!["tenant_id"];
    cols.extend(t.columns.iter().copied());
    let mut values: Vec<String> = vec!["?".into()];
    values.extend(
        t.columns
            .iter()
            .map(|c| format!("json_each.value ->> '$.{c}'")),
    );
    if appended(t) {
        cols.extend(["origin", "origin_seq"]);
        values.push("json_each.value ->> '$.origin'".into());
        values.push("json_each.value ->> '$.origin_seq'".into());
    }
    // A copied event or log entry is unique by its origin: once, however often it is copied.
    let verb = if appended(t) {
        "INSERT OR IGNORE"
    } else {
        "INSERT OR REPLACE"
    };
    Stmt::new(
        format!(
            "{verb} INTO {} ({}) SELECT {} FROM json_each(?)",
            t.name,
            cols.join(", "),
            values.join(", ")
        ),
        vec![tenant_id.into(), rows.into()],
    )
}

/// Copy one chunk of `t` from `from` to `to`; returns the chunk (empty when nothing is left).
/// A chunk of users brings its users' values with it, in the same read and the same write.
#[allow(clippy::too_many_arguments)]
pub async fn copy_chunk<E: Executor>(
    from: &E,
    to: &E,
    t: &Table,
    tenant_id: &str,
    origin: &str,
    after: &[Value],
    upto: Option<i64>,
    extra: Option<(&str, Vec<Param>)>,
) -> Result<Chunk> {
    let read = read_stmt(t, tenant_id, origin, after, upto, t.chunk, extra.clone());
    if t.name != USERS.name {
        let chunk = chunk_of(from.query(read).await?, t)?;
        if chunk.count > 0 {
            to.query(write_stmt(t, tenant_id, &chunk.rows)).await?;
        }
        return Ok(chunk);
    }
    // The values of exactly the users of the chunk, read in the same snapshot.
    let (ids, ids_params) = chunk_rows(t, "id", tenant_id, after, upto, t.chunk, extra);
    let mut params: Vec<Param> = vec![tenant_id.into()];
    params.extend(ids_params);
    let values = Stmt::new(
        format!(
            "SELECT json_group_array(json(j)) AS rows, count(*) AS count FROM (SELECT {} AS j \
             FROM user_values WHERE tenant_id = ? AND user_id IN ({ids}))",
            row_json(&USER_VALUES)
        ),
        params,
    );
    let mut outs = from.batch(vec![read, values]).await?.into_iter();
    let users = chunk_of(outs.next().unwrap_or_default(), t)?;
    let values = chunk_of(outs.next().unwrap_or_default(), &USER_VALUES)?;
    if users.count > 0 {
        to.batch(vec![
            Stmt::new(
                "DELETE FROM user_values WHERE tenant_id = ? AND user_id IN \
                 (SELECT value ->> '$.id' FROM json_each(?))",
                vec![tenant_id.into(), users.rows.as_str().into()],
            ),
            write_stmt(t, tenant_id, &users.rows),
            write_stmt(&USER_VALUES, tenant_id, &values.rows),
        ])
        .await?;
    }
    Ok(Chunk {
        along: values.count,
        ..users
    })
}

/// The newest event and log entry of tenant `tenant_id` (0 when none): where a copy by
/// seq range stops.
pub async fn newest<E: Executor>(db: &E, tenant_id: &str) -> Result<(i64, i64)> {
    struct Row {
        events: Option<i64>,
        logs: Option<i64>,
    }
    from_row!(Row { events, logs });
    let row: Option<Row> = db
        .query(Stmt::new(
            "SELECT (SELECT max(seq) FROM events WHERE tenant_id = ?) AS events, \
             (SELECT max(seq) FROM logs WHERE tenant_id = ?) AS logs",
            vec![tenant_id.into(), tenant_id.into()],
        ))
        .await?
        .first()?;
    Ok(row.map_or((0, 0), |r| (r.events.unwrap_or(0), r.logs.unwrap_or(0))))
}

/// Every table of a tenant's rows besides its own row, in the order a move copies them
/// (its users' values travel with their users). New tables go last: a move in progress keeps
/// its step (an index here) across a deployment.
pub const TABLES: [&Table; 16] = [
    &USERS,
    &USER_VALUES,
    &GROUPS,
    &MEMBERSHIPS,
    &TOKENS,
    &CONSOLE_LINKS,
    &CONSOLE_SESSIONS,
    &EVENTS,
    &LOGS,
    &OAUTH_CLIENTS,
    &OAUTH_SECRETS,
    &OAUTH_ASSERTIONS,
    &ROLE_MAPPINGS,
    &ALERTS,
    &RETIRED_CREDENTIALS,
    &RESOURCE_COUNTS,
];

/// The tables copied again whole at the switch, inside its freeze: their rows change in place
/// (a token's last use, a secret's) or come and go, and they are small.
pub const SWITCHED: [&Table; 9] = [
    &TOKENS,
    &CONSOLE_LINKS,
    &CONSOLE_SESSIONS,
    &OAUTH_CLIENTS,
    &OAUTH_SECRETS,
    &OAUTH_ASSERTIONS,
    &ROLE_MAPPINGS,
    &ALERTS,
    &RETIRED_CREDENTIALS,
];

/// The seq of tenant `tenant_id`'s `n`-th event after seq `after`, if it has that many.
pub async fn nth_event_after<E: Executor>(
    db: &E,
    tenant_id: &str,
    after: i64,
    n: i64,
) -> Result<Option<i64>> {
    struct Row {
        seq: i64,
    }
    from_row!(Row { seq });
    let row: Option<Row> = db
        .query(Stmt::new(
            "SELECT seq FROM events WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT 1 OFFSET ?",
            vec![
                tenant_id.into(),
                after.into(),
                n.saturating_sub(1).max(0).into(),
            ],
        ))
        .await?
        .first()?;
    Ok(row.map(|r| r.seq))
}

/// How many rows of tenant `tenant_id` a shard holds, all tables together.
pub async fn rows_of<E: Executor>(db: &E, tenant_id: &str) -> Result<i64> {
    let sum: Vec<String> = TABLES
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {} WHERE tenant_id = ?1)", t.name))
        .collect();
    struct Row {
        n: i64,
    }
    from_row!(Row { n });
    let row: Option<Row> = db
        .query(Stmt::new(
            format!("SELECT {} AS n", sum.join(" + ")),
            vec![tenant_id.into()],
        ))
        .await?
        .first()?;
    Ok(row.map_or(0, |r| r.n))
}

/// The users and groups whose events of tenant `tenant_id` lie in seq range
/// `(after, upto]`: what changed there since (a group's member changes are the group's).
pub async fn changed<E: Executor>(
    db: &E,
    tenant_id: &str,
    after: i64,
    upto: i64,
) -> Result<(Vec<String>, Vec<String>)> {
    struct Row {
        resource_id: String,
        kind: String,
    }
    from_row!(Row { resource_id, kind });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT DISTINCT resource_id, substr(type, 1, instr(type, '.') - 1) AS kind \
             FROM events WHERE tenant_id = ? AND seq > ? AND seq <= ?",
            vec![tenant_id.into(), after.into(), upto.into()],
        ))
        .await?
        .decode()?;
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    for r in rows {
        match r.kind.as_str() {
            "user" => users.push(r.resource_id),
            _ => groups.push(r.resource_id),
        }
    }
    Ok((users, groups))
}

/// Remove from the new shard what it holds of these users (`users`) or groups (with their
/// memberships), before they are copied again as the old shard has them now.
pub fn forget_stmts(tenant_id: &str, users: &[String], groups: &[String]) -> Vec<Stmt> {
    let list = |ids: &[String]| Value::from(ids.to_vec()).to_string();
    let (u, g) = (list(users), list(groups));
    [
        ("users", "id", &u),
        ("memberships", "member_id", &u),
        ("groups", "id", &g),
        ("memberships", "group_id", &g),
    ]
    .into_iter()
    .map(|(table, column, ids)| {
        Stmt::new(
            format!(
                "DELETE FROM {table} WHERE tenant_id = ? AND {column} IN \
                 (SELECT value FROM json_each(?))"
            ),
            vec![tenant_id.into(), ids.as_str().into()],
        )
    })
    .collect()
}

/// Remove a tenant's rows of a table that is copied whole at the switch.
pub fn clear_stmt(t: &Table, tenant_id: &str, extra: &str) -> Stmt {
    Stmt::new(
        format!("DELETE FROM {} WHERE tenant_id = ?{extra}", t.name),
        vec![tenant_id.into()],
    )
}

/// The tenant's row as the new shard starts it: its old shard's, frozen (no write
/// reaches it) until the switch, `until` at the latest.
pub async fn arrive<E: Executor>(from: &E, to: &E, tenant_id: &str, until: i64) -> Result<()> {
    struct Row {
        subdomain: String,
        name: String,
        provisioning_enabled: i64,
        created_at: i64,
        updated_at: i64,
        roles: String,
        roles_version: i64,
        default_role: Option<String>,
    }
    from_row!(Row {
        subdomain,
        name,
        provisioning_enabled,
        created_at,
        updated_at,
        roles,
        roles_version,
        default_role
    });
    let row: Row = from
        .query(Stmt::new(
            "SELECT subdomain, name, provisioning_enabled, created_at, updated_at, roles, \
             roles_version, default_role FROM tenants WHERE id = ? AND deleted_at IS NULL",
            vec![tenant_id.into()],
        ))
        .await?
        .first()?
        .ok_or_else(|| StoreError::Gone("the organisation is no longer on its shard".into()))?;
    to.query(Stmt::new(
        "INSERT INTO tenants (id, subdomain, name, provisioning_enabled, created_at, updated_at, \
         frozen_until, roles, roles_version, default_role) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET \
         name = excluded.name, provisioning_enabled = excluded.provisioning_enabled, \
         updated_at = excluded.updated_at, frozen_until = excluded.frozen_until, \
         roles = excluded.roles, roles_version = excluded.roles_version, \
         default_role = excluded.default_role",
        vec![
            tenant_id.into(),
            row.subdomain.as_str().into(),
            row.name.as_str().into(),
            row.provisioning_enabled.into(),
            row.created_at.into(),
            row.updated_at.into(),
            until.into(),
            row.roles.into(),
            row.roles_version.into(),
            row.default_role.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Refuse the tenant's writes in this shard until `until` (`None`: accept them again).
/// With `if_until`, only while the freeze is still the one set then.
pub async fn freeze<E: Executor>(
    db: &E,
    tenant_id: &str,
    until: Option<i64>,
    if_until: Option<i64>,
) -> Result<bool> {
    let (cond, mut params): (&str, Vec<Param>) = (
        if if_until.is_some() {
            " AND frozen_until = ?"
        } else {
            ""
        },
        vec![until.into(), tenant_id.into()],
    );
    if let Some(t) = if_until {
        params.push(t.into());
    }
    let out = db
        .query(Stmt::new(
            format!(
                "UPDATE tenants SET frozen_until = ? WHERE id = ? AND deleted_at IS NULL{cond}"
            ),
            params,
        ))
        .await?;
    Ok(out.changes > 0)
}

/// The old shard lets the tenant go: unreachable there (as a deleted one is: its
/// subdomain freed, its rows purged in chunks by upkeep), noting where it went.
pub async fn depart<E: Executor>(db: &E, tenant_id: &str, to: &str, now: i64) -> Result<()> {
    db.query(Stmt::new(
        "UPDATE tenants SET deleted_at = ?, deleted_subdomain = subdomain, subdomain = id, \
         moved_to = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
        vec![now.into(), to.into(), now.into(), tenant_id.into()],
    ))
    .await?;
    Ok(())
}

/// A new shard gives up a copy that will not be used (a cancelled move): its rows are purged
/// by upkeep as a deleted tenant's are.
pub async fn abandon<E: Executor>(db: &E, tenant_id: &str, now: i64) -> Result<()> {
    db.query(Stmt::new(
        "UPDATE tenants SET deleted_at = ?, deleted_subdomain = subdomain, subdomain = id, \
         frozen_until = NULL, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
        vec![now.into(), now.into(), tenant_id.into()],
    ))
    .await?;
    Ok(())
}

/// Whether a shard holds a row of tenant `tenant_id` (live, arriving, or being purged).
pub async fn present<E: Executor>(db: &E, tenant_id: &str) -> Result<bool> {
    let out = db
        .query(Stmt::new(
            "SELECT 1 AS x FROM tenants WHERE id = ?",
            vec![tenant_id.into()],
        ))
        .await?;
    Ok(!out.rows.is_empty())
}
