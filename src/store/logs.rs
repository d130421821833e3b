//! The provisioning log's other statements: an entry written on its own (reads, refusals,
//! failures, writes that changed nothing; a write's entry rides in its batch, see
//! [`super::trail`]), pages of entries newest first, and an organisation's summary.

use serde::{Deserialize, Serialize};

use super::trail::LogEntry;
use super::{Executor, Param, Stmt};
use crate::scim::error::Result;

/// Write one entry.
pub async fn insert<E: Executor>(db: &E, tenant_id: &str, e: &LogEntry) -> Result<()> {
    db.query(Stmt::new(
        "INSERT INTO logs (tenant_id, at, method, route, resource_type, resource_id, resource_name, \
         status, failed, scim_type, detail, summary, warnings, duration_ms, request_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            tenant_id.into(),
            e.at.into(),
            e.method.as_str().into(),
            e.route.as_str().into(),
            e.resource_type.into(),
            e.resource_id.clone().into(),
            e.resource_name.clone().into(),
            i64::from(e.status).into(),
            (e.status >= 400).into(),
            e.scim_type.clone().into(),
            e.detail.clone().into(),
            e.summary.clone().into(),
            e.warnings_json(),
            e.duration_ms.into(),
            e.request_id.clone().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Which entries a log page reads, newest first.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// The seq the previous page ended with: this page holds older entries.
    pub before: Option<i64>,
    /// Only failures (`Some(true)`) or only successes (`Some(false)`).
    pub failed: Option<bool>,
    pub resource_id: Option<String>,
    pub limit: u32,
}

/// One stored entry, as the admin API returns it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StoredLog {
    pub seq: i64,
    pub at: i64,
    pub method: String,
    pub route: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub status: i64,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub summary: Option<String>,
    pub warnings: Option<String>,
    pub duration_ms: Option<i64>,
    pub request_id: Option<String>,
}

/// A page of an organisation's entries, newest first, and whether older ones follow.
pub async fn read<E: Executor>(
    db: &E,
    tenant_id: &str,
    q: &LogQuery,
) -> Result<(Vec<StoredLog>, bool)> {
    let mut sql = String::from(
        "SELECT seq, at, method, route, resource_type, resource_id, resource_name, status, \
         scim_type, detail, summary, warnings, duration_ms, request_id FROM logs \
         WHERE tenant_id = ?",
    );
    let mut params: Vec<Param> = vec![tenant_id.into()];
    if let Some(before) = q.before {
        sql.push_str(" AND seq < ?");
        params.push(before.into());
    }
    if let Some(failed) = q.failed {
        sql.push_str(" AND failed = ?");
        params.push(failed.into());
    }
    if let Some(id) = &q.resource_id {
        sql.push_str(" AND resource_id = ?");
        params.push(id.as_str().into());
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    params.push(i64::from(q.limit).saturating_add(1).into());
    let mut rows: Vec<StoredLog> = db.query(Stmt::new(sql, params)).await?.decode()?;
    let more = rows.len() > q.limit as usize;
    rows.truncate(q.limit as usize);
    Ok((rows, more))
}

/// What an organisation's admin sees first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Summary {
    pub users_active: i64,
    pub users_inactive: i64,
    pub groups: i64,
    pub last_request: Option<i64>,
    pub last_success: Option<i64>,
    pub last_failure: Option<i64>,
    pub requests_24h: i64,
    pub failures_24h: i64,
}

/// The organisation's counts and the log's last times and 24-hour counts, since `since`.
pub async fn summary<E: Executor>(db: &E, tenant_id: &str, since: i64) -> Result<Summary> {
    let last = |failed: &str| {
        format!("(SELECT at FROM logs WHERE tenant_id = ?1{failed} ORDER BY seq DESC LIMIT 1)")
    };
    let sql = format!(
        "SELECT (SELECT count(*) FROM users WHERE tenant_id = ?1 AND active = 1) AS users_active, \
         (SELECT count(*) FROM users WHERE tenant_id = ?1 AND active = 0) AS users_inactive, \
         (SELECT count(*) FROM groups WHERE tenant_id = ?1) AS groups, \
         {} AS last_request, {} AS last_success, {} AS last_failure, \
         (SELECT count(*) FROM logs WHERE tenant_id = ?1 AND at >= ?2) AS requests_24h, \
         (SELECT count(*) FROM logs WHERE tenant_id = ?1 AND failed = 1 AND at >= ?2) AS failures_24h",
        last(""),
        last(" AND failed = 0"),
        last(" AND failed = 1"),
    );
    let row = db
        .query(Stmt::new(sql, vec![tenant_id.into(), since.into()]))
        .await?
        .first::<Summary>()?;
    Ok(row.unwrap_or(Summary {
        users_active: 0,
        users_inactive: 0,
        groups: 0,
        last_request: None,
        last_success: None,
        last_failure: None,
        requests_24h: 0,
        failures_24h: 0,
    }))
}
