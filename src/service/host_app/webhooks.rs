//! Webhooks: the host app's endpoints, and pushing every organisation's change feed to them,
//! signed as Standard Webhooks v1 has it, in commit order, with retries over a day.
//!
//! **Source and order.** Deliveries are read from the change feed, never from a write in
//! flight: an event reaches an endpoint only once committed, and each endpoint reads each
//! organisation's feed from its own cursor (a *lane*, in the catalog), so nothing is skipped
//! and a move changes nothing (the feed's cursor holds across shards). A lane has one event in
//! flight at a time, kept by a lease: a failing event holds back that organisation's later
//! events for that endpoint, and nobody else's.
//!
//! **Waking.** A SCIM write sends a thin Queue message (`Wake`, the tenant's id) after its
//! response (`wait_until`): the write gains no D1 call and no wait. The consumer runs the
//! tenant's lanes ([`run_lane`]); a retry is a delayed `Lane` message; the Cron Trigger is the
//! backstop ([`backstop`]) for a message lost or a consumer gone mid-attempt.
//!
//! **Retries.** Only a `2xx` is success (a `3xx` is not followed); `410` disables the
//! endpoint; `429` and `503` set the next delay by their `Retry-After`. Failures follow the
//! schedule (`WEBHOOK_RETRY_SCHEDULE`); when it is spent the event goes to the dead-letter
//! list (replayable) and the lane moves on. An endpoint failing for [`DISABLE_AFTER_MS`] is
//! disabled.
//!
//! **Secrets** are sealed before they are stored ([`Sealer`]: AES-GCM at the edge under the
//! Worker secret `WEBHOOK_KEY`), and unsealed only to sign.

use serde::Serialize;
use serde_json::{json, Value};

use crate::service::host_app::{parse_types, tenant_events};
use crate::service::keys::Principal;
use crate::service::shards::{self, Cursor, Databases};
use crate::service::Runtime;
use crate::store::catalog;
use crate::store::row::{self, from_row, FromRow};
/// An endpoint as stored.
pub use crate::store::webhooks::Hook;
use crate::store::webhooks::{self as store, Attempt, Dead, Lane, Step};
use crate::store::{Executor, StoreError};
use scim_core::host_app::webhook::{self as wh, Verdict};
use scim_core::scim::error::{quote, Error, Result};
use scim_core::time::{rfc3339, DAY_MS};

/// Both secrets sign for this long after a rotation.
pub const ROTATION_MS: i64 = DAY_MS;
/// An endpoint failing for this long without one success is disabled.
pub const DISABLE_AFTER_MS: i64 = 5 * DAY_MS;
/// Standard Webhooks: an answer must come within 15 s.
pub const TIMEOUT_MS: i64 = 15_000;
/// How long a lane is held for one attempt (the timeout, and the time to record it).
const LEASE_MS: i64 = TIMEOUT_MS + 15_000;
/// A delayed message may arrive a little early: an attempt that is due within this is made.
const EARLY_MS: i64 = 2_000;
/// Endpoints a deployment may have.
pub const MAX_HOOKS: u32 = 100;

/// Sealing a secret for storage, and opening it to sign.
#[allow(async_fn_in_trait)]
pub trait Sealer {
    async fn seal(&self, plain: &str) -> Result<String>;
    async fn open(&self, sealed: &str) -> Result<String>;
}

/// What the Queue carries: never the event itself, only which lane to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Message {
    /// Tenant `tenant` wrote: run its lanes.
    Wake { tenant: String },
    /// Run one lane (a retry that is due, or a lane that had more than one run could take).
    Lane { webhook: String, tenant: String },
}

impl Message {
    /// A message as the Queue delivers it, if it has a known shape.
    pub fn parse(text: &str) -> Option<Message> {
        row::from_json(text).ok()
    }
}

