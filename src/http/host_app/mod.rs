//! The host app's side of the admin API, in one folder: what it reads (the change feed, the
//! directory, the provisioning log and a tenant's summary, here), its API keys ([`keys`]),
//! roles from groups ([`roles`]), and the OpenAPI document of the whole admin API
//! (`openapi.json`); rendered as JSON, camelCase, cursor-paged. The logic is
//! [`crate::service::host_app`]'s; this module parses the query and renders.
//!
//! ```text
//! GET /admin/v1/events?after=&limit=&types=                  every tenant's feed
//! GET /admin/v1/tenants/{sub}/events?after=&limit=&types=    one tenant's
//! GET /admin/v1/tenants/{sub}/users?active=&userName=&after=&limit=
//! GET /admin/v1/tenants/{sub}/users/{id}
//! GET /admin/v1/tenants/{sub}/groups?after=&limit=
//! GET /admin/v1/tenants/{sub}/groups/{id}
//! GET /admin/v1/tenants/{sub}/groups/{id}/members?after=&limit=
//! GET /admin/v1/tenants/{sub}/logs?after=&limit=&outcome=success|failure&resourceId=
//! GET /admin/v1/tenants/{sub}/summary
//! GET /admin/v1/purges                                       deleted tenants still being purged
//! ```

pub mod keys;
pub mod roles;
pub mod webhooks;

use serde_json::{json, Value};
use std::collections::HashMap;
use worker::Request;

use crate::http::app::{request_url, App};
use crate::http::d1::D1;
use crate::http::reply::Reply;
use crate::service::host_app;
use crate::service::host_app::{Page, UserQuery, DEFAULT_PAGE, MAX_PAGE};
use crate::service::log::LogQuery;
use crate::service::shards::Cursor;
use crate::service::upkeep::Purge;
use scim_core::scim::error::{quote, Error, Result};
use scim_core::time::rfc3339;

/// A request's query parameters (the last value of each name).
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn of(req: &Request) -> Result<Query> {
        request_url(req, |u| {
            Query(
                form_urlencoded::parse(u.query.as_bytes())
                    .into_owned()
                    .collect(),
            )
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `limit`: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
    pub fn limit(&self) -> Result<u32> {
        match self.get("limit") {
            None => Ok(DEFAULT_PAGE),
            Some(l) => match l.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
                _ => Err(Error::invalid(format!(
                    "limit must be a whole number from 1 to {MAX_PAGE}, not '{}'",
                    quote(l)
                ))),
            },
        }
    }

    /// `outcome=success|failure`: whether only failures (or only successes) are asked for.
    pub fn outcome(&self) -> Result<Option<bool>> {
        self.either("outcome", [("success", false), ("failure", true)])
    }

    fn flag(&self, name: &str) -> Result<Option<bool>> {
        self.either(name, [("true", true), ("false", false)])
    }

    /// A parameter that is one of two words, each meaning a boolean; absent is `None`.
    fn either(&self, name: &str, words: [(&str, bool); 2]) -> Result<Option<bool>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        match words.iter().find(|(w, _)| *w == v) {
            Some((_, b)) => Ok(Some(*b)),
            None => Err(Error::invalid(format!(
                "{name} must be {} or {}, not '{}'",
                words[0].0,
                words[1].0,
                quote(v)
            ))),
        }
    }
}

/// `GET …/events`: a page of the feed, every tenant's (`at` `None`) or one's (its
/// shard and subdomain), with the opaque cursor to resume from: `next` is the last event's
/// `cursor`, or the one given when nothing was new (a feed has no last page).
pub async fn events(app: &App, at: Option<(&D1, &str, &str)>, q: &Query) -> Result<Reply> {
    let after = Cursor::parse(q.get("after"))?;
    let types = host_app::parse_types(q.get("types"))?;
    let limit = q.limit()?;
    let page = match at {
        Some((db, binding, sub)) => host_app::feed(db, binding, sub, after, types, limit).await?,
        None => host_app::feed_of_all(&app.databases(), &app.rt, after, types, limit).await?,
    };
    Ok(Reply::json(
        200,
        json!({"items": page.items, "next": page.next.encode()}),
    ))
}

pub fn page_json(p: Page) -> Reply {
    Reply::json(200, json!({"items": p.items, "next": p.next}))
}

pub async fn users(db: &D1, sub: &str, q: &Query) -> Result<Reply> {
    let query = UserQuery {
        active: q.flag("active")?,
        user_name: q.get("userName").map(str::to_string),
        after: q.get("after").map(str::to_string),
        limit: q.limit()?,
    };
    Ok(page_json(host_app::users(db, sub, &query).await?))
}

pub async fn groups(db: &D1, sub: &str, q: &Query) -> Result<Reply> {
    let page = host_app::groups(db, sub, q.get("after"), q.limit()?).await?;
    Ok(page_json(page))
}

pub async fn one(db: &D1, sub: &str, group: bool, id: &str) -> Result<Reply> {
    Ok(Reply::json(200, host_app::one(db, sub, group, id).await?))
}

pub async fn members(db: &D1, sub: &str, group_id: &str, q: &Query) -> Result<Reply> {
    let page = host_app::members(db, sub, group_id, q.get("after"), q.limit()?).await?;
    Ok(page_json(page))
}

/// `GET …/logs`: newest first; `next` continues with older entries.
pub async fn logs(db: &D1, sub: &str, q: &Query) -> Result<Reply> {
    let before = q.get("after").map(host_app::parse_log_cursor).transpose()?;
    let query = LogQuery {
        before,
        failed: q.outcome()?,
        resource_id: q.get("resourceId").map(str::to_string),
        limit: q.limit()?,
    };
    Ok(page_json(host_app::logs(db, sub, &query).await?))
}

pub async fn summary(app: &App, db: &D1, sub: &str) -> Result<Reply> {
    Ok(Reply::json(200, host_app::summary(db, sub, app.now).await?))
}

pub fn purge_json(p: &Purge) -> Value {
    json!({
        "subdomain": p.subdomain,
        "deletedAt": rfc3339(p.deleted_at),
        "status": if p.remaining > 0 { "purging" } else { "purged" },
        "remaining": p.remaining,
    })
}
