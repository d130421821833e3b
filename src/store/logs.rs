//! The provisioning log's other statements: entries written on their own (reads, failures,
//! writes that changed nothing, gathered by the edge; a write's entry rides in its batch, see
//! [`super::trail`]), refused authentication added to its aggregated entries ([`Refusals`]),
//! pages of entries newest first, and a tenant's summary, both rendered by SQL as the
//! API returns them.

use serde::Deserialize;
use serde_json::Value;

use super::directory::{instant, page, Page};
use super::trail::LogEntry;
use super::{Executor, Param, Result, Stmt, StoreError};

/// The statement that writes entries of one tenant, in order (they travel as one JSON
/// array, so any number stays within D1's 100 bound parameters); `None` for no entries.
pub fn insert_stmt(tenant_id: &str, entries: &[LogEntry]) -> Option<Stmt> {
    if entries.is_empty() {
        return None;
    }
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!([
                e.at,
                e.method,
                e.route,
                e.resource_type,
                e.resource_id,
                e.resource_name,
                e.status,
                e.status >= 400,
                e.scim_type,
                e.detail,
                e.summary,
                (!e.warnings.is_empty()).then(|| Value::from(e.warnings.clone()).to_string()),
                e.duration_ms,
                e.request_id,
            ])
        })
        .collect();
    Some(Stmt::new(
        format!(
            "INSERT INTO logs (tenant_id, at, method, route, resource_type, resource_id, \
             resource_name, status, failed, scim_type, detail, summary, warnings, duration_ms, \
             request_id) SELECT ?, {} FROM json_each(?) j WHERE {LIVE} ORDER BY j.key",
            columns(14)
        ),
        vec![
            tenant_id.into(),
            Value::Array(rows).to_string().into(),
            tenant_id.into(),
        ],
    ))
}

/// Entries written after their responses land only where their tenant still lives (one
/// parameter, its id): on the shard it has just left, they change nothing, and the writer finds
/// where it went (`http::log_buffer`).
const LIVE: &str = "EXISTS (SELECT 1 FROM tenants WHERE id = ? AND deleted_at IS NULL)";

/// Refused requests of one tenant from one client address, in one minute, for one
/// reason: the aggregated entry that stands for all of them (`migrations/0008_refusals.sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusals {
    /// When the first of them came, Unix milliseconds: the entry's time.
    pub at: i64,
    /// The start of their minute, Unix milliseconds.
    pub minute: i64,
    /// The client's address as Cloudflare gives it (IP address characters only, or `unknown`).
    pub address: String,
    /// A short key of the reason (`no-token`, `invalid-token`, `over-budget`).
    pub reason: &'static str,
    /// The reason in words, for the admin.
    pub words: &'static str,
    pub status: u16,
    /// The method and the route template of the latest such request (never its raw path).
    pub method: String,
    pub route: &'static str,
    pub count: u64,
}

/// The statement that adds refusals to their aggregated entries, creating each entry on its
/// minute's first refusal (a JSON array, like [`insert_stmt`]); `None` for no refusals.
pub fn refusals_stmt(tenant_id: &str, all: &[Refusals]) -> Option<Stmt> {
    if all.is_empty() {
        return None;
    }
    let rows: Vec<Value> = all
        .iter()
        .map(|r| {
            serde_json::json!([
                r.at,
                r.method,
                r.route,
                r.status,
                r.words,
                format!(" from {}: {}", r.address, r.words),
                format!("{}|{}|{}", r.minute, r.address, r.reason),
                r.count,
            ])
        })
        .collect();
    // A WHERE (here {LIVE}) is what SQLite's parser needs between a SELECT and an upsert's
    // ON CONFLICT.
    Some(Stmt::new(
        format!(
            "INSERT INTO logs (tenant_id, at, method, route, status, detail, summary, \
             refusal_key, count, failed, duration_ms) SELECT ?, {}, 1, 0 FROM json_each(?) j \
             WHERE {LIVE} ON CONFLICT (tenant_id, refusal_key) \
             WHERE refusal_key IS NOT NULL DO UPDATE SET count = logs.count + excluded.count, \
             method = excluded.method, route = excluded.route",
            columns(8)
        ),
        vec![
            tenant_id.into(),
            Value::Array(rows).to_string().into(),
            tenant_id.into(),
        ],
    ))
}