/// `{"kind": "wake", "tenant": …}` or `{"kind": "lane", "webhook": …, "tenant": …}`.
impl FromRow for Message {
    fn from_row(m: &mut row::Row) -> crate::store::Result<Self> {
        let kind: String = m.take("kind")?;
        match kind.as_str() {
            "wake" => Ok(Message::Wake {
                tenant: m.take("tenant")?,
            }),
            "lane" => Ok(Message::Lane {
                webhook: m.take("webhook")?,
                tenant: m.take("tenant")?,
            }),
            _ => Err(StoreError::Other(format!(
                "no message kind {}",
                quote(&kind)
            ))),
        }
    }
}

/// A receiver's answer to one attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// `None`: no answer (refused, timed out, not reachable).
    pub status: Option<u16>,
    pub retry_after: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Posting to receivers, and the Queue.
#[allow(async_fn_in_trait)]
pub trait Courier {
    /// POST `body` with `headers` to `url`, within [`TIMEOUT_MS`], following no redirect.
    async fn post(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Answer;
    /// Put `m` on the Queue, delivered after `delay_s` seconds.
    async fn send(&self, m: &Message, delay_s: i64) -> Result<()>;
}

/// What delivering needs: the databases, the runtime, the sealer, the courier, the settings.
pub struct Push<'a, S, R, K, C> {
    pub s: &'a S,
    pub rt: &'a R,
    pub sealer: &'a K,
    pub courier: &'a C,
    pub settings: &'a Settings,
}

/// The deployment's settings for deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub schedule: Vec<i64>,
    /// `DEV_ALLOW_LOOPBACK`: `http://127.0.0.1` receivers (development only).
    pub allow_loopback: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            schedule: wh::DEFAULT_SCHEDULE.to_vec(),
            allow_loopback: false,
        }
    }
}

/// The event types an endpoint may filter on: the feed's, and `webhook.test`.
fn types_of(events: Option<&[String]>) -> Result<String> {
    let joined = events.map(|e| e.join(","));
    let types = parse_types(joined.as_deref())?;
    Ok(Value::from(types).to_string())
}

fn check_url(url: &str, settings: &Settings) -> Result<()> {
    wh::check_url(url, settings.allow_loopback).map_err(|why| Error::invalid(format!("url: {why}")))
}

/// An endpoint as the API shows it (never a secret).
pub fn view(h: &Hook, now: i64) -> Value {
    let events = row::strings(&h.events);
    json!({
        "id": h.id,
        "url": h.url,
        "events": events,
        "tenant": h.tenant_subdomain,
        "enabled": h.enabled == 1,
        "disabledReason": h.disabled_reason,
        "failingSince": h.failing_since.map(rfc3339),
        "previousSecretUntil": h.old_until.filter(|u| *u > now).map(rfc3339),
        "createdAt": rfc3339(h.created_at),
        "updatedAt": rfc3339(h.updated_at),
    })
}

/// What a client asks a new endpoint to be.
pub struct NewHook<'a> {
    pub url: &'a str,
    pub events: Option<&'a [String]>,
    /// The subdomain of the one tenant whose events it receives.
    pub tenant: Option<&'a str>,
}

/// A new endpoint and its secret (shown once).
pub struct Created {
    pub hook: Hook,
    pub secret: String,
}

