//! Authenticating a SCIM request inside its own D1 round trips.
//!
//! Every batch the request sends starts with the gate (`store::gate`): the token's hash must be
//! a live token of the tenant (a Secret Token, or an unexpired access token of the token
//! endpoint, [`super::oauth`]), with provisioning enabled, or the batch fails and commits
//! nothing. So a read is one D1 call and a write one or two, with no call of its own for
//! authentication, and revoking a token, disabling provisioning or deleting the tenant
//! holds from the next statement on, everywhere.
//!
//! Statements are scoped by the tenant's id before the gate has run, so the edge keeps
//! each subdomain's id and shard once looked up in the catalog (`shards::locate`). When the gate stays
//! shut, one more statement ([`verdict`]) says why:
//!
//! - unknown (or syntactically impossible) tenant: 404;
//! - missing, malformed, unknown, revoked, expired or another tenant's token: 401;
//! - provisioning disabled for the tenant: 403.
//!
//! Chosen by measurement over a cache of grants in Workers KV in front of D1 (`make bench`,
//! README "Performance"): the KV call cost more than the statement it saved.

use crate::store::gate::{self, Condition};
use crate::store::tenants as store;
use crate::store::Executor;
use scim_core::scim::error::{quote, Error, Result};

/// The executor that opens every batch with the gate: what the edge runs a SCIM request on.
pub use crate::store::gate::Gated;
use scim_core::tenancy::host::validate_subdomain;
use scim_core::tenancy::token;

/// `lastUsedAt` resolution: a token's use is recorded at most once per this interval.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

/// The authenticated caller of a SCIM request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub token_id: String,
    /// When the token's use was last recorded, as far as this request knows.
    pub last_used_at: Option<i64>,
    /// An access token of the token endpoint (else a Secret Token).
    pub oauth: bool,
}

impl Principal {
    /// Whether this request should record the token's use (`lastUsedAt`).
    pub fn touch_due(&self, now: i64) -> bool {
        self.last_used_at
            .is_none_or(|t| now.saturating_sub(t) >= TOUCH_INTERVAL_MS)
    }
}

/// How long a client waits before retrying a write refused while its tenant moves.
pub const MOVING_RETRY_SECONDS: u32 = 2;

/// A write refused for a moment: the tenant is being switched to another shard. 503 with
/// `Retry-After` (Entra and Okta retry it; a 5xx other than 503 counts towards quarantine).
pub fn moving() -> Error {
    Error {
        retry_after: Some(MOVING_RETRY_SECONDS),
        ..Error::new(
            503,
            "this organisation is being moved to another database; retry the request in a moment",
        )
    }
}

/// No live tenant has subdomain `sub`.
pub fn unknown_tenant(sub: &str) -> Error {
    Error::not_found(format!(
        "no organisation '{}' is served here; check the Tenant URL",
        quote(sub)
    ))
}

/// No usable `Authorization` header.
pub fn missing_token() -> Error {
    Error::unauthorized(
        "missing or malformed Authorization header; expected 'Bearer <Secret Token>'",
    )
}

fn invalid_token() -> Error {
    Error::unauthorized("the Secret Token or access token is not valid for this organisation (unknown, revoked, or another organisation's)")
}

/// An access token of the token endpoint past its `expires_in`.
fn expired_token() -> Error {
    Error::unauthorized(
        "the access token has expired; request a new one from the organisation's token endpoint",
    )
}

/// A refused request: why, and the tenant when it exists (its provisioning log records
/// the refusal).
#[derive(Debug)]
pub struct Refused {
    pub tenant_id: Option<String>,
    pub error: Error,
}

fn refused(tenant_id: Option<String>, error: Error) -> Refused {
    Refused { tenant_id, error }
}

/// The SHA-256 of the bearer token an `Authorization` header presents, if it presents one.
pub fn presented(authorization: Option<&str>) -> Option<String> {
    authorization.and_then(token::bearer).map(token::hash)
}

/// The answer for `sub` when the gate stayed shut.
#[derive(Debug)]
pub enum Verdict {
    Refused(Refused),
    /// The subdomain now names another tenant (this id): the one the request was scoped
    /// to was deleted and its subdomain taken again.
    Moved(String),
    /// The tenant's writes are refused for a moment while a move switches it to
    /// another shard: 503, which identity providers retry.
    Frozen,
    /// The token opens the gate: whatever failed was not authentication.
    Open,
}