/// The first `n` elements of each row of a JSON array of rows (`j`, from `json_each`), as
/// the columns of a SELECT.
fn columns(n: usize) -> String {
    (0..n)
        .map(|i| format!("j.value ->> '$[{i}]'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which entries a log page reads, newest first (by the request's time, then by seq).
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// The (time, seq) the previous page ended with: this page holds older entries.
    pub before: Option<(i64, i64)>,
    /// Only failures (`Some(true)`) or only successes (`Some(false)`).
    pub failed: Option<bool>,
    pub resource_id: Option<String>,
    pub limit: u32,
}

/// An entry's summary: its own, or for an aggregated refusal the count before its words.
const SUMMARY: &str = "CASE WHEN refusal_key IS NULL THEN summary ELSE 'Refused ' || count || \
     CASE count WHEN 1 THEN ' request' ELSE ' requests' END || summary END";

/// A page of a tenant's entries, newest first, rendered by SQL as the API returns them;
/// `next` (the last entry's cursor) when older ones follow.
pub async fn read<E: Executor>(db: &E, tenant_id: &str, q: &LogQuery) -> Result<Page> {
    let mut sql = format!(
        "SELECT at || '-' || seq AS id, json_object('cursor', at || '-' || seq, 'at', {}, \
         'method', method, 'route', route, 'resourceType', resource_type, \
         'resourceId', resource_id, 'resourceName', resource_name, 'status', status, \
         'outcome', CASE WHEN failed THEN 'failure' ELSE 'success' END, 'scimType', scim_type, \
         'detail', detail, 'summary', {SUMMARY}, 'count', coalesce(count, 1), \
         'warnings', json(coalesce(warnings, '[]')), \
         'durationMs', duration_ms, 'requestId', request_id) AS j FROM logs WHERE tenant_id = ?",
        instant("at")
    );
    let mut params: Vec<Param> = vec![tenant_id.into()];
    if let Some((at, seq)) = q.before {
        sql.push_str(" AND (at, seq) < (?, ?)");
        params.extend([at.into(), seq.into()]);
    }
    if let Some(failed) = q.failed {
        sql.push_str(" AND failed = ?");
        params.push(failed.into());
    }
    if let Some(id) = &q.resource_id {
        sql.push_str(" AND resource_id = ?");
        params.push(id.as_str().into());
    }
    sql.push_str(" ORDER BY at DESC, seq DESC LIMIT ?");
    params.push(i64::from(q.limit).saturating_add(1).into());
    page(db.query(Stmt::new(sql, params)).await?, q.limit)
}

/// What a tenant's admin sees first: users (active and inactive), groups, the last
/// request, success and failure, and the requests and failures since `since` (a day ago), as
/// the API returns it.
pub async fn summary<E: Executor>(db: &E, tenant_id: &str, since: i64) -> Result<Value> {
    let last = |failed: &str| {
        let at = instant("at");
        format!(
            "(SELECT {at} FROM logs WHERE tenant_id = ?1{failed} ORDER BY at DESC, seq DESC LIMIT 1)"
        )
    };
    let sql = format!(
        "SELECT json_object('users', json_object(\
         'active', (SELECT count(*) FROM users WHERE tenant_id = ?1 AND active = 1), \
         'inactive', (SELECT count(*) FROM users WHERE tenant_id = ?1 AND active = 0)), \
         'groups', (SELECT count(*) FROM groups WHERE tenant_id = ?1), \
         'lastRequestAt', {}, 'lastSuccessAt', {}, 'lastFailureAt', {}, \
         'last24h', json_object(\
         'requests', (SELECT coalesce(sum(coalesce(count, 1)), 0) FROM logs WHERE tenant_id = ?1 AND at >= ?2), \
         'failures', (SELECT coalesce(sum(coalesce(count, 1)), 0) FROM logs WHERE tenant_id = ?1 AND failed = 1 AND at >= ?2))) AS j",
        last(""),
        last(" AND failed = 0"),
        last(" AND failed = 1"),
    );
    #[derive(Deserialize)]
    struct Row {
        j: String,
    }
    let row = db
        .query(Stmt::new(sql, vec![tenant_id.into(), since.into()]))
        .await?
        .first::<Row>()?
        .ok_or_else(|| StoreError::Other("the summary gave no row".into()))?;
    serde_json::from_str(&row.j).map_err(|e| StoreError::Other(format!("summary: {e}")))
}
