//! The host app's reads (the vendor's side of the admin API): the change feed, the directory
//! (users, groups, a group's members, in the directory shape), the provisioning log and an
//! organisation's summary. Reads only: the identity provider stays the one writer of users and
//! groups.
//!
//! Every page is cursor-paged: the cursor is the last row's key (the feed's and the log's
//! `seq`, the directory's id), so a page costs one index range seek wherever it starts, and a
//! group of 100,000 members is read page by page.

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

/// The largest seq D1 binds exactly (2^53 - 1).
const MAX_CURSOR: i64 = (1 << 53) - 1;

/// A number a cursor holds: decimal digits, at most [`MAX_CURSOR`].
fn number(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|n| *n <= MAX_CURSOR)
}

/// A feed cursor: the seq of the last event read, as decimal digits (none: from the start).
pub fn parse_cursor(cursor: Option<&str>) -> Result<i64> {
    match cursor {
        None | Some("") => Ok(0),
        Some(c) => number(c).ok_or_else(|| bad_cursor(c)),
    }
}

/// A log cursor: the time and seq of the last entry read, `<at>-<seq>`.
pub fn parse_log_cursor(cursor: &str) -> Result<(i64, i64)> {
    cursor
        .split_once('-')
        .and_then(|(at, seq)| Some((number(at)?, number(seq)?)))
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

/// A page of the feed: every organisation's (`sub` `None`) or one's.
pub async fn feed<E: Executor>(db: &E, sub: Option<&str>, mut q: FeedQuery) -> Result<Page> {
    if let Some(sub) = sub {
        q.tenant_id = Some(tenant_id(db, sub).await?);
    }
    feed::read(db, &q).await
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
        assert_eq!(parse_cursor(None), Ok(0));
        assert_eq!(parse_cursor(Some("")), Ok(0));
        assert_eq!(parse_cursor(Some("42")), Ok(42));
        assert_eq!(parse_cursor(Some("9007199254740991")), Ok((1 << 53) - 1));
        for bad in [
            "-1",
            "4.2",
            "abc",
            "9007199254740992",
            "99999999999999999999",
            " 1",
        ] {
            assert_eq!(
                parse_cursor(Some(bad)).map_err(|e| e.status),
                Err(400),
                "{bad}"
            );
        }
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
