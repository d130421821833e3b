//! SQL for webhooks (tables `webhooks`, `webhook_lanes`, `webhook_attempts`, `webhook_dead`,
//! in the catalog `DB`): the endpoints, one lane per endpoint and organisation, every attempt,
//! and the dead-letter list.
//!
//! A lane changes only by conditional writes (its cursor and head as read, its lease free),
//! so two consumers woken for the same lane, or a retried Queue message, never deliver one
//! event twice at once nor move a cursor past an event not settled.

use crate::store::row::from_row;
use serde_json::Value;

use crate::store::{Executor, Param, Result, Stmt};

/// An endpoint as stored (its secrets sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub id: String,
    pub url: String,
    /// A JSON array of event types; empty: every type.
    pub events: String,
    pub tenant_id: Option<String>,
    pub tenant_subdomain: Option<String>,
    pub secret: String,
    pub old_secret: Option<String>,
    pub old_until: Option<i64>,
    pub enabled: i64,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}
from_row!(Hook {
    id,
    url,
    events,
    tenant_id,
    tenant_subdomain,
    secret,
    old_secret,
    old_until,
    enabled,
    disabled_reason,
    failing_since,
    created_at,
    updated_at
});

const COLUMNS: &str = "id, url, events, tenant_id, tenant_subdomain, secret, old_secret, \
     old_until, enabled, disabled_reason, failing_since, created_at, updated_at";

/// Store `h`. One limited to a tenant is stored only while the catalog lists that tenant (in
/// the same statement): `false` when it does not.
pub async fn insert<E: Executor>(db: &E, h: &Hook) -> Result<bool> {
    let params: Vec<Param> = vec![
        h.id.as_str().into(),
        h.url.as_str().into(),
        h.events.as_str().into(),
        h.tenant_id.clone().into(),
        h.tenant_subdomain.clone().into(),
        h.secret.as_str().into(),
        h.created_at.into(),
    ];
    let sql = format!(
        "INSERT INTO webhooks ({COLUMNS}) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, 1, NULL, NULL, ?7, ?7 \
         WHERE ?4 IS NULL OR EXISTS (SELECT 1 FROM catalog WHERE id = ?4)"
    );
    Ok(db.query(Stmt::new(sql, params)).await?.changes == 1)
}

/// Endpoint `id`; when `tenant` is given, only if limited to that tenant.
pub async fn get<E: Executor>(db: &E, id: &str, tenant: Option<&str>) -> Result<Option<Hook>> {
    let sql =
        format!("SELECT {COLUMNS} FROM webhooks WHERE id = ?1 AND (?2 IS NULL OR tenant_id = ?2)");
    db.query(Stmt::new(
        sql,
        vec![id.into(), tenant.map(str::to_string).into()],
    ))
    .await?
    .first()
}

/// Up to `limit` endpoints after id `after`, every one or those limited to `tenant`; and
/// whether more follow.
pub async fn page<E: Executor>(
    db: &E,
    tenant: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<(Vec<Hook>, bool)> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id > ?1 AND (?2 IS NULL OR tenant_id = ?2) \
         ORDER BY id LIMIT ?3"
    );
    let params = vec![
        after.into(),
        tenant.map(str::to_string).into(),
        i64::from(limit).saturating_add(1).into(),
    ];
    let mut rows: Vec<Hook> = db.query(Stmt::new(sql, params)).await?.decode()?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// The enabled endpoints that receive tenant `tenant_id`'s events.
pub async fn receiving<E: Executor>(db: &E, tenant_id: &str) -> Result<Vec<Hook>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhooks WHERE enabled = 1 AND (tenant_id IS NULL OR tenant_id = ?) \
         ORDER BY id"
    );
    db.query(Stmt::new(sql, vec![tenant_id.into()]))
        .await?
        .decode()
}

/// Which tenants enabled endpoints listen to: `None` in the list for every tenant.
pub async fn listened<E: Executor>(db: &E) -> Result<Vec<Option<String>>> {
    struct Row {
        tenant_id: Option<String>,
    }
    from_row!(Row { tenant_id });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT DISTINCT tenant_id FROM webhooks WHERE enabled = 1",
            vec![],
        ))
        .await?
        .decode()?;
    Ok(rows.into_iter().map(|r| r.tenant_id).collect())
}

