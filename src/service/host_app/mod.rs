//! The host app's side, in one folder: its reads here (the change feed, the directory of
//! users, groups and a group's members, the provisioning log and a tenant's summary), its API
//! keys ([`keys`]) and roles from groups ([`roles`]). Reads only: the identity provider stays
//! the one writer of users and groups.
//!
//! Every page is cursor-paged: the cursor is the last row's key (the feed's and the log's
//! `seq`, the directory's id), so a page costs one index range seek wherever it starts, and a
//! group of 100,000 members is read page by page.

pub mod alerts;
pub mod keys;
#[cfg(test)]
mod role_tests;
pub mod roles;
#[cfg(test)]
mod webhook_tests;
pub mod webhooks;

use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

use crate::service::shards::{seq, Cursor, Databases};
use crate::service::Runtime;
use crate::store::directory;
use scim_core::scim::error::{quote, Error, Result};

/// The page and query shapes of the host app's reads.
pub use crate::store::directory::{Page, UserQuery, DEFAULT_PAGE, MAX_PAGE};
use crate::store::feed::{self, Located, Pending, ShardPart};
use crate::store::log::{self, LogQuery};
use crate::store::tenants as store;
use crate::store::Executor;
use scim_core::time::DAY_MS;

/// The feed's event types, re-exported for the edge and the docs.
pub use crate::store::trail::EventType;

/// The id of tenant `sub`; 404 when there is none.
pub async fn tenant_id<E: Executor>(db: &E, sub: &str) -> Result<String> {
    store::get_tenant(db, sub)
        .await?
        .map(|t| t.id)
        .ok_or_else(|| Error::not_found(format!("no tenant with subdomain '{}'", quote(sub))))
}

/// A log cursor: the time and seq of the last entry read, `<at>-<seq>`.
pub fn parse_log_cursor(cursor: &str) -> Result<(i64, i64)> {
    cursor
        .split_once('-')
        .and_then(|(at, n)| Some((seq(at)?, seq(n)?)))
        .ok_or_else(|| bad_cursor(cursor))
}

fn bad_cursor(c: &str) -> Error {
    Error::invalid(format!(
        "'{}' is not a cursor this API gave out; pass back the 'cursor' or 'next' of a previous page",
        quote(c)
    ))
}

/// Check a `types=` list against [`EventType::ALL`].
pub fn parse_types(types: Option<&str>) -> Result<Vec<String>> {
    let Some(types) = types.filter(|t| !t.is_empty()) else {
        return Ok(vec![]);
    };
    types
        .split(',')
        .map(|t| {
            let t = t.trim();
            match EventType::parse(t) {
                Some(known) => Ok(known.name().to_string()),
                None => Err(Error::invalid(format!(
                    "unknown event type '{}'; the types are {}",
                    quote(t),
                    EventType::ALL.map(EventType::name).join(", ")
                ))),
            }
        })
        .collect()
}

/// A page of the change feed and the cursor to resume after it (the one given when nothing
/// was new: a feed has no last page).
pub struct FeedPage {
    pub items: Vec<Value>,
    pub next: Cursor,
}

/// A page of tenant `sub`'s feed, from its shard `binding`, in that shard's commit order.
///
/// Across a move the cursor still holds: the events copied here keep where they were first
/// committed, and those the cursor has read there are skipped (`feed::read_tenant`).
pub async fn feed<E: Executor>(
    db: &E,
    binding: &str,
    sub: &str,
    after: Cursor,
    types: Vec<String>,
    limit: u32,
) -> Result<FeedPage> {
    let id = tenant_id(db, sub).await?;
    tenant_feed(db, binding, &id, after, &types, 0, limit).await
}

/// A page of tenant `id`'s feed on shard `binding`, of the events committed at or after
/// `since` (Unix ms), each event with its [`Located`] place, `after` moving along.
pub async fn tenant_events<E: Executor>(
    db: &E,
    binding: &str,
    id: &str,
    after: &mut Cursor,
    types: &[String],
    since: i64,
    limit: u32,
) -> Result<Vec<(Located, Value)>> {
    let births = after.births_json();
    let scanned = after.scanned(binding);
    let (events, top) =
        feed::read_tenant(db, binding, id, &births, scanned, types, since, limit).await?;
    let full = events.len() >= limit as usize;
    let mut items = Vec::with_capacity(events.len());
    for mut e in events {
        after.advance(&e.birth, e.bseq);
        after.scan(binding, e.seq);
        let event = stamped(std::mem::take(&mut e.event), after);
        items.push((e, event));
    }
    if !full {
        // A short page looked at everything the tenant has here.
        after.scan(binding, top.max(after.scanned(binding)));
    }
    Ok(items)
}