/// Make an endpoint: 400 for a URL that may not receive webhooks or an unknown type, 404 for
/// a tenant `by` cannot see; a key bound to a tenant makes endpoints of that tenant only.
pub async fn create<S: Databases, R: Runtime, K: Sealer>(
    s: &S,
    rt: &R,
    sealer: &K,
    settings: &Settings,
    by: &Principal,
    ask: &NewHook<'_>,
) -> Result<Created> {
    check_url(ask.url, settings)?;
    let events = types_of(ask.events)?;
    let tenant = match (ask.tenant, &by.tenant) {
        (None, own) => own.clone(),
        (Some(sub), _) => {
            by.may_see(sub)?;
            let at = shards::locate(s, sub).await?;
            Some((at.org.id, at.org.subdomain))
        }
    };
    let cat = s.catalog()?;
    let (existing, _) = store::page(&cat, None, "", MAX_HOOKS).await?;
    if existing.len() >= MAX_HOOKS as usize {
        return Err(Error::conflict(format!(
            "a deployment has at most {MAX_HOOKS} webhook endpoints"
        )));
    }
    let secret = wh::new_secret().map_err(|e| Error::internal(format!("getrandom: {}", e.0)))?;
    let hook = Hook {
        id: rt.random_id("wh_")?,
        url: ask.url.to_string(),
        events,
        tenant_id: tenant.as_ref().map(|(id, _)| id.clone()),
        tenant_subdomain: tenant.map(|(_, sub)| sub),
        secret: sealer.seal(&secret).await?,
        old_secret: None,
        old_until: None,
        enabled: 1,
        disabled_reason: None,
        failing_since: None,
        created_at: rt.now(),
        updated_at: rt.now(),
    };
    if !store::insert(&cat, &hook).await? {
        return Err(shards::not_found(ask.tenant.unwrap_or_default()));
    }
    Ok(Created { hook, secret })
}

fn missing(id: &str) -> Error {
    Error::not_found(format!("no webhook with id '{}'", quote(id)))
}

/// Endpoint `id` as `by` may see it; 404 otherwise.
pub async fn get<S: Databases>(s: &S, by: &Principal, id: &str) -> Result<Hook> {
    let tenant = by.tenant.as_ref().map(|(t, _)| t.as_str());
    store::get(&s.catalog()?, id, tenant)
        .await?
        .ok_or_else(|| missing(id))
}

/// A page of the endpoints `by` may see, and the cursor of the next.
pub async fn list<S: Databases>(
    s: &S,
    by: &Principal,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<Hook>, Option<String>)> {
    let tenant = by.tenant.as_ref().map(|(t, _)| t.as_str());
    let (hooks, more) = store::page(&s.catalog()?, tenant, after.unwrap_or(""), limit).await?;
    let next = more.then(|| hooks.last().map(|h| h.id.clone())).flatten();
    Ok((hooks, next))
}

/// A change to an endpoint.
#[derive(Default)]
pub struct Change<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a [String]>,
    pub enabled: Option<bool>,
}

/// Change endpoint `id`; enabling it again resumes its lanes where they stopped (the lanes
/// to wake are returned).
pub async fn update<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    settings: &Settings,
    by: &Principal,
    id: &str,
    change: &Change<'_>,
) -> Result<(Hook, Vec<Message>)> {
    get(s, by, id).await?;
    if let Some(url) = change.url {
        check_url(url, settings)?;
    }
    let events = change.events.map(|e| types_of(Some(e))).transpose()?;
    let cat = s.catalog()?;
    store::update(
        &cat,
        id,
        change.url,
        events.as_deref(),
        change.enabled,
        rt.now(),
    )
    .await?;
    let hook = get(s, by, id).await?;
    let mut wake = vec![];
    if change.enabled == Some(true) {
        for tenant in store::held(&cat, id).await? {
            wake.push(Message::Lane {
                webhook: id.to_string(),
                tenant,
            });
        }
    }
    Ok((hook, wake))
}

pub async fn delete<S: Databases>(s: &S, by: &Principal, id: &str) -> Result<()> {
    get(s, by, id).await?;
    store::delete(&s.catalog()?, id).await?;
    Ok(())
}

/// A new secret for endpoint `id` (shown once); the current one signs too until the
/// returned time.
pub async fn rotate<S: Databases, R: Runtime, K: Sealer>(
    s: &S,
    rt: &R,
    sealer: &K,
    by: &Principal,
    id: &str,
) -> Result<(String, i64)> {
    get(s, by, id).await?;
    let secret = wh::new_secret().map_err(|e| Error::internal(format!("getrandom: {}", e.0)))?;
    let until = rt.now().saturating_add(ROTATION_MS);
    let sealed = sealer.seal(&secret).await?;
    if !store::rotate(&s.catalog()?, id, &sealed, until, rt.now()).await? {
        return Err(missing(id));
    }
    Ok((secret, until))
}

