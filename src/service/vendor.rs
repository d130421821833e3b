//! The host app's reads (the vendor's side of the admin API): the change feed, the directory
//! (users, groups, a group's members, in the directory shape), the provisioning log and an
//! organisation's summary. Reads only: the identity provider stays the one writer of users and
//! groups.
//!
//! Every page is cursor-paged: the cursor is the last row's key (the feed's and the log's
//! `seq`, the directory's id), so a page costs one index range seek wherever it starts, and a
//! group of 100,000 members is read page by page.

use futures_util::future::join_all;
use serde_json::Value;

use super::shards::{seq, Cursor, Databases};
use crate::scim::error::{quote, Error, Result};
use crate::store::directory::{self, Page, UserQuery};
use crate::store::feed::{self, FeedQuery};
use crate::store::logs::{self, LogQuery};
use crate::store::tenants as store;
use crate::store::Executor;
use crate::time::DAY_MS;

/// Every event type the feed carries.
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deactivated",
    "user.reactivated",
    "user.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.members_added",
    "group.members_removed",
];

/// The id of organisation `sub`; 404 when there is none.
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

/// Check a `types=` list against [`EVENT_TYPES`].
pub fn parse_types(types: Option<&str>) -> Result<Vec<String>> {
    let Some(types) = types.filter(|t| !t.is_empty()) else {
        return Ok(vec![]);
    };
    types
        .split(',')
        .map(|t| {
            let t = t.trim();
            if EVENT_TYPES.contains(&t) {
                Ok(t.to_string())
            } else {
                Err(Error::invalid(format!(
                    "unknown event type '{}'; the types are {}",
                    quote(t),
                    EVENT_TYPES.join(", ")
                )))
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

/// A page of organisation `sub`'s feed, from its shard `binding`.
pub async fn feed<E: Executor>(
    db: &E,
    binding: &str,
    sub: &str,
    after: Cursor,
    types: Vec<String>,
    limit: u32,
) -> Result<FeedPage> {
    let q = FeedQuery {
        tenant_id: Some(tenant_id(db, sub).await?),
        after: after.at(binding),
        types,
        limit,
    };
    let page = feed::read(db, &q).await?;
    Ok(stamp(vec![(binding, page.items)], after, limit))
}

/// A page of every organisation's feed: each shard's next events (all shards at once),
/// merged oldest first. Each shard's part of the page is a prefix of its own feed, so the
/// cursor resumes every shard exactly after the last event read there; an organisation lives
/// on one shard, so its events keep their commit order.
pub async fn feed_of_all<S: Databases>(
    s: &S,
    after: Cursor,
    types: Vec<String>,
    limit: u32,
) -> Result<FeedPage> {
    let reads = s.bindings().iter().map(|b| {
        let q = FeedQuery {
            tenant_id: None,
            after: after.at(b),
            types: types.clone(),
            limit,
        };
        async move {
            let db = s.shard(b)?;
            let page = feed::read(&db, &q).await?;
            Ok::<_, Error>((b.as_str(), page.items))
        }
    });
    let parts = join_all(reads)
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(stamp(parts, after, limit))
}

/// Merge shards' pages by time (each shard's events kept in its own order), at most `limit`
/// events, each given the cursor that resumes right after it.
fn stamp(parts: Vec<(&str, Vec<Value>)>, mut cursor: Cursor, limit: u32) -> FeedPage {
    let mut queues: Vec<(&str, std::collections::VecDeque<Value>)> = parts
        .into_iter()
        .map(|(b, items)| (b, items.into()))
        .collect();
    let mut items = Vec::new();
    while items.len() < limit as usize {
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(i, (_, q))| {
                let at = q.front()?.get("at").and_then(Value::as_str);
                Some((i, at.unwrap_or("")))
            })
            .min_by(|a, b| a.1.cmp(b.1))
            .map(|(i, _)| i);
        let Some((binding, queue)) = next.and_then(|i| queues.get_mut(i)) else {
            break;
        };
        let Some(mut event) = queue.pop_front() else {
            break;
        };
        let seq = event
            .get("cursor")
            .and_then(Value::as_str)
            .and_then(|c| c.parse::<i64>().ok())
            .unwrap_or(0);
        cursor.advance(binding, seq);
        if let Some(slot) = event.get_mut("cursor") {
            *slot = Value::String(cursor.encode());
        }
        items.push(event);
    }
    FeedPage {
        items,
        next: cursor,
    }
}

pub async fn users<E: Executor>(db: &E, sub: &str, q: &UserQuery) -> Result<Page> {
    directory::users(db, &tenant_id(db, sub).await?, q).await
}

pub async fn groups<E: Executor>(
    db: &E,
    sub: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Page> {
    directory::groups(db, &tenant_id(db, sub).await?, after, limit).await
}

/// One user (`group` false) or group, 404 when the organisation has none with that id.
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
    logs::read(db, &tenant_id(db, sub).await?, q).await
}

pub async fn summary<E: Executor>(db: &E, sub: &str, now: i64) -> Result<serde_json::Value> {
    logs::summary(db, &tenant_id(db, sub).await?, now.saturating_sub(DAY_MS)).await
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
