//! Authenticating a SCIM request: the organisation's bearer token, checked against D1 with a
//! cache in front (Workers KV on the Worker, through the [`AuthCache`] seam).
//!
//! Per request: hash the presented token (SHA-256) and look the hash up in the cache; a grant
//! for this organisation means the request does not touch D1 to authenticate. On a miss (or a
//! grant for another organisation), one D1 statement says whether the organisation exists and
//! whether the token is one of its tokens, and the grant is cached.
//!
//! Staleness: D1 is the truth; the cache may lag. Whatever revokes access (revoking a token,
//! disabling provisioning, deleting an organisation) calls [`AuthCache::forget`] with the
//! affected hashes before it answers; see the Worker's cache for how long a grant can outlive
//! that elsewhere.

use serde::{Deserialize, Serialize};

use crate::scim::error::{quote, Error, Result};
use crate::store::tenants::{self as store, Access, TokenGrant};
use crate::store::Executor;
use crate::tenancy::host::validate_subdomain;
use crate::tenancy::token;

/// `lastUsedAt` resolution: a token's use is recorded at most once per this interval.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

/// What the cache holds under a token's hash. Never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub tenant_id: String,
    pub subdomain: String,
    pub provisioning_enabled: bool,
    pub token_id: String,
    pub last_used_at: Option<i64>,
}

impl From<TokenGrant> for Grant {
    fn from(g: TokenGrant) -> Self {
        Grant {
            tenant_id: g.tenant_id,
            subdomain: g.subdomain,
            provisioning_enabled: g.provisioning_enabled,
            token_id: g.token_id,
            last_used_at: g.last_used_at,
        }
    }
}

/// A cache of grants by token hash. It may forget at any time; it must forget when told.
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait AuthCache {
    async fn get(&self, hash: &str) -> Option<Grant>;
    async fn put(&self, hash: &str, grant: &Grant);
    /// Drop the grants of these token hashes.
    async fn forget(&self, hashes: &[String]);
}

/// The authenticated caller of a SCIM request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub subdomain: String,
    pub token_id: String,
    /// When the token's use was last recorded, as far as this request knows.
    pub last_used_at: Option<i64>,
}

impl Principal {
    /// Whether this request should record the token's use (`lastUsedAt`).
    pub fn touch_due(&self, now: i64) -> bool {
        self.last_used_at
            .is_none_or(|t| now.saturating_sub(t) >= TOUCH_INTERVAL_MS)
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

/// A refused request: why, and the organisation when it exists (its provisioning log records
/// the refusal).
#[derive(Debug)]
pub struct Refused {
    pub tenant_id: Option<String>,
    pub error: Error,
}

impl From<Error> for Refused {
    fn from(error: Error) -> Self {
        Refused {
            tenant_id: None,
            error,
        }
    }
}

fn refused(tenant_id: String, error: Error) -> Refused {
    Refused {
        tenant_id: Some(tenant_id),
        error,
    }
}

/// Authenticate a SCIM request for organisation `sub` with its `Authorization` header:
///
/// - unknown (or syntactically impossible) organisation: 404;
/// - missing, malformed, unknown, revoked or another organisation's token: 401;
/// - provisioning disabled for the organisation: 403.
pub async fn authenticate<E: Executor, C: AuthCache>(
    db: &E,
    cache: &C,
    sub: &str,
    authorization: Option<&str>,
) -> Result<Principal, Refused> {
    if validate_subdomain(sub).is_err() {
        return Err(unknown_tenant(sub).into());
    }
    let Some(presented) = authorization.and_then(token::bearer) else {
        // Without a usable token, say whether the organisation exists at all.
        return Err(match store::get_tenant(db, sub).await? {
            None => unknown_tenant(sub).into(),
            Some(t) => refused(
                t.id,
                Error::unauthorized(
                    "missing or malformed Authorization header; expected 'Bearer <Secret Token>'",
                ),
            ),
        });
    };
    let hash = token::hash(presented);
    let grant = match cache.get(&hash).await {
        Some(g) if g.subdomain == sub => g,
        _ => match store::authorize(db, sub, &hash).await? {
            Access::UnknownTenant => return Err(unknown_tenant(sub).into()),
            Access::Denied(tenant_id) => return Err(refused(tenant_id, invalid_token())),
            Access::Granted(g) if token::hashes_equal(&g.hash, &hash) => {
                let g = Grant::from(g);
                cache.put(&hash, &g).await;
                g
            }
            Access::Granted(g) => return Err(refused(g.tenant_id, invalid_token())),
        },
    };
    if !grant.provisioning_enabled {
        return Err(refused(
            grant.tenant_id,
            Error::forbidden(format!(
                "provisioning is disabled for the organisation '{}'; an administrator can enable it in the admin console",
                quote(sub)
            )),
        ));
    }
    Ok(Principal {
        tenant_id: grant.tenant_id,
        subdomain: grant.subdomain,
        token_id: grant.token_id,
        last_used_at: grant.last_used_at,
    })
}

/// Record the token's use, unless another request already did within the interval.
pub async fn touch<E: Executor>(db: &E, principal: &Principal, now: i64) -> Result<()> {
    let not_before = now.saturating_sub(TOUCH_INTERVAL_MS);
    store::touch_token(
        db,
        &principal.tenant_id,
        &principal.token_id,
        now,
        not_before,
    )
    .await
}
