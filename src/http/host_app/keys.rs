//! The admin API's keys at the edge: who a request is (`ADMIN_TOKEN` or an API key), and the
//! key routes.
//!
//! ```text
//! POST   /admin/v1/keys        {name, scopes, tenant?}: 201 {id, key, name, scopes, tenant, hint, createdAt}
//! GET    /admin/v1/keys        {items: [{id, name, scopes, tenant, hint, createdAt, lastUsedAt}], next}
//! DELETE /admin/v1/keys/{id}   revoke, effective on the next request
//! ```

use crate::http::body::from_body;
use serde_json::{json, Value};
use worker::Request;

use crate::http::app::App;
use crate::http::host_app::{page_json, Query};
use crate::http::limit;
use crate::http::reply::{header, Reply};
use crate::service::host_app::Page;
use crate::service::keys::{self, Key, Principal};
use scim_core::host_app::scope::Scopes;
use scim_core::scim::error::{Error, Result};
use scim_core::tenancy::token;
use scim_core::time::rfc3339;

/// Who the request acts as: `ADMIN_TOKEN` (compared in constant time) or an API key (one
/// call to the catalog); 401 otherwise.
pub async fn authorize(app: &App, req: &Request) -> Result<Principal> {
    let closed = app.config.admin_token.is_empty();
    let authorization = header(req, "authorization");
    let Some(presented) = authorization.as_deref().and_then(token::bearer) else {
        return Err(refused(
            closed,
            "missing or malformed Authorization header; expected 'Bearer <ADMIN_TOKEN or API key>'",
        ));
    };
    if !closed && token::secrets_equal(presented, &app.config.admin_token) {
        return Ok(Principal::bootstrap());
    }
    // Looking a key up costs a D1 call: refused ones spend the client address's refusal
    // budget, as SCIM's do, and past it the answer is 429 with no call at all.
    let address = limit::client_address(req);
    let is_key = presented.starts_with(keys::PREFIX);
    if is_key && limit::over_budget(app.now, &address, None) {
        return Err(limit::budget_spent());
    }
    match keys::authenticate(&app.databases(), &app.rt, presented).await? {
        Some(p) => Ok(p),
        None => {
            if is_key {
                limit::count_refusal(app, &address, None).await;
            }
            Err(refused(closed, "invalid admin token or API key"))
        }
    }
}

/// 401: with no `ADMIN_TOKEN` configured and no key presented that works, say so.
fn refused(closed: bool, why: &str) -> Error {
    if closed {
        return Error::unauthorized(
            "the admin API is closed: no ADMIN_TOKEN is configured and no valid API key was given",
        );
    }
    Error::unauthorized(why)
}

pub struct CreateKey {
    name: String,
    scopes: Vec<String>,
    tenant: Option<String>,
}
from_body!(CreateKey {
    name,
    scopes,
    tenant
});

fn key_json(k: &Key) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "scopes": Scopes::from_stored(&k.scopes).names(),
        "tenant": k.tenant_subdomain,
        "hint": k.hint,
        "createdAt": rfc3339(k.created_at),
        "lastUsedAt": k.last_used_at.map(rfc3339),
    })
}

/// `POST /admin/v1/keys`: the key's plaintext, once.
pub async fn create(app: &App, by: &Principal, body: CreateKey) -> Result<Reply> {
    let ask = keys::Request {
        name: &body.name,
        scopes: body.scopes.iter().map(String::as_str).collect(),
        tenant: body.tenant.as_deref(),
    };
    let made = keys::create(&app.databases(), &app.rt, by, &ask).await?;
    let mut j = key_json(&made.key);
    if let Some(o) = j.as_object_mut() {
        o.remove("lastUsedAt");
        o.insert("key".into(), json!(made.plaintext));
    }
    Ok(Reply::json(201, j))
}

/// `GET /admin/v1/keys?after=&limit=`: never a key itself, only its hint.
pub async fn list(app: &App, by: &Principal, q: &Query) -> Result<Reply> {
    let (found, next) = keys::list(&app.databases(), by, q.get("after"), q.limit()?).await?;
    let items = found.iter().map(key_json).collect();
    Ok(page_json(Page { items, next }))
}

/// `DELETE /admin/v1/keys/{id}`.
pub async fn revoke(app: &App, by: &Principal, id: &str) -> Result<Reply> {
    keys::revoke(&app.databases(), by, id).await?;
    Ok(Reply::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_api_says_so_whatever_was_presented() {
        assert!(refused(true, "x").detail.contains("closed"));
        assert_eq!(refused(false, "why").detail, "why");
    }
}