/// Change endpoint `id`'s URL, event types and enabled state (each if given); enabling
/// clears why it was disabled and its run of failures. Whether it exists.
pub async fn update<E: Executor>(
    db: &E,
    id: &str,
    url: Option<&str>,
    events: Option<&str>,
    enabled: Option<bool>,
    now: i64,
) -> Result<bool> {
    let sql = "UPDATE webhooks SET url = coalesce(?2, url), events = coalesce(?3, events), \
         enabled = coalesce(?4, enabled), \
         disabled_reason = CASE WHEN ?4 IS NULL THEN disabled_reason WHEN ?4 = 1 THEN NULL \
         ELSE 'disabled through the API' END, \
         failing_since = CASE WHEN ?4 = 1 THEN NULL ELSE failing_since END, updated_at = ?5 \
         WHERE id = ?1";
    let params = vec![
        id.into(),
        url.map(str::to_string).into(),
        events.map(str::to_string).into(),
        enabled.into(),
        now.into(),
    ];
    let stmt = Stmt::new(sql, params);
    if enabled != Some(true) {
        return Ok(db.query(stmt).await?.changes == 1);
    }
    // Enabled again (after a 410, five failing days, or by hand): each held event starts
    // the retry schedule afresh, now, rather than on its last step.
    let fresh = Stmt::new(
        "UPDATE webhook_lanes SET attempt = 0, next_at = ?2 WHERE webhook_id = ?1 \
         AND head IS NOT NULL",
        vec![id.into(), now.into()],
    );
    let outs = db.batch(vec![stmt, fresh]).await?;
    Ok(outs.first().is_some_and(|o| o.changes == 1))
}

/// Endpoint `id` signs with `sealed` from now on, and with its current secret until
/// `old_until` too.
pub async fn rotate<E: Executor>(
    db: &E,
    id: &str,
    sealed: &str,
    old_until: i64,
    now: i64,
) -> Result<bool> {
    let sql = "UPDATE webhooks SET old_secret = secret, old_until = ?3, secret = ?2, \
         updated_at = ?4 WHERE id = ?1";
    let params = vec![id.into(), sealed.into(), old_until.into(), now.into()];
    Ok(db.query(Stmt::new(sql, params)).await?.changes == 1)
}

/// Delete endpoint `id` with its lanes, attempts and dead letters: whether it existed.
pub async fn delete<E: Executor>(db: &E, id: &str) -> Result<bool> {
    let outs = db
        .batch(
            [
                "webhook_lanes",
                "webhook_attempts",
                "webhook_dead",
                "webhooks",
            ]
            .map(|table| {
                let key = if table == "webhooks" {
                    "id"
                } else {
                    "webhook_id"
                };
                Stmt::new(
                    format!("DELETE FROM {table} WHERE {key} = ?"),
                    vec![id.into()],
                )
            })
            .to_vec(),
        )
        .await?;
    Ok(outs.last().is_some_and(|o| o.changes == 1))
}

/// The statements that delete what tenant `id`'s leaving the catalog leaves behind: the
/// endpoints limited to it (with theirs) and its lanes of the others, each only where `gone`
/// (a condition on `?1`, the id: that the tenant is no longer listed) holds.
pub fn delete_of_tenant(id: &str, gone: &str) -> Vec<Stmt> {
    let of_hooks = "webhook_id IN (SELECT id FROM webhooks WHERE tenant_id = ?1)";
    vec![
        Stmt::new(
            format!("DELETE FROM webhook_lanes WHERE (tenant_id = ?1 OR {of_hooks}) AND {gone}"),
            vec![id.into()],
        ),
        Stmt::new(
            format!("DELETE FROM webhook_attempts WHERE {of_hooks} AND {gone}"),
            vec![id.into()],
        ),
        Stmt::new(
            format!("DELETE FROM webhook_dead WHERE {of_hooks} AND {gone}"),
            vec![id.into()],
        ),
        Stmt::new(
            format!("DELETE FROM webhooks WHERE tenant_id = ?1 AND {gone}"),
            vec![id.into()],
        ),
    ]
}

/// One endpoint's lane for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub webhook_id: String,
    pub tenant_id: String,
    pub cursor: String,
    /// The event in flight, as JSON.
    pub head: Option<String>,
    pub attempt: i64,
    pub next_at: Option<i64>,
    pub lease_until: Option<i64>,
}
from_row!(Lane {
    webhook_id,
    tenant_id,
    cursor,
    head,
    attempt,
    next_at,
    lease_until
});

const LANE: &str = "webhook_id, tenant_id, cursor, head, attempt, next_at, lease_until";

/// Lanes of endpoints `hooks` for tenant `tenant_id`, made (at `cursor`) where missing.
pub async fn lanes<E: Executor>(
    db: &E,
    hooks: &[String],
    tenant_id: &str,
    cursor: &str,
) -> Result<Vec<Lane>> {
    let ids = Value::from(hooks.to_vec()).to_string();
    let make = Stmt::new(
        "INSERT OR IGNORE INTO webhook_lanes (webhook_id, tenant_id, cursor) \
         SELECT value, ?2, ?3 FROM json_each(?1)",
        vec![ids.as_str().into(), tenant_id.into(), cursor.into()],
    );
    let read = Stmt::new(
        format!(
            "SELECT {LANE} FROM webhook_lanes WHERE tenant_id = ?2 \
             AND webhook_id IN (SELECT value FROM json_each(?1)) ORDER BY webhook_id"
        ),
        vec![ids.into(), tenant_id.into()],
    );
    match db.batch(vec![make, read]).await?.pop() {
        Some(rows) => rows.decode(),
        None => Ok(vec![]),
    }
}