/// Why tenant `sub` (scoped as `tenant_id`) does not accept the token of hash `hash` at
/// `now`, in one statement: the first condition of the gate's own rule that fails, as the
/// refusal the client gets.
pub async fn verdict<E: Executor>(
    db: &E,
    sub: &str,
    hash: &str,
    tenant_id: &str,
    now: i64,
) -> Result<Verdict> {
    if validate_subdomain(sub).is_err() {
        return Ok(Verdict::Refused(refused(None, unknown_tenant(sub))));
    }
    let Some(st) = gate::standing(db, sub, hash, now).await? else {
        return Ok(Verdict::Refused(refused(None, unknown_tenant(sub))));
    };
    // The statement matched the hash in SQL; compare it again in constant time.
    let matched = st
        .token_hash
        .as_deref()
        .is_some_and(|h| token::hashes_equal(h, hash));
    Ok(match st.failing {
        Some(Condition::Token) => Verdict::Refused(refused(Some(st.tenant_id), invalid_token())),
        _ if !matched => Verdict::Refused(refused(Some(st.tenant_id), invalid_token())),
        Some(Condition::Unexpired) => {
            Verdict::Refused(refused(Some(st.tenant_id), expired_token()))
        }
        Some(Condition::Enabled) => Verdict::Refused(refused(
            Some(st.tenant_id),
            Error::forbidden(format!(
                "provisioning is disabled for the organisation '{}'; an administrator can enable it in the admin console",
                quote(sub)
            )),
        )),
        _ if st.tenant_id != tenant_id => Verdict::Moved(st.tenant_id),
        Some(Condition::Thawed) => Verdict::Frozen,
        None => Verdict::Open,
    })
}

/// How a request that ran behind the gate ended, as far as its credential goes.
#[derive(Debug)]
pub struct Settled {
    /// The gate stayed shut on the last call (or nothing got through it): why.
    pub shut: Option<Verdict>,
    /// The caller, once a call got through the gate: its use of the token may be recorded
    /// (unless the verdict refuses the request).
    pub principal: Option<Principal>,
}

/// After an operation of tenant `sub` ran behind `gated`: whether the token opened the gate,
/// and if not, why (one more statement, [`verdict`]). When nothing reached D1 (discovery, or
/// input refused before any read), the gate runs alone, so that every SCIM request is
/// authenticated; D1 briefly unavailable then is the answer itself.
pub async fn settle<E: Executor>(gated: &Gated<'_, E>, sub: &str) -> Result<Settled> {
    let (tenant_id, hash, now) = gated.checks();
    if gated.pass().is_none() && !gated.shut_by_failure() {
        if let Err(e) = gated.open().await {
            if !gated.shut_by_failure() {
                return Err(e.into());
            }
        }
    }
    let shut = if gated.shut() {
        Some(verdict(gated.db(), sub, hash, tenant_id, now).await?)
    } else {
        None
    };
    let principal = gated.pass().map(|pass| Principal {
        tenant_id: tenant_id.to_string(),
        token_id: pass.token_id,
        last_used_at: pass.last_used_at,
        oauth: pass.oauth == 1,
    });
    Ok(Settled { shut, principal })
}

/// The hashes of tenant `sub`'s live bearer credentials at `now` (Secret Tokens, unexpired
/// access tokens), in one statement (none when it is unknown): how the edge recognises a
/// valid credential while a refusal budget is spent.
pub async fn live_hashes<E: Executor>(db: &E, sub: &str, now: i64) -> Result<Vec<String>> {
    if validate_subdomain(sub).is_err() {
        return Ok(Vec::new());
    }
    Ok(store::live_token_hashes(db, sub, now).await?)
}

/// Whether `hash` is one of `hashes`, each compared in constant time.
pub fn among(hashes: &[String], hash: &str) -> bool {
    hashes
        .iter()
        .fold(false, |found, h| found | token::hashes_equal(h, hash))
}

/// Record the token's use, unless another request already did within the interval.
pub async fn touch<E: Executor>(db: &E, principal: &Principal, now: i64) -> Result<()> {
    let not_before = now.saturating_sub(TOUCH_INTERVAL_MS);
    Ok(store::touch_token(
        db,
        &principal.tenant_id,
        &principal.token_id,
        now,
        not_before,
    )
    .await?)
}
