//! SCIM authentication: the tenant's bearer token, checked against D1 with Workers KV in front.
//!
//! Per request: hash the presented token (SHA-256), read `auth:v1:<hash>` from KV; on a hit for
//! this tenant the request never touches D1 for authentication. On a miss (or a hit for another
//! tenant), one D1 statement ([`store::authorize`]) says whether the tenant exists and whether the
//! token is one of its tokens, and a grant is cached.
//!
//! Staleness: D1 is the truth; KV is eventually consistent between locations. Revoking a token,
//! disabling provisioning or deleting a tenant deletes the cached entries before the admin call
//! returns (so the same location refuses at once, as does `wrangler dev`), deletes them again two
//! seconds later (a request that read D1 just before the change may have written its grant
//! back), and every entry expires [`CACHE_TTL_SECS`] after it was written. Elsewhere a change
//! shows within KV's propagation delay (typically up to 60 s), and never later than the TTL.
//!
//! `lastUsedAt` is written at most once a minute per token and isolate, after the response
//! (`ctx.wait_until`), with a conditional UPDATE that is a no-op when another isolate already did.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use worker::{Delay, KvStore, Request};

use super::App;
use crate::scim::error::{quote, Error, Result};
use crate::store::d1::D1;
use crate::store::tenants::{self as store, Access, TokenGrant};
use crate::tenancy::host::validate_subdomain;
use crate::tenancy::token;

/// Seconds a cached grant lives in KV: the upper bound on staleness (KV's minimum is 60).
pub const CACHE_TTL_SECS: u64 = 300;

/// `lastUsedAt` resolution.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

/// Delay before the second cache invalidation.
const SECOND_FORGET_DELAY: Duration = Duration::from_secs(2);

/// Bound on the per-isolate map of recent `lastUsedAt` writes.
const MAX_TOUCH_ENTRIES: usize = 10_000;

/// The authenticated caller of a SCIM request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub subdomain: String,
    pub token_id: String,
}

/// What is cached in KV under the token's hash. Never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedGrant {
    tenant_id: String,
    subdomain: String,
    provisioning_enabled: bool,
    token_id: String,
    last_used_at: Option<i64>,
}

impl From<TokenGrant> for CachedGrant {
    fn from(g: TokenGrant) -> Self {
        CachedGrant {
            tenant_id: g.tenant_id,
            subdomain: g.subdomain,
            provisioning_enabled: g.provisioning_enabled,
            token_id: g.token_id,
            last_used_at: g.last_used_at,
        }
    }
}

fn cache_key(hash: &str) -> String {
    format!("auth:v1:{hash}")
}

fn kv(app: &App) -> Option<KvStore> {
    match app.env.kv("KV") {
        Ok(kv) => Some(kv),
        Err(e) => {
            // Without the cache every request goes to D1: slower, still correct.
            worker::console_error!("KV binding unavailable, authenticating from D1: {e}");
            None
        }
    }
}

/// Authenticate a SCIM request for tenant `sub`.
///
/// - unknown (or syntactically impossible) tenant: 404;
/// - missing, malformed, unknown, revoked or another tenant's token: 401;
/// - provisioning disabled for the tenant: 403.
pub async fn authenticate(app: &App, req: &Request, sub: &str) -> Result<Principal> {
    if validate_subdomain(sub).is_err() {
        return Err(unknown_tenant(sub));
    }
    let header = req.headers().get("authorization").ok().flatten();
    let presented = header.as_deref().and_then(token::bearer);
    let Some(presented) = presented else {
        return Err(refuse(
            app,
            sub,
            "missing or malformed Authorization header; expected 'Bearer <Secret Token>'",
        )
        .await);
    };
    let hash = token::hash(presented);
    let kv = kv(app);

    let cached = match &kv {
        Some(kv) => match kv.get(&cache_key(&hash)).json::<CachedGrant>().await {
            Ok(found) => found,
            Err(e) => {
                worker::console_warn!("auth cache read failed: {e}");
                None
            }
        },
        None => None,
    };
    let grant = match cached {
        Some(g) if g.subdomain == sub => g,
        _ => match store::authorize(&app.db, sub, &hash).await? {
            Access::UnknownTenant => return Err(unknown_tenant(sub)),
            Access::Denied => return Err(invalid_token()),
            Access::Granted(g) if token::hashes_equal(&g.hash, &hash) => {
                let g = CachedGrant::from(g);
                if let Some(kv) = &kv {
                    cache(kv, &hash, &g).await;
                }
                g
            }
            Access::Granted(_) => return Err(invalid_token()),
        },
    };
    if !grant.provisioning_enabled {
        return Err(Error::forbidden(format!(
            "provisioning is disabled for the organisation '{}'; an administrator can enable it in the admin console",
            quote(sub)
        )));
    }
    record_use(app, &grant);
    Ok(Principal {
        tenant_id: grant.tenant_id,
        subdomain: grant.subdomain,
        token_id: grant.token_id,
    })
}