/// Take lane (`webhook_id`, `tenant_id`) until `until` if no one holds it: the lane as taken.
pub async fn lease<E: Executor>(
    db: &E,
    webhook_id: &str,
    tenant_id: &str,
    now: i64,
    until: i64,
) -> Result<Option<Lane>> {
    let sql = format!(
        "UPDATE webhook_lanes SET lease_until = ?4 WHERE webhook_id = ?1 AND tenant_id = ?2 \
         AND coalesce(lease_until, 0) <= ?3 RETURNING {LANE}"
    );
    let params = vec![
        webhook_id.into(),
        tenant_id.into(),
        now.into(),
        until.into(),
    ];
    db.query(Stmt::new(sql, params)).await?.first()
}

/// Give back a lease taken until `until`, the lane otherwise unchanged.
pub fn release(webhook_id: &str, tenant_id: &str, until: i64) -> Stmt {
    Stmt::new(
        "UPDATE webhook_lanes SET lease_until = NULL WHERE webhook_id = ?1 AND tenant_id = ?2 \
         AND lease_until = ?3",
        vec![webhook_id.into(), tenant_id.into(), until.into()],
    )
}

/// The lane's next state, written only while the lease taken until `until` is still held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<'a> {
    pub cursor: &'a str,
    pub head: Option<&'a str>,
    pub attempt: i64,
    pub next_at: Option<i64>,
    /// Keep the lease (an attempt follows at once) rather than give it back.
    pub keep: bool,
}

pub fn step(webhook_id: &str, tenant_id: &str, until: i64, s: &Step) -> Stmt {
    Stmt::new(
        "UPDATE webhook_lanes SET cursor = ?4, head = ?5, attempt = ?6, next_at = ?7, \
         lease_until = CASE WHEN ?8 = 1 THEN lease_until END \
         WHERE webhook_id = ?1 AND tenant_id = ?2 AND lease_until = ?3",
        vec![
            webhook_id.into(),
            tenant_id.into(),
            until.into(),
            s.cursor.into(),
            s.head.map(str::to_string).into(),
            s.attempt.into(),
            s.next_at.into(),
            s.keep.into(),
        ],
    )
}

/// One attempt, as the deliveries list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub seq: i64,
    pub webhook_id: String,
    pub tenant_id: Option<String>,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub status: Option<i64>,
    pub outcome: String,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub next_at: Option<i64>,
    pub at: i64,
}
from_row!(Attempt { webhook_id, tenant_id, event_id, event_type, attempt, status, outcome, duration_ms, error, next_at, at; default seq });

pub fn record(a: &Attempt) -> Stmt {
    Stmt::new(
        "INSERT INTO webhook_attempts (webhook_id, tenant_id, event_id, event_type, attempt, \
         status, outcome, duration_ms, error, next_at, at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            a.webhook_id.as_str().into(),
            a.tenant_id.clone().into(),
            a.event_id.as_str().into(),
            a.event_type.as_str().into(),
            a.attempt.into(),
            a.status.into(),
            a.outcome.as_str().into(),
            a.duration_ms.into(),
            a.error.clone().into(),
            a.next_at.into(),
            a.at.into(),
        ],
    )
}

/// Endpoint `id`'s run of failures: a success ends it (`None`); a failure starts one if none
/// is under way.
pub fn failing(id: &str, failed_at: Option<i64>) -> Stmt {
    Stmt::new(
        "UPDATE webhooks SET failing_since = CASE WHEN ?2 IS NULL THEN NULL \
         ELSE coalesce(failing_since, ?2) END WHERE id = ?1",
        vec![id.into(), failed_at.into()],
    )
}

/// Disable endpoint `id`, saying why.
pub fn disable(id: &str, reason: &str, now: i64) -> Stmt {
    Stmt::new(
        "UPDATE webhooks SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
        vec![id.into(), reason.into(), now.into()],
    )
}

/// A dead letter: the event whose schedule was spent, as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dead {
    pub webhook_id: String,
    pub event_id: String,
    pub tenant_id: Option<String>,
    pub event_type: String,
    pub body: String,
    pub failed_at: i64,
    pub replayed_at: Option<i64>,
}
from_row!(Dead {
    webhook_id,
    event_id,
    tenant_id,
    event_type,
    body,
    failed_at,
    replayed_at
});

