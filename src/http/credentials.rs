//! The credentials an isolate knows to be valid, per tenant: used only while a refusal budget
//! is spent (`super::limit`), so that a valid credential (a Secret Token, an access token, a
//! client secret at the token endpoint, an assertion its federated credential accepts) is
//! never refused for the failures of others. The gate
//! and the token endpoint still check it: a revoked credential here costs a refusal, never
//! access.

use std::cell::RefCell;
use std::collections::HashMap;

use super::app::App;
use crate::http::d1::D1;
use crate::service::auth;
use crate::service::isolate::remember;
use crate::service::oauth::{self, Federation};
use scim_core::scim::error::Result;

/// How often, at most, an isolate reads a tenant's live token hashes while a refusal
/// budget is spent (a token made since is recognised within this time).
const RELOAD_CREDENTIALS_MS: i64 = 10_000;

/// Bound on the per-isolate map of valid credentials.
const MAX_CREDENTIAL_ENTRIES: usize = 10_000;

thread_local! {
    /// Subdomain -> when its live token hashes were last read in full (`i64::MIN`: never), and
    /// the hashes this isolate knows to be valid (read, or seen to open the gate). Used only
    /// while a refusal budget is spent, to let a valid credential through; the gate still
    /// checks it, so a revoked token here costs a refusal, never access.
    static CREDENTIALS: RefCell<HashMap<String, (i64, Vec<String>)>> = RefCell::new(HashMap::new());
}

/// Whether `hash` is a valid credential of `sub`, as far as this isolate knows, reading the
/// tenant's live hashes (one statement) at most once per [`RELOAD_CREDENTIALS_MS`].
pub async fn known(app: &App, db: &D1, sub: &str, hash: &str) -> Result<bool> {
    let (known, loaded_at) = CREDENTIALS.with(|m| {
        m.borrow()
            .get(sub)
            .map_or((false, i64::MIN), |(at, hs)| (auth::among(hs, hash), *at))
    });
    if known {
        return Ok(true);
    }
    if app.now.saturating_sub(loaded_at) < RELOAD_CREDENTIALS_MS {
        return Ok(false);
    }
    let hashes = auth::live_hashes(db, sub, app.now).await?;
    let known = auth::among(&hashes, hash);
    CREDENTIALS.with(|m| {
        remember(
            &mut m.borrow_mut(),
            MAX_CREDENTIAL_ENTRIES,
            sub.to_string(),
            (app.now, hashes),
        )
    });
    Ok(known)
}

/// `hash` opened `sub`'s gate.
pub fn learn(sub: &str, hash: &str) {
    CREDENTIALS.with(|m| {
        let mut m = m.borrow_mut();
        if let Some((_, hashes)) = m.get_mut(sub) {
            if !auth::among(hashes, hash) {
                hashes.push(hash.to_string());
            }
        } else {
            remember(
                &mut m,
                MAX_CREDENTIAL_ENTRIES,
                sub.to_string(),
                (i64::MIN, vec![hash.to_string()]),
            );
        }
    });
}

/// `hash` was refused for `sub` (revoked since this isolate saw it).
pub fn forget(sub: &str, hash: &str) {
    CREDENTIALS.with(|m| {
        if let Some((_, hashes)) = m.borrow_mut().get_mut(sub) {
            hashes.retain(|h| !scim_core::tenancy::token::hashes_equal(h, hash));
        }
    });
}

thread_local! {
    /// Subdomain -> the federated credential an assertion last matched there. Used only while
    /// a refusal budget is spent: an assertion that verifies against it (claims and signature,
    /// no D1 call) goes on to the grant, which checks it again against the stored credential,
    /// so one remembered after it changed lets a request reach D1, never a token.
    static FEDERATED: RefCell<HashMap<String, Federation>> = RefCell::new(HashMap::new());
}

/// An assertion matched `sub`'s federated credential `f`.
pub fn learn_federation(sub: &str, f: Federation) {
    FEDERATED.with(|m| {
        remember(
            &mut m.borrow_mut(),
            MAX_CREDENTIAL_ENTRIES,
            sub.to_string(),
            f,
        )
    });
}

/// Whether `jwt` is an assertion `sub`'s remembered federated credential accepts (its
/// claims and its signature; a replay is the grant's to refuse): no D1 call.
pub async fn assertion_known(app: &App, sub: &str, jwt: &str) -> bool {
    let Some(f) = FEDERATED.with(|m| m.borrow().get(sub).cloned()) else {
        return false;
    };
    let keys = super::jwks::EdgeKeys { app };
    oauth::assertion_valid(&keys, &f, jwt, app.now)
        .await
        .is_ok()
}