/// The signing keys of `h` at `now`: its secret, and the previous one while it still signs.
async fn keys<K: Sealer>(sealer: &K, h: &Hook, now: i64) -> Result<Vec<Vec<u8>>> {
    let mut sealed = vec![h.secret.as_str()];
    if let (Some(old), Some(until)) = (&h.old_secret, h.old_until) {
        if until > now {
            sealed.push(old);
        }
    }
    let mut keys = Vec::with_capacity(sealed.len());
    for s in sealed {
        let text = sealer.open(s).await?;
        keys.push(
            wh::secret_key(&text)
                .ok_or_else(|| Error::internal("a stored webhook secret is not one"))?,
        );
    }
    Ok(keys)
}

/// POST `body` as message `id` of endpoint `h`, signed now.
async fn post<R: Runtime, K: Sealer, C: Courier>(
    rt: &R,
    sealer: &K,
    courier: &C,
    h: &Hook,
    id: &str,
    body: &str,
) -> Result<Answer> {
    let now = rt.clock();
    let timestamp = now.div_euclid(1000);
    let keys = keys(sealer, h, now).await?;
    let headers = [
        ("content-type", "application/json".to_string()),
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            wh::signature_header(&keys, id, timestamp, body),
        ),
    ];
    Ok(courier.post(&h.url, &headers, body).await)
}

/// A signed `webhook.test` to endpoint `id` now (recorded among its attempts); the answer.
pub async fn test<S: Databases, R: Runtime, K: Sealer, C: Courier>(
    p: &Push<'_, S, R, K, C>,
    by: &Principal,
    id: &str,
) -> Result<Value> {
    let Push {
        s, rt, settings, ..
    } = *p;
    let h = get(s, by, id).await?;
    check_url(&h.url, settings)?;
    let message = rt.random_id("msg_")?;
    let body = json!({
        "type": "webhook.test",
        "timestamp": rfc3339(rt.now()),
        "data": {"webhook": h.id},
    })
    .to_string();
    let sent = Sent {
        tenant: None,
        id: &message,
        kind: "webhook.test",
        body: &body,
        outcome: "test",
    };
    once(p, &h, &sent, None).await
}

/// One message sent now, outside any lane (a test, a replay).
struct Sent<'a> {
    tenant: Option<&'a str>,
    id: &'a str,
    kind: &'a str,
    body: &'a str,
    outcome: &'a str,
}

/// Send `m` to `h` once, record the attempt (with `if_delivered` when it was), and answer
/// what the receiver said.
async fn once<S: Databases, R: Runtime, K: Sealer, C: Courier>(
    p: &Push<'_, S, R, K, C>,
    h: &Hook,
    m: &Sent<'_>,
    if_delivered: Option<crate::store::Stmt>,
) -> Result<Value> {
    let answer = post(p.rt, p.sealer, p.courier, h, m.id, m.body).await?;
    let delivered = wh::verdict(answer.status) == Verdict::Delivered;
    let now = p.rt.now();
    let a = attempt_row(h, m.tenant, m.id, m.kind, 1, &answer, m.outcome, None, now);
    let mut batch = vec![store::record(&a)];
    batch.extend(if_delivered.filter(|_| delivered));
    p.s.catalog()?.batch(batch).await?;
    Ok(
        json!({"delivered": delivered, "status": answer.status, "durationMs": answer.duration_ms, "error": answer.error}),
    )
}