pub fn bury(d: &Dead) -> Stmt {
    Stmt::new(
        "INSERT OR REPLACE INTO webhook_dead (webhook_id, event_id, tenant_id, event_type, \
         body, failed_at, replayed_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
        vec![
            d.webhook_id.as_str().into(),
            d.event_id.as_str().into(),
            d.tenant_id.clone().into(),
            d.event_type.as_str().into(),
            d.body.as_str().into(),
            d.failed_at.into(),
        ],
    )
}

pub async fn dead<E: Executor>(db: &E, webhook_id: &str, event_id: &str) -> Result<Option<Dead>> {
    db.query(Stmt::new(
        "SELECT webhook_id, event_id, tenant_id, event_type, body, failed_at, replayed_at \
         FROM webhook_dead WHERE webhook_id = ? AND event_id = ?",
        vec![webhook_id.into(), event_id.into()],
    ))
    .await?
    .first()
}

pub fn replayed(webhook_id: &str, event_id: &str, now: i64) -> Stmt {
    Stmt::new(
        "UPDATE webhook_dead SET replayed_at = ? WHERE webhook_id = ? AND event_id = ?",
        vec![now.into(), webhook_id.into(), event_id.into()],
    )
}

/// Up to `limit` attempts of endpoint `webhook_id` after seq `after`, oldest first; whether
/// more follow.
pub async fn attempts<E: Executor>(
    db: &E,
    webhook_id: &str,
    after: i64,
    limit: u32,
) -> Result<(Vec<Attempt>, bool)> {
    let sql = "SELECT seq, webhook_id, tenant_id, event_id, event_type, attempt, status, outcome, \
         duration_ms, error, next_at, at FROM webhook_attempts WHERE webhook_id = ? AND seq > ? \
         ORDER BY seq LIMIT ?";
    let params = vec![
        webhook_id.into(),
        after.into(),
        i64::from(limit).saturating_add(1).into(),
    ];
    let mut rows: Vec<Attempt> = db.query(Stmt::new(sql, params)).await?.decode()?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// Lanes of enabled endpoints whose event in flight is due (its Queue message lost, or its
/// consumer gone mid-attempt), up to `limit`.
pub async fn due<E: Executor>(db: &E, now: i64, limit: u32) -> Result<Vec<(String, String)>> {
    struct Row {
        webhook_id: String,
        tenant_id: String,
    }
    from_row!(Row {
        webhook_id,
        tenant_id
    });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT l.webhook_id, l.tenant_id FROM webhook_lanes l \
             JOIN webhooks w ON w.id = l.webhook_id AND w.enabled = 1 \
             WHERE l.head IS NOT NULL AND l.next_at <= ?1 AND coalesce(l.lease_until, 0) <= ?1 \
             ORDER BY l.next_at LIMIT ?2",
            vec![now.into(), i64::from(limit).into()],
        ))
        .await?
        .decode()?;
    Ok(rows
        .into_iter()
        .map(|r| (r.webhook_id, r.tenant_id))
        .collect())
}

/// Lanes of endpoint `id` with an event waiting (to wake when it is enabled again).
pub async fn held<E: Executor>(db: &E, id: &str) -> Result<Vec<String>> {
    struct Row {
        tenant_id: String,
    }
    from_row!(Row { tenant_id });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT tenant_id FROM webhook_lanes WHERE webhook_id = ? AND head IS NOT NULL",
            vec![id.into()],
        ))
        .await?
        .decode()?;
    Ok(rows.into_iter().map(|r| r.tenant_id).collect())
}

/// The tenants with events at or after `since` on this shard, among its latest `window`
/// events (a bounded range of the primary key, whatever the shard holds).
pub async fn recently_written<E: Executor>(db: &E, since: i64, window: i64) -> Result<Vec<String>> {
    struct Row {
        tenant_id: String,
    }
    from_row!(Row { tenant_id });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT DISTINCT tenant_id FROM events \
             WHERE seq > (SELECT coalesce(max(seq), 0) FROM events) - ?2 AND at >= ?1",
            vec![since.into(), window.into()],
        ))
        .await?
        .decode()?;
    Ok(rows.into_iter().map(|r| r.tenant_id).collect())
}

/// Attempts and dead letters older than `before`: at most `chunk` of each, and how many went.
pub async fn expire<E: Executor>(db: &E, before: i64, chunk: i64) -> Result<u64> {
    let outs = db
        .batch(vec![
            Stmt::new(
                "DELETE FROM webhook_attempts WHERE seq IN \
                 (SELECT seq FROM webhook_attempts WHERE at < ? ORDER BY at LIMIT ?)",
                vec![before.into(), chunk.into()],
            ),
            Stmt::new(
                "DELETE FROM webhook_dead WHERE (webhook_id, event_id) IN \
                 (SELECT webhook_id, event_id FROM webhook_dead WHERE failed_at < ? LIMIT ?)",
                vec![before.into(), chunk.into()],
            ),
        ])
        .await?;
    Ok(outs.iter().map(|o| o.changes).sum())
}
