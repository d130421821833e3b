//! The provisioning log's other statements: entries written on their own (reads, failures,
//! writes that changed nothing, gathered by the edge; a write's entry rides in its batch, see
//! [`crate::store::trail`]), refused authentication added to its aggregated entries ([`Refusals`]),
//! pages of entries newest first, and a tenant's summary, both rendered by SQL as the
//! API returns them.

use crate::store::row::from_row;
use serde_json::Value;

use crate::store::directory::{instant, page, Page};
use crate::store::{Executor, Param, Result, Stmt, StoreError};

/// One provisioning-log entry. Never a token, a request body, or an attribute value other
/// than the resource's name (userName or displayName).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogEntry {
    pub at: i64,
    pub method: String,
    /// The path below the SCIM root, with the resource id, without the query string.
    pub route: String,
    pub resource_type: Option<&'static str>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    /// One line in words; in a write's batch, `{}` stands for the resource's name as stored.
    pub summary: Option<String>,
    pub warnings: Vec<String>,
    pub duration_ms: i64,
    pub request_id: Option<String>,
}

/// The log's row, written once: each column an entry fills and the key the API shows it under,
/// in the order [`LogEntry::values`] gives them. Both inserts (an entry in its write's batch,
/// [`crate::store::trail`]; entries after their responses, [`insert_stmt`]) and the read ([`read`])
/// are built from it; aggregated refusals ([`refusals_stmts`]) add their count to some of them.
pub const ROW: [(&str, &str); 14] = [
    ("at", "at"),
    ("method", "method"),
    ("route", "route"),
    ("resource_type", "resourceType"),
    ("resource_id", "resourceId"),
    ("resource_name", "resourceName"),
    ("status", "status"),
    ("failed", "outcome"),
    ("scim_type", "scimType"),
    ("detail", "detail"),
    ("summary", "summary"),
    ("warnings", "warnings"),
    ("duration_ms", "durationMs"),
    ("request_id", "requestId"),
];

/// [`ROW`]'s columns, as an INSERT names them.
pub(crate) fn column_names() -> String {
    ROW.map(|(c, _)| c).join(", ")
}

impl LogEntry {
    /// The entry's value for each column of [`ROW`], in its order.
    pub fn values(&self) -> [Param; 14] {
        [
            self.at.into(),
            self.method.as_str().into(),
            self.route.as_str().into(),
            self.resource_type.into(),
            self.resource_id.clone().into(),
            self.resource_name.clone().into(),
            i64::from(self.status).into(),
            (self.status >= 400).into(),
            self.scim_type.clone().into(),
            self.detail.clone().into(),
            self.summary.clone().into(),
            self.warnings_json(),
            self.duration_ms.into(),
            self.request_id.clone().into(),
        ]
    }

    fn warnings_json(&self) -> Param {
        if self.warnings.is_empty() {
            Param::Null
        } else {
            serde_json::Value::from(self.warnings.clone())
                .to_string()
                .into()
        }
    }
}

/// The statement that writes entries of one tenant, in order (they travel as one JSON
/// array, so any number stays within D1's 100 bound parameters); `None` for no entries.
pub fn insert_stmt(tenant_id: &str, entries: &[LogEntry]) -> Option<Stmt> {
    if entries.is_empty() {
        return None;
    }
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| Value::Array(e.values().into_iter().map(json_of).collect()))
        .collect();
    Some(Stmt::new(
        format!(
            "INSERT INTO logs (tenant_id, {}) SELECT ?, {} FROM json_each(?) j WHERE {LIVE} \
             ORDER BY j.key",
            column_names(),
            columns(ROW.len())
        ),
        vec![
            tenant_id.into(),
            Value::Array(rows).to_string().into(),
            tenant_id.into(),
        ],
    ))
}

/// A bound value as an element of a JSON array of rows (read back with `->>`).
fn json_of(p: Param) -> Value {
    match p {
        Param::Null => Value::Null,
        Param::Int(i) => Value::from(i),
        Param::Text(s) => Value::String(s),
    }
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
    /// The hashes of the credentials the refused requests presented (at most
    /// [`MAX_PRESENTED`], never written to the log): those of a credential the tenant retired
    /// mark it as seen (`migrations/0015_retired_credentials.sql`).
    pub presented: Vec<String>,
}

/// Hashes of presented credentials an aggregated entry carries to its statement.
pub const MAX_PRESENTED: usize = 8;

impl Refusals {
    /// Add what `other`, a later refusal of the same entry, stands for.
    pub fn absorb(&mut self, other: Refusals) {
        self.count = self.count.saturating_add(other.count);
        self.method = other.method;
        self.route = other.route;
        for h in other.presented {
            if self.presented.len() < MAX_PRESENTED && !self.presented.contains(&h) {
                self.presented.push(h);
            }
        }
    }
}

/// The statements that add refusals to their aggregated entries, creating each entry on its
/// minute's first refusal (a JSON array, like [`insert_stmt`]), and mark the retired
/// credentials they presented as seen at the latest of them; none for no refusals.
pub fn refusals_stmts(tenant_id: &str, all: &[Refusals]) -> Vec<Stmt> {
    let Some(latest) = all.iter().map(|r| r.at).max() else {
        return vec![];
    };
    let presented: Vec<&String> = all.iter().flat_map(|r| &r.presented).collect();
    let seen = (!presented.is_empty()).then(|| {
        Stmt::new(
            "UPDATE retired_credentials SET seen_at = max(coalesce(seen_at, 0), ?) \
             WHERE tenant_id = ? AND hash IN (SELECT value FROM json_each(?))",
            vec![
                latest.into(),
                tenant_id.into(),
                serde_json::json!(presented).to_string().into(),
            ],
        )
    });
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
    let entries = Stmt::new(
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
    );
    [Some(entries), seen].into_iter().flatten().collect()
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

/// The keys and values of an entry as the API shows it, from [`ROW`].
fn shown() -> String {
    ROW.iter()
        .map(|(column, key)| {
            let value = match *column {
                "at" => instant("at"),
                "failed" => "CASE WHEN failed THEN 'failure' ELSE 'success' END".to_string(),
                "summary" => SUMMARY.to_string(),
                "warnings" => "json(coalesce(warnings, '[]'))".to_string(),
                c => c.to_string(),
            };
            format!("'{key}', {value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A page of a tenant's entries, newest first, rendered by SQL as the API returns them;
/// `next` (the last entry's cursor) when older ones follow.
pub async fn read<E: Executor>(db: &E, tenant_id: &str, q: &LogQuery) -> Result<Page> {
    let mut sql = format!(
        "SELECT at || '-' || seq AS id, json_object('cursor', at || '-' || seq, {}, \
         'count', coalesce(count, 1)) AS j FROM logs WHERE tenant_id = ?",
        shown()
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
    struct Row {
        j: String,
    }
    from_row!(Row { j });
    let row = db
        .query(Stmt::new(sql, vec![tenant_id.into(), since.into()]))
        .await?
        .first::<Row>()?
        .ok_or_else(|| StoreError::Other("the summary gave no row".into()))?;
    serde_json::from_str(&row.j).map_err(|e| StoreError::Other(format!("summary: {e}")))
}