/// Send dead letter `event` of endpoint `id` again, now, once; the answer. It stays listed as
/// failed unless this attempt is delivered.
pub async fn replay<S: Databases, R: Runtime, K: Sealer, C: Courier>(
    p: &Push<'_, S, R, K, C>,
    by: &Principal,
    id: &str,
    event: &str,
) -> Result<Value> {
    let Push {
        s, rt, settings, ..
    } = *p;
    let h = get(s, by, id).await?;
    check_url(&h.url, settings)?;
    let cat = s.catalog()?;
    let dead = store::dead(&cat, id, event).await?.ok_or_else(|| {
        Error::not_found(format!(
            "no failed delivery of event '{}' for this webhook",
            quote(event)
        ))
    })?;
    let sent = Sent {
        tenant: dead.tenant_id.as_deref(),
        id: &dead.event_id,
        kind: &dead.event_type,
        body: &dead.body,
        outcome: "replayed",
    };
    once(p, &h, &sent, Some(store::replayed(id, event, rt.now()))).await
}

/// A page of endpoint `id`'s attempts after seq `after`, oldest first, and the next cursor.
pub async fn deliveries<S: Databases>(
    s: &S,
    by: &Principal,
    id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<Value>, Option<String>)> {
    get(s, by, id).await?;
    let after = match after.filter(|a| !a.is_empty()) {
        None => 0,
        Some(a) => a.parse::<i64>().map_err(|_| {
            Error::invalid(format!("'{}' is not a cursor this API gave out", quote(a)))
        })?,
    };
    let (rows, more) = store::attempts(&s.catalog()?, id, after, limit).await?;
    let next = more
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    let items = rows
        .into_iter()
        .map(|a| {
            json!({
                "cursor": a.seq.to_string(),
                "eventId": a.event_id,
                "eventType": a.event_type,
                "tenantId": a.tenant_id,
                "attempt": a.attempt,
                "status": a.status,
                "outcome": a.outcome,
                "durationMs": a.duration_ms,
                "error": a.error,
                "nextAttemptAt": a.next_at.map(rfc3339),
                "at": rfc3339(a.at),
            })
        })
        .collect();
    Ok((items, next))
}

#[allow(clippy::too_many_arguments)]
fn attempt_row(
    h: &Hook,
    tenant: Option<&str>,
    event_id: &str,
    event_type: &str,
    attempt: i64,
    answer: &Answer,
    outcome: &str,
    next_at: Option<i64>,
    at: i64,
) -> Attempt {
    Attempt {
        seq: 0,
        webhook_id: h.id.clone(),
        tenant_id: tenant.map(str::to_string),
        event_id: event_id.to_string(),
        event_type: event_type.to_string(),
        attempt,
        status: answer.status.map(i64::from),
        outcome: outcome.to_string(),
        duration_ms: answer.duration_ms,
        error: answer.error.clone(),
        next_at,
        at,
    }
}

/// The event a lane has in flight, as stored in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Head {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    /// The tenant's feed cursor right after this event.
    cursor: String,
    body: String,
}
from_row!(Head {
    id,
    kind = "type",
    cursor,
    body
});

/// Events a lane run delivers before it hands the rest to a new message.
const RUN_EVENTS: usize = 50;

/// Run tenant `tenant`'s lanes of every endpoint that receives its events (a `Wake`).
pub async fn wake<S: Databases, R: Runtime, K: Sealer, C: Courier>(
    p: &Push<'_, S, R, K, C>,
    tenant: &str,
) -> Result<()> {
    let cat = p.s.catalog()?;
    let hooks = store::receiving(&cat, tenant).await?;
    if hooks.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = hooks.iter().map(|h| h.id.clone()).collect();
    let lanes = store::lanes(&cat, &ids, tenant, &Cursor::default().encode()).await?;
    for lane in lanes {
        run_lane(p, &lane.webhook_id, tenant).await?;
    }
    Ok(())
}

