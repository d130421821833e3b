//! Scheduled upkeep, in chunks that stay within D1's limits: every statement here deletes at
//! most [`CHUNK`] rows, picked by an index range with a `LIMIT`, so none runs long however large
//! the table or the tenant.
//!
//! - Retention: events and log entries older than their retention go, oldest first (their
//!   `seq` order is their time order, so the primary key finds them).
//! - The log cap: a tenant keeps its latest entries only, so that one noisy
//!   tenant cannot fill the database.
//! - Purging deleted tenants ([`super::tenants::delete_tenant`] made them unreachable):
//!   every row of theirs, table by table, then the tenant's row.

use crate::store::row::from_row;

use super::{Executor, Result, Stmt};

/// Most rows one statement deletes.
pub const CHUNK: i64 = 1_000;

/// The tables that hold a tenant's rows, in the order they are purged (rows that
/// reference others first; `user_values` would also go with its users by cascade).
const PURGED: &[(&str, &str)] = &[
    ("memberships", "tenant_id, group_id, member_id"),
    ("user_values", "rowid"),
    ("users", "rowid"),
    ("groups", "rowid"),
    ("events", "seq"),
    ("logs", "seq"),
    ("tokens", "rowid"),
    ("console_links", "rowid"),
    ("console_sessions", "rowid"),
    ("oauth_clients", "rowid"),
    ("oauth_secrets", "rowid"),
    ("oauth_assertions", "rowid"),
    ("role_mappings", "rowid"),
    ("role_pending", "rowid"),
    ("retired_credentials", "rowid"),
    ("resource_counts", "tenant_id, kind"),
];

/// Delete up to [`CHUNK`] rows of `table` (`events` or `logs`) older than `before`; returns how
/// many went.
pub async fn expire<E: Executor>(db: &E, table: &'static str, before: i64) -> Result<u64> {
    let out = db
        .query(Stmt::new(
            format!(
                "DELETE FROM {table} WHERE seq IN \
                 (SELECT seq FROM {table} WHERE at < ? ORDER BY seq LIMIT ?)"
            ),
            vec![before.into(), CHUNK.into()],
        ))
        .await?;
    Ok(out.changes)
}

/// Delete up to [`CHUNK`] expired rows of each table of short-lived secrets (console links
/// and sessions, access tokens, client secrets, remembered assertions, retired credentials'
/// hashes); returns how many went. A Secret Token has no `expires_at`, so it never matches.
/// An expired client secret is kept as retired first: an identity provider still presenting
/// it is failing.
pub async fn expire_lapsed<E: Executor>(db: &E, now: i64) -> Result<u64> {
    let retired = super::tenants::retire(
        "FROM oauth_secrets WHERE expires_at <= ?",
        now,
        vec![now.into()],
    );
    let stmts = [
        "console_links",
        "console_sessions",
        "tokens",
        "oauth_secrets",
        "oauth_assertions",
        "retired_credentials",
    ]
    .iter()
    .map(|table| {
        Stmt::new(
            format!(
                "DELETE FROM {table} WHERE rowid IN \
                     (SELECT rowid FROM {table} WHERE expires_at <= ? LIMIT ?)"
            ),
            vec![now.into(), CHUNK.into()],
        )
    })
    .collect::<Vec<_>>();
    let outs = db.batch([vec![retired], stmts].concat()).await?;
    Ok(outs.iter().skip(1).map(|o| o.changes).sum())
}

/// For each of these tenants, delete up to [`CHUNK`] of its oldest log entries beyond
/// its latest `keep`, in the log's order (the request's time, then seq), and up to [`CHUNK`]
/// of its oldest aggregated refusals beyond its latest `keep_refusals`, in one batch; returns
/// how many went. The two are capped apart: refusals cannot push a request's entry out.
pub async fn cap_logs<E: Executor>(
    db: &E,
    tenant_ids: &[String],
    keep: i64,
    keep_refusals: i64,
) -> Result<u64> {
    if tenant_ids.is_empty() {
        return Ok(0);
    }
    let mut stmts = Vec::with_capacity(tenant_ids.len().saturating_mul(2));
    for t in tenant_ids {
        for (kind, keep) in [("IS NULL", keep), ("IS NOT NULL", keep_refusals)] {
            stmts.push(Stmt::new(
                format!(
                    "DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE tenant_id = ? \
                     AND refusal_key {kind} AND (at, seq) <= (SELECT at, seq FROM logs \
                     WHERE tenant_id = ? AND refusal_key {kind} \
                     ORDER BY at DESC, seq DESC LIMIT 1 OFFSET ?) ORDER BY at, seq LIMIT ?)"
                ),
                vec![
                    t.as_str().into(),
                    t.as_str().into(),
                    keep.into(),
                    CHUNK.into(),
                ],
            ));
        }
    }
    Ok(db.batch(stmts).await?.iter().map(|o| o.changes).sum())
}

/// A page of tenant ids (live or being purged), in id order, after `after`.
pub async fn tenant_ids<E: Executor>(db: &E, after: &str, limit: i64) -> Result<Vec<String>> {
    struct Row {
        id: String,
    }
    from_row!(Row { id });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT id FROM tenants WHERE id > ? ORDER BY id LIMIT ?",
            vec![after.into(), limit.into()],
        ))
        .await?
        .decode()?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// A deleted tenant whose rows are still being purged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    pub id: String,
    pub subdomain: String,
    pub deleted_at: i64,
    /// Rows left: users, groups, memberships, values, events, log entries.
    pub remaining: i64,
}
from_row!(Purge {
    id,
    subdomain,
    deleted_at,
    remaining
});

fn remaining_sql() -> String {
    PURGED
        .iter()
        .map(|(table, _)| format!("(SELECT count(*) FROM {table} WHERE tenant_id = t.id)"))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The tenants being purged, with the rows each has left.
pub async fn pending<E: Executor>(db: &E) -> Result<Vec<Purge>> {
    db.query(Stmt::new(
        format!(
            "SELECT t.id, coalesce(t.deleted_subdomain, '') AS subdomain, t.deleted_at, \
             {} AS remaining FROM tenants t WHERE t.deleted_at IS NOT NULL ORDER BY t.deleted_at, t.id",
            remaining_sql()
        ),
        vec![],
    ))
    .await?
    .decode()
}

/// One round of a deleted tenant's purge (one batch): up to [`CHUNK`] rows of each of
/// its tables, and its row once nothing of it is left. Returns the rows left.
pub async fn purge_round<E: Executor>(db: &E, tenant_id: &str) -> Result<i64> {
    let mut stmts: Vec<Stmt> = PURGED
        .iter()
        .map(|(table, key)| {
            Stmt::new(
                format!(
                    "DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} \
                     WHERE tenant_id = ? LIMIT ?)"
                ),
                vec![tenant_id.into(), CHUNK.into()],
            )
        })
        .collect();
    let left = format!("(SELECT {} FROM tenants t WHERE t.id = ?)", remaining_sql());
    stmts.push(Stmt::new(
        format!("DELETE FROM tenants WHERE id = ? AND deleted_at IS NOT NULL AND {left} = 0"),
        vec![tenant_id.into(), tenant_id.into()],
    ));
    stmts.push(Stmt::new(
        format!("SELECT coalesce({left}, 0) AS remaining"),
        vec![tenant_id.into()],
    ));
    struct Row {
        remaining: i64,
    }
    from_row!(Row { remaining });
    let outs = db.batch(stmts).await?;
    Ok(match outs.into_iter().last() {
        Some(o) => o.first::<Row>()?.map_or(0, |r| r.remaining),
        None => 0,
    })
}