async fn tenant_feed<E: Executor>(
    db: &E,
    binding: &str,
    id: &str,
    mut after: Cursor,
    types: &[String],
    since: i64,
    limit: u32,
) -> Result<FeedPage> {
    let items = tenant_events(db, binding, id, &mut after, types, since, limit).await?;
    Ok(FeedPage {
        items: items.into_iter().map(|(_, e)| e).collect(),
        next: after,
    })
}

fn stamped(mut event: Value, cursor: &Cursor) -> Value {
    if let Some(slot) = event.get_mut("cursor") {
        *slot = Value::String(cursor.encode());
    }
    event
}

/// One stream of the feed of everything (the events first committed in one shard) as a page
/// gathers it: its events, each with the index of the shard it was read from, and how far they
/// may be taken (a source that came back full knows nothing past its last row).
type Stream = (Vec<(usize, Located)>, Option<i64>);

/// A stream's events in the order a page takes them, each with the index of its shard.
type Queue = VecDeque<(usize, Located)>;

/// A page of every tenant's feed gathered for longer than this is refused (503): a move
/// purges an old copy only [`crate::service::moves::GRACE_MS`] after the new one is in place, so a page
/// read within this time sees every event in one place or the other.
const GATHER_MAX_MS: i64 = 5_000;

/// A page of every tenant's feed, all shards read at once and merged oldest first.
///
/// The cursor holds, for every shard, the last seq read among the events first committed
/// there; each such stream is read in its own order, from the shard itself and from wherever
/// moves copied its events (one call per shard), and the page takes a prefix of each stream, so
/// the cursor resumes each exactly after its last event: nothing repeated, nothing skipped, a
/// shard added later read from its start. A tenant's events are in one stream between
/// moves, in commit order.
pub async fn feed_of_all<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    mut after: Cursor,
    types: Vec<String>,
    limit: u32,
) -> Result<FeedPage> {
    let started = rt.clock();
    let positions: Vec<(String, i64)> = s
        .bindings()
        .iter()
        .map(|b| (b.clone(), after.at(b)))
        .collect();
    let reads = s.bindings().iter().map(|b| {
        let (positions, types) = (&positions, &types);
        async move {
            let db = s.shard(b)?;
            let part = feed::read_shard(&db, b, positions, types, limit).await?;
            Ok::<_, Error>((b.clone(), part))
        }
    });
    let parts = crate::service::all_at_once(reads)
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    if rt.clock().saturating_sub(started) > GATHER_MAX_MS {
        return Err(Error::new(
            503,
            "the feed's shards answered slowly; retry the page",
        ));
    }
    let (queues, pending) = streams(parts, limit);
    let items = merge(queues, &pending, &mut after, limit);
    Ok(FeedPage { items, next: after })
}

/// Each stream's events of a page, from every shard's part: in its own order, an event seen in
/// two places once, none past what a full read knows; with each shard's tenants that
/// still have unread copies there.
fn streams(parts: Vec<(String, ShardPart)>, limit: u32) -> (Vec<Queue>, Vec<Vec<Pending>>) {
    let mut streams: BTreeMap<String, Stream> = BTreeMap::new();
    let mut pending = Vec::with_capacity(parts.len());
    for (shard, (binding, part)) in parts.into_iter().enumerate() {
        pending.push(part.pending);
        let sources = std::iter::once((binding, part.native)).chain(part.copied);
        for (name, events) in sources {
            let stream = streams.entry(name).or_default();
            if events.len() > limit as usize {
                // A full read knows nothing past its last row.
                let last = events.last().map_or(0, |e| e.bseq);
                stream.1 = Some(stream.1.map_or(last, |b: i64| b.min(last)));
            }
            stream.0.extend(events.into_iter().map(|e| (shard, e)));
        }
    }
    let queues: Vec<Queue> = streams
        .into_values()
        .map(|(mut events, limit)| {
            events.sort_by_key(|(_, e)| e.bseq);
            // The same event in two places (a move copied it, the old copy not yet purged).
            events.dedup_by_key(|(_, e)| e.bseq);
            events.retain(|(_, e)| limit.is_none_or(|l| e.bseq <= l));
            events.into()
        })
        .collect();
    (queues, pending)
}

