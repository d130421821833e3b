//! Reading the change feed. Events are written by the changes themselves ([`super::trail`],
//! [`super::memberships`]); this module only reads them, in `seq` order, rendered by SQL as
//! the API returns them (`{cursor, type, organisation, at, resourceId, data}`).
//!
//! Why a cursor never misses or repeats an event: `seq` is assigned inside the write's own
//! transaction and D1 runs one write at a time, so seqs become visible in increasing order; a
//! reader that has seen seq `n` has seen every committed event below it, and `seq > n` resumes
//! exactly after it.

use serde::Deserialize;
use serde_json::Value;

use super::directory::{instant, page, Page};
use super::{Executor, Param, Stmt};
use crate::scim::error::Result;

/// Which events a feed page reads.
#[derive(Debug, Clone, Default)]
pub struct FeedQuery {
    /// One organisation's, or every organisation's when `None`.
    pub tenant_id: Option<String>,
    /// The seq the previous page ended with (0: from the oldest kept).
    pub after: i64,
    /// Only these types (all when empty).
    pub types: Vec<String>,
    pub limit: u32,
}

/// A page of events in commit order; `next` (the last event's cursor) when more follow.
pub async fn read<E: Executor>(db: &E, q: &FeedQuery) -> Result<Page> {
    let mut sql = format!(
        "SELECT CAST(e.seq AS TEXT) AS id, json_object('cursor', CAST(e.seq AS TEXT), \
         'type', e.type, 'organisation', json_object('id', e.tenant_id, \
         'subdomain', CASE WHEN t.deleted_at IS NULL THEN t.subdomain END), \
         'at', {}, 'resourceId', e.resource_id, 'data', json(e.data)) AS j \
         FROM events e LEFT JOIN tenants t ON t.id = e.tenant_id WHERE e.seq > ?",
        instant("e.at")
    );
    let mut params: Vec<Param> = vec![q.after.into()];
    if let Some(t) = &q.tenant_id {
        sql.push_str(" AND e.tenant_id = ?");
        params.push(t.as_str().into());
    }
    if !q.types.is_empty() {
        sql.push_str(" AND e.type IN (SELECT value FROM json_each(?))");
        params.push(Value::from(q.types.clone()).to_string().into());
    }
    sql.push_str(" ORDER BY e.seq LIMIT ?");
    params.push(i64::from(q.limit).saturating_add(1).into());
    page(db.query(Stmt::new(sql, params)).await?, q.limit)
}

/// The newest seq, or 0 when there are none (where a new consumer that wants only what comes
/// next starts).
pub async fn latest<E: Executor>(db: &E, tenant_id: Option<&str>) -> Result<i64> {
    #[derive(Deserialize)]
    struct Row {
        seq: Option<i64>,
    }
    let stmt = match tenant_id {
        Some(t) => Stmt::new(
            "SELECT max(seq) AS seq FROM events WHERE tenant_id = ?",
            vec![t.into()],
        ),
        None => Stmt::new("SELECT max(seq) AS seq FROM events", vec![]),
    };
    Ok(db
        .query(stmt)
        .await?
        .first::<Row>()?
        .and_then(|r| r.seq)
        .unwrap_or(0))
}