/// Deliver lane (`webhook`, `tenant`)'s events in order until it is empty, an event must wait
/// for a retry, or [`RUN_EVENTS`] went (then a `Lane` message carries on). Another consumer
/// holding the lane: nothing to do.
pub async fn run_lane<S: Databases, R: Runtime, K: Sealer, C: Courier>(
    p: &Push<'_, S, R, K, C>,
    webhook: &str,
    tenant: &str,
) -> Result<()> {
    let Push { s, rt, courier, .. } = *p;
    let cat = s.catalog()?;
    let Some(mut hook) = store::get(&cat, webhook, None).await? else {
        return Ok(());
    };
    let until = rt.clock().saturating_add(LEASE_MS);
    let Some(mut lane) = store::lease(&cat, webhook, tenant, rt.clock(), until).await? else {
        return Ok(());
    };
    let mut sent = 0;
    loop {
        if hook.enabled != 1 {
            return release(&cat, &lane, until).await;
        }
        let head = match lane.head.as_deref().map(row::from_json::<Head>) {
            Some(Ok(head)) => head,
            Some(Err(_)) | None => match next_event(s, &hook, &lane).await? {
                Next::Event(head) => head,
                Next::Nothing(cursor) => {
                    let step = Step {
                        cursor: &cursor,
                        head: None,
                        attempt: 0,
                        next_at: None,
                        keep: false,
                    };
                    cat.query(store::step(webhook, tenant, until, &step))
                        .await?;
                    return Ok(());
                }
            },
        };
        if let Some(at) = lane
            .next_at
            .filter(|at| *at > rt.clock().saturating_add(EARLY_MS))
        {
            release(&cat, &lane, until).await?;
            let delay = at.saturating_sub(rt.clock()).div_euclid(1000).max(1);
            return courier.send(&lane_message(&lane), delay).await;
        }
        if sent >= RUN_EVENTS || rt.clock() > until.saturating_sub(TIMEOUT_MS) {
            release(&cat, &lane, until).await?;
            return courier.send(&lane_message(&lane), 0).await;
        }
        sent = sent.saturating_add(1);
        match attempt(p, &hook, &lane, &head, until).await? {
            Some((next, updated)) => {
                lane = next;
                hook = updated;
            }
            None => return Ok(()),
        }
    }
}

fn lane_message(lane: &Lane) -> Message {
    Message::Lane {
        webhook: lane.webhook_id.clone(),
        tenant: lane.tenant_id.clone(),
    }
}

async fn release<E: Executor>(cat: &E, lane: &Lane, until: i64) -> Result<()> {
    cat.query(store::release(&lane.webhook_id, &lane.tenant_id, until))
        .await?;
    Ok(())
}

enum Next {
    Event(Head),
    /// Nothing new; the cursor that says how far the feed was read.
    Nothing(String),
}

/// The lane's next event of the endpoint's types, from the tenant's feed on its shard.
async fn next_event<S: Databases>(s: &S, hook: &Hook, lane: &Lane) -> Result<Next> {
    let Some(org) = catalog::by_id(&s.catalog()?, &lane.tenant_id).await? else {
        return Ok(Next::Nothing(lane.cursor.clone()));
    };
    let db = s.shard(&org.shard)?;
    let types = row::strings(&hook.events);
    let mut cursor = Cursor::parse(Some(&lane.cursor))?;
    let events = tenant_events(
        &db,
        &org.shard,
        &org.id,
        &mut cursor,
        &types,
        hook.created_at,
        1,
    )
    .await?;
    let Some((located, event)) = events.into_iter().next() else {
        return Ok(Next::Nothing(cursor.encode()));
    };
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let timestamp = event.get("at").cloned().unwrap_or(Value::Null);
    let body = json!({"type": kind, "timestamp": timestamp, "data": event}).to_string();
    Ok(Next::Event(Head {
        id: wh::event_id(&located.birth, located.bseq),
        kind,
        cursor: cursor.encode(),
        body,
    }))
}