async fn cache(kv: &KvStore, hash: &str, grant: &CachedGrant) {
    let put = match kv.put(&cache_key(hash), grant) {
        Ok(put) => put.expiration_ttl(CACHE_TTL_SECS).execute().await,
        Err(e) => Err(e),
    };
    if let Err(e) = put {
        worker::console_warn!("auth cache write failed: {e}");
    }
}

fn unknown_tenant(sub: &str) -> Error {
    Error::not_found(format!(
        "no organisation '{}' is served here; check the Tenant URL",
        quote(sub)
    ))
}

fn invalid_token() -> Error {
    Error::unauthorized("the Secret Token is not valid for this organisation (unknown, revoked, or another organisation's)")
}

/// A request without a usable token: 404 if the tenant does not exist, else 401.
async fn refuse(app: &App, sub: &str, why: &str) -> Error {
    match store::get_tenant(&app.db, sub).await {
        Ok(None) => unknown_tenant(sub),
        Ok(Some(_)) => Error::unauthorized(why),
        Err(e) => e,
    }
}

thread_local! {
    /// Token id -> when this isolate last wrote its `lastUsedAt`.
    static TOUCHED: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// Record `lastUsedAt` after the response, at most once per [`TOUCH_INTERVAL_MS`] per token in
/// this isolate, and only when the stored value is older than that.
fn record_use(app: &App, grant: &CachedGrant) {
    let now = app.now;
    if grant
        .last_used_at
        .is_some_and(|t| now.saturating_sub(t) < TOUCH_INTERVAL_MS)
    {
        return;
    }
    let recently = TOUCHED.with(|m| {
        let mut m = m.borrow_mut();
        if m.get(&grant.token_id)
            .is_some_and(|t| now.saturating_sub(*t) < TOUCH_INTERVAL_MS)
        {
            return true;
        }
        if m.len() >= MAX_TOUCH_ENTRIES {
            m.clear();
        }
        m.insert(grant.token_id.clone(), now);
        false
    });
    if recently {
        return;
    }
    let db = match app.env.d1("DB") {
        Ok(db) => D1(db),
        Err(_) => return,
    };
    let (tenant_id, token_id) = (grant.tenant_id.clone(), grant.token_id.clone());
    app.ctx.wait_until(async move {
        let not_before = now.saturating_sub(TOUCH_INTERVAL_MS);
        if let Err(e) = store::touch_token(&db, &tenant_id, &token_id, now, not_before).await {
            worker::console_warn!("lastUsedAt update failed: {}", e.cause.unwrap_or(e.detail));
        }
    });
}

/// Drop the cached grants of these token hashes: now, and once more shortly after.
pub async fn forget(app: &App, hashes: &[String]) {
    if hashes.is_empty() {
        return;
    }
    let Some(kv) = kv(app) else { return };
    let keys: Vec<String> = hashes.iter().map(|h| cache_key(h)).collect();
    for key in &keys {
        if let Err(e) = kv.delete(key).await {
            worker::console_error!(
                "auth cache invalidation failed (entry expires within {CACHE_TTL_SECS} s): {e}"
            );
        }
    }
    app.ctx.wait_until(async move {
        Delay::from(SECOND_FORGET_DELAY).await;
        for key in &keys {
            if let Err(e) = kv.delete(key).await {
                worker::console_warn!("second auth cache invalidation failed: {e}");
            }
        }
    });
}
