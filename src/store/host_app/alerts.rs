//! SQL for alerts (table `alerts`, in each tenant's shard): what the Cron Trigger reads to
//! decide them, from what the provisioning log already keeps (its indexes seek the latest
//! entries), and the batch that raises or clears one with its feed event.

use crate::store::row::from_row;
use serde_json::Value;

use crate::store::{Executor, Result, Stmt};

/// What a tenant's alerts are decided from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signals {
    pub tenant_id: String,
    pub provisioning_enabled: i64,
    /// Of its latest `recent` authenticated requests (an aggregated refusal is a stranger's
    /// and does not count), how many failed.
    pub recent: i64,
    pub failed: i64,
    /// Its latest successful request.
    pub last_success: Option<i64>,
    /// When the last of its live OAuth client secrets expires (none: no secret).
    pub secrets_end: Option<i64>,
    /// The latest refused request that presented a credential it retired (a revoked Secret
    /// Token or client secret, an expired client secret).
    pub retired_seen_at: Option<i64>,
    /// The kinds raised now, as a JSON array.
    pub raised: String,
}
from_row!(Signals {
    tenant_id,
    provisioning_enabled,
    recent,
    failed,
    last_success,
    secrets_end,
    retired_seen_at,
    raised
});

/// Up to `limit` live tenants of this shard after id `after`, in id order, with their
/// signals: the latest `window` authenticated requests each.
pub async fn signals<E: Executor>(
    db: &E,
    after: &str,
    limit: u32,
    window: i64,
    now: i64,
) -> Result<Vec<Signals>> {
    let sql = "WITH t AS (SELECT id, provisioning_enabled FROM tenants \
         WHERE deleted_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2) \
         SELECT t.id AS tenant_id, t.provisioning_enabled, \
         (SELECT count(*) FROM (SELECT 1 FROM logs WHERE tenant_id = t.id AND count IS NULL \
            ORDER BY at DESC, seq DESC LIMIT ?3)) AS recent, \
         (SELECT coalesce(sum(failed), 0) FROM (SELECT failed FROM logs WHERE tenant_id = t.id \
            AND count IS NULL ORDER BY at DESC, seq DESC LIMIT ?3)) AS failed, \
         (SELECT at FROM logs WHERE tenant_id = t.id AND failed = 0 \
            ORDER BY at DESC, seq DESC LIMIT 1) AS last_success, \
         (SELECT max(expires_at) FROM oauth_secrets WHERE tenant_id = t.id AND expires_at > ?4) \
            AS secrets_end, \
         (SELECT max(seen_at) FROM retired_credentials WHERE tenant_id = t.id) AS retired_seen_at, \
         (SELECT json_group_array(kind) FROM alerts WHERE tenant_id = t.id) AS raised \
         FROM t ORDER BY t.id";
    db.query(Stmt::new(
        sql,
        vec![
            after.into(),
            i64::from(limit).into(),
            window.into(),
            now.into(),
        ],
    ))
    .await?
    .decode()
}

/// Raise (`raise`) or clear alert `kind` of tenant `tenant_id`, with its feed event `event`
/// (`data`): the event is written only if the row changes (added when raising, there to
/// delete when clearing), so two runs at once write it once.
pub fn change(
    tenant_id: &str,
    kind: &str,
    (event, data): (&str, &Value),
    now: i64,
    raise: bool,
) -> Vec<Stmt> {
    let unless = if raise { "NOT EXISTS" } else { "EXISTS" };
    let row = if raise {
        Stmt::new(
            "INSERT OR IGNORE INTO alerts (tenant_id, kind, raised_at, detail) VALUES (?, ?, ?, ?)",
            vec![
                tenant_id.into(),
                kind.into(),
                now.into(),
                data.to_string().into(),
            ],
        )
    } else {
        Stmt::new(
            "DELETE FROM alerts WHERE tenant_id = ? AND kind = ?",
            vec![tenant_id.into(), kind.into()],
        )
    };
    vec![
        Stmt::new(
            format!(
                "INSERT INTO events (tenant_id, type, resource_id, at, data) \
                 SELECT ?1, ?2, ?1, ?3, ?4 \
                 WHERE {unless} (SELECT 1 FROM alerts WHERE tenant_id = ?1 AND kind = ?5)"
            ),
            vec![
                tenant_id.into(),
                event.into(),
                now.into(),
                data.to_string().into(),
                kind.into(),
            ],
        ),
        row,
    ]
}

/// An alert as the summary and the console show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub kind: String,
    pub raised_at: i64,
    pub detail: String,
}
from_row!(Raised {
    kind,
    raised_at,
    detail
});

/// Tenant `tenant_id`'s alerts raised now.
pub async fn of<E: Executor>(db: &E, tenant_id: &str) -> Result<Vec<Raised>> {
    db.query(Stmt::new(
        "SELECT kind, raised_at, detail FROM alerts WHERE tenant_id = ? ORDER BY kind",
        vec![tenant_id.into()],
    ))
    .await?
    .decode()
}