/// One attempt of `head` and its record; the lane and endpoint after it, or `None` when this
/// run stops (a retry is scheduled, the endpoint disabled, or the lease lost).
async fn attempt<S: Databases, R: Runtime, K: Sealer, C: Courier>(
    p: &Push<'_, S, R, K, C>,
    hook: &Hook,
    lane: &Lane,
    head: &Head,
    until: i64,
) -> Result<Option<(Lane, Hook)>> {
    let Push {
        s,
        rt,
        sealer,
        courier,
        settings,
    } = *p;
    let cat = s.catalog()?;
    // The URL is checked again before each delivery: a rule added since it was saved applies.
    let answer = match wh::check_url(&hook.url, settings.allow_loopback) {
        Ok(()) => post(rt, sealer, courier, hook, &head.id, &head.body).await?,
        Err(why) => Answer {
            error: Some(format!("refused before sending: {why}")),
            ..Answer::default()
        },
    };
    let now = rt.clock();
    let plan = settle(settings, hook, lane, head, &answer, now);
    let step = Step {
        cursor: &plan.cursor,
        head: plan.head.as_deref(),
        attempt: plan.attempt,
        next_at: plan.next_at,
        keep: plan.keep,
    };
    let mut batch = plan.statements;
    batch.push(store::step(&hook.id, &lane.tenant_id, until, &step));
    let outs = cat.batch(batch).await?;
    if outs.last().is_none_or(|o| o.changes != 1) {
        // The lease ran out meanwhile: whoever holds the lane now carries on.
        return Ok(None);
    }
    if let Some(delay) = plan.delay {
        courier.send(&lane_message(lane), delay).await?;
        return Ok(None);
    }
    if !plan.keep {
        return Ok(None);
    }
    let lane = Lane {
        cursor: plan.cursor,
        head: None,
        attempt: 0,
        next_at: None,
        ..lane.clone()
    };
    let hook = store::get(&cat, &hook.id, None)
        .await?
        .ok_or_else(|| missing(&hook.id))?;
    Ok(Some((lane, hook)))
}

fn dead_letter(webhook: &str, tenant: &str, head: &Head, now: i64) -> crate::store::Stmt {
    store::bury(&Dead {
        webhook_id: webhook.to_string(),
        event_id: head.id.clone(),
        tenant_id: Some(tenant.to_string()),
        event_type: head.kind.clone(),
        body: head.body.clone(),
        failed_at: now,
        replayed_at: None,
    })
}

/// What an attempt's answer does: the statements that record it (the attempt, the endpoint's
/// run of failures, a dead letter, disabling), and the lane's next state.
struct Plan {
    statements: Vec<crate::store::Stmt>,
    cursor: String,
    head: Option<String>,
    attempt: i64,
    next_at: Option<i64>,
    /// The lane stays held: the next event follows at once.
    keep: bool,
    /// Seconds until a retry's message.
    delay: Option<i64>,
}

fn settle(
    settings: &Settings,
    hook: &Hook,
    lane: &Lane,
    head: &Head,
    answer: &Answer,
    now: i64,
) -> Plan {
    let (webhook, tenant) = (hook.id.as_str(), lane.tenant_id.as_str());
    let number = lane.attempt.saturating_add(1);
    let held = serde_json::to_string(head).ok();
    let mut plan = Plan {
        statements: vec![],
        cursor: head.cursor.clone(),
        head: None,
        attempt: 0,
        next_at: None,
        keep: true,
        delay: None,
    };
    let outcome = match wh::verdict(answer.status) {
        Verdict::Delivered => {
            plan.statements.push(store::failing(webhook, None));
            "delivered"
        }
        Verdict::Gone => {
            plan.statements.push(store::disable(
                webhook,
                "the receiver answered 410 Gone",
                now,
            ));
            (plan.cursor, plan.head, plan.attempt) = (lane.cursor.clone(), held, number);
            (plan.next_at, plan.keep) = (Some(now), false);
            "gone"
        }
        Verdict::Failed => {
            plan.statements.push(store::failing(webhook, Some(now)));
            let long = hook
                .failing_since
                .is_some_and(|f| now.saturating_sub(f) >= DISABLE_AFTER_MS);
            if long {
                plan.statements
                    .push(store::disable(webhook, "deliveries failed for 5 days", now));
                plan.keep = false;
            }
            let asked = wh::retry_after(answer.status, answer.retry_after.as_deref(), now);
            let attempts = u32::try_from(number).unwrap_or(u32::MAX);
            match wh::next_delay(&settings.schedule, attempts, asked) {
                Some(delay) => {
                    (plan.cursor, plan.head, plan.attempt) = (lane.cursor.clone(), held, number);
                    plan.next_at = Some(now.saturating_add(delay.saturating_mul(1000)));
                    (plan.keep, plan.delay) = (false, Some(delay));
                    "retrying"
                }
                None => {
                    plan.statements
                        .push(dead_letter(webhook, tenant, head, now));
                    "failed"
                }
            }
        }
    };
    let next_at = plan.delay.and(plan.next_at);
    let a = attempt_row(
        hook,
        Some(tenant),
        &head.id,
        &head.kind,
        number,
        answer,
        outcome,
        next_at,
        now,
    );
    plan.statements.push(store::record(&a));
    plan
}

