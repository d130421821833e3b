//! Reading the change feed. Events are written by the changes themselves ([`super::trail`],
//! [`super::memberships`]); this module only reads them, in `seq` order.
//!
//! Why a cursor never misses or repeats an event: `seq` is assigned inside the write's own
//! transaction and D1 runs one write at a time, so seqs become visible in increasing order; a
//! reader that has seen seq `n` has seen every committed event below it, and `seq > n` resumes
//! exactly after it.

use serde::Deserialize;
use serde_json::Value;

use super::{Executor, Param, Stmt};
use crate::scim::error::{Error, Result};

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

/// One stored event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub tenant_id: String,
    /// The organisation's subdomain (none once it is deleted).
    pub subdomain: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub resource_id: String,
    pub at: i64,
    #[serde(deserialize_with = "json_text")]
    pub data: Value,
}

fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Value, D::Error> {
    let s = String::deserialize(d)?;
    serde_json::from_str(&s).map_err(serde::de::Error::custom)
}

/// A page of events in commit order, one more than `limit` read to tell whether more follow.
pub async fn read<E: Executor>(db: &E, q: &FeedQuery) -> Result<(Vec<StoredEvent>, bool)> {
    let mut sql = String::from(
        "SELECT e.seq, e.tenant_id, CASE WHEN t.deleted_at IS NULL THEN t.subdomain END AS subdomain, \
         e.type, e.resource_id, e.at, e.data FROM events e LEFT JOIN tenants t ON t.id = e.tenant_id \
         WHERE e.seq > ?",
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
    let mut rows: Vec<StoredEvent> = db
        .query(Stmt::new(sql, params))
        .await?
        .decode()
        .map_err(|e| Error::internal(format!("event: {}", e.detail)))?;
    let more = rows.len() > q.limit as usize;
    rows.truncate(q.limit as usize);
    Ok((rows, more))
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