/// Merge the streams oldest first into at most `limit` events, each with the cursor that
/// resumes right after it, `after` moving along.
fn merge(
    mut queues: Vec<Queue>,
    pending: &[Vec<Pending>],
    after: &mut Cursor,
    limit: u32,
) -> Vec<Value> {
    // A tenant's event waits while that shard holds unread copies of its events from
    // another origin that came before it (its events from before a move): its own order first.
    let waits = |shard: usize, e: &Located, cursor: &Cursor| {
        pending.get(shard).is_some_and(|p| {
            p.iter().any(|(t, origin, first, last)| {
                *t == e.tenant_id
                    && *origin != e.birth
                    && *first < e.seq
                    && cursor.at(origin) < *last
            })
        })
    };
    let mut items = Vec::new();
    while items.len() < limit as usize {
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| {
                let (shard, e) = q.front()?;
                if waits(*shard, e, after) {
                    return None;
                }
                Some((i, e.event.get("at").and_then(Value::as_str).unwrap_or("")))
            })
            .min_by(|a, b| a.1.cmp(b.1))
            .map(|(i, _)| i);
        let Some((_, e)) = next
            .and_then(|i| queues.get_mut(i))
            .and_then(|q| q.pop_front())
        else {
            break;
        };
        after.advance(&e.birth, e.bseq);
        items.push(stamped(e.event, after));
    }
    items
}

pub async fn users<E: Executor>(db: &E, sub: &str, q: &UserQuery) -> Result<Page> {
    Ok(directory::users(db, &tenant_id(db, sub).await?, q).await?)
}

pub async fn groups<E: Executor>(
    db: &E,
    sub: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Page> {
    Ok(directory::groups(db, &tenant_id(db, sub).await?, after, limit).await?)
}

/// One user (`group` false) or group, 404 when the tenant has none with that id.
pub async fn one<E: Executor>(
    db: &E,
    sub: &str,
    group: bool,
    id: &str,
) -> Result<serde_json::Value> {
    let tenant = tenant_id(db, sub).await?;
    directory::one(db, &tenant, group, id)
        .await?
        .ok_or_else(|| missing(group, id))
}

fn missing(group: bool, id: &str) -> Error {
    let what = if group { "group" } else { "user" };
    Error::not_found(format!("no {what} '{}' in this organisation", quote(id)))
}

pub async fn members<E: Executor>(
    db: &E,
    sub: &str,
    group_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Page> {
    let tenant = tenant_id(db, sub).await?;
    directory::members(db, &tenant, group_id, after, limit)
        .await?
        .ok_or_else(|| missing(true, group_id))
}

pub async fn logs<E: Executor>(db: &E, sub: &str, q: &LogQuery) -> Result<Page> {
    Ok(log::read(db, &tenant_id(db, sub).await?, q).await?)
}

pub async fn summary<E: Executor>(db: &E, sub: &str, now: i64) -> Result<serde_json::Value> {
    let id = tenant_id(db, sub).await?;
    let mut summary = log::summary(db, &id, now.saturating_sub(DAY_MS)).await?;
    // Microsoft's gallery asks for expiring secrets: the admin must rotate before Entra's
    // job is quarantined for an expired one.
    let soon = now.saturating_add(crate::service::oauth::EXPIRING_DAYS.saturating_mul(DAY_MS));
    let expiring: Vec<serde_json::Value> = crate::store::oauth::secrets(db, &id)
        .await?
        .iter()
        .filter(|s| s.expires_at < soon)
        .map(|s| {
            serde_json::json!({
                "id": s.id,
                "hint": s.hint,
                "expiresAt": scim_core::time::rfc3339(s.expires_at),
                "expired": s.expires_at <= now,
            })
        })
        .collect();
    let alerts = alerts::of(db, &id).await?;
    if let Some(o) = summary.as_object_mut() {
        o.insert("clientSecretsExpiring".into(), expiring.into());
        o.insert("alerts".into(), alerts.into());
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_types_are_checked() {
        assert_eq!(
            parse_log_cursor("1764000000000-42"),
            Ok((1_764_000_000_000, 42))
        );
        for bad in ["", "42", "-42", "1-", "a-1", "1-2-3"] {
            assert_eq!(
                parse_log_cursor(bad).map_err(|e| e.status),
                Err(400),
                "{bad}"
            );
        }
        assert_eq!(parse_types(None), Ok(vec![]));
        assert_eq!(
            parse_types(Some("user.created, group.deleted")),
            Ok(vec![
                "user.created".to_string(),
                "group.deleted".to_string()
            ])
        );
        assert_eq!(
            parse_types(Some("user.created,user.exploded")).map_err(|e| e.status),
            Err(400)
        );
    }
}