/// Events a Cron run looks back over, per shard, for tenants whose wake was lost.
const BACKSTOP_WINDOW: i64 = 50_000;
/// Messages a Cron run sends at most.
const BACKSTOP_MESSAGES: usize = 1_000;

/// The Cron Trigger's backstop: a `Lane` message for every lane whose retry is due (its
/// message lost), and a `Wake` for every tenant that wrote since `since` (its wake lost).
/// How many messages it sent.
pub async fn backstop<S: Databases, R: Runtime, C: Courier>(
    s: &S,
    rt: &R,
    courier: &C,
    since: i64,
) -> Result<usize> {
    let cat = s.catalog()?;
    let listened = store::listened(&cat).await?;
    if listened.is_empty() {
        return Ok(0);
    }
    let mut messages: Vec<Message> = store::due(&cat, rt.now(), BACKSTOP_MESSAGES as u32)
        .await?
        .into_iter()
        .map(|(webhook, tenant)| Message::Lane { webhook, tenant })
        .collect();
    let every = listened.iter().any(Option::is_none);
    for b in s.bindings() {
        let db = s.shard(b)?;
        for tenant in store::recently_written(&db, since, BACKSTOP_WINDOW).await? {
            if every || listened.contains(&Some(tenant.clone())) {
                messages.push(Message::Wake { tenant });
            }
        }
    }
    messages.truncate(BACKSTOP_MESSAGES);
    for m in &messages {
        courier.send(m, 0).await?;
    }
    Ok(messages.len())
}

/// Whether tenant `tenant` has an endpoint listening, from [`store::listened`]'s answer.
pub fn listens(listened: &[Option<String>], tenant: &str) -> bool {
    listened
        .iter()
        .any(|t| t.as_deref().is_none_or(|t| t == tenant))
}

/// The catalog's listened tenants (for the edge's per-isolate cache).
pub async fn listened<S: Databases>(s: &S) -> Result<Vec<Option<String>>> {
    Ok(store::listened(&s.catalog()?).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the Queue carries and what a lane keeps in flight read back as they were written.
    #[test]
    fn messages_and_heads_read_back_from_their_json() {
        for m in [
            Message::Wake {
                tenant: "t1".into(),
            },
            Message::Lane {
                webhook: "w1".into(),
                tenant: "t1".into(),
            },
        ] {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(Message::parse(&text), Some(m), "{text}");
        }
        for text in [
            r#"{"kind":"other","tenant":"t"}"#,
            r#"{"kind":"lane","tenant":"t"}"#,
            "[]",
        ] {
            assert_eq!(Message::parse(text), None, "{text}");
        }
        let head = Head {
            id: "e1".into(),
            kind: "user.created".into(),
            cursor: "c".into(),
            body: "{}".into(),
        };
        let text = serde_json::to_string(&head).unwrap();
        assert_eq!(row::from_json::<Head>(&text).unwrap(), head);
    }
}
