//! Two budgets of SCIM requests, through the Workers Rate Limiting binding.
//!
//! **The safety valve** (`[[ratelimits]]` `SCIM_RATE_LIMIT` in `wrangler.toml`): at most so many
//! SCIM requests per tenant and credential per period ([`check`]).
//!
//! The key is the tenant (its id) and the presented token (a prefix of its hash), checked
//! before the operation, whose own D1 calls authenticate it: one tenant's flood cannot
//! refuse another's requests, and a caller without a valid token spends only its own budget,
//! so it cannot lock a tenant out. Above the
//! limit the answer is `429 Too Many Requests` with `Retry-After` and a SCIM Error (Entra backs
//! off and retries on 429). The count is kept per Cloudflare location and is approximate, as
//! the binding's documentation says: a valve, not a quota.
//!
//! The limit is a setting: `simple = { limit, period }` of the binding (period 10 or 60 s). The
//! default, 1,000 requests per 10 s (100 per second), is four times what Entra's gallery asks an
//! application to accept (25 per second per tenant). Without the binding (a deployment
//! that removed it) or when the binding fails, requests pass: the valve fails open.
//!
//! **The refusal budget** (`SCIM_REFUSAL_LIMIT`): refused authentication (no credential, a
//! wrong one) counts against the tenant and against the tenant from the client's
//! address (`CF-Connecting-IP`); a request for an unknown tenant counts against the
//! address ([`count_refusal`]). Only refusals count, so an identity provider that
//! authenticates never spends it. Once the binding says a budget is spent, this isolate
//! remembers it for the binding's period ([`over_budget`]), and a request under it whose
//! credential the isolate does not know to be valid is answered `429` before any D1 call. A
//! stranger with random tokens then costs nothing but the first refusals of each period, and
//! its refusals are logged aggregated (`log_buffer`), never one entry each.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::js_sys::{Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::RateLimiter as RateLimiterSys;

use super::app::App;
use crate::http::meter::Binding;
use crate::service::isolate::remember;
use scim_core::scim::error::{Error, Result};

/// The binding's name in `wrangler.toml`.
pub const BINDING: &str = "SCIM_RATE_LIMIT";

/// Seconds a refused client is told to wait: the binding's period in `wrangler.toml`.
pub const RETRY_AFTER_SECS: u32 = 10;

/// Count one request under `key` on `limiter`: whether it is within the limit. Through the
/// binding itself: the `worker` crate's `limit` converts its argument and answer with
/// `serde_wasm_bindgen`, which nothing else in the wasm needs.
async fn allowed(limiter: &worker::RateLimiter, key: &str) -> worker::Result<bool> {
    let ask = async {
        let arg = Object::new();
        Reflect::set(&arg, &"key".into(), &key.into())?;
        let binding: &RateLimiterSys = limiter.as_ref().unchecked_ref();
        let outcome = JsFuture::from(binding.limit(arg)?).await?;
        Ok::<_, JsValue>(Reflect::get(&outcome, &"success".into())?.as_bool() != Some(false))
    };
    ask.await.map_err(worker::Error::from)
}

/// Count one request under `key`; `429` when it is over the limit.
pub async fn check(app: &App, key: &str) -> Result<()> {
    check_with(app, BINDING, key).await
}

/// Count one request under `key` on the rate limit binding `binding`; `429` when it is over
/// the limit, and a pass when the binding is missing or fails (the valve fails open).
pub async fn check_with(app: &App, binding: &str, key: &str) -> Result<()> {
    let limiter = match app.env.rate_limiter(binding) {
        Ok(l) => l,
        Err(_) => return Ok(()),
    };
    let outcome = app
        .meter
        .timed(Binding::RateLimit, allowed(&limiter, key))
        .await;
    match outcome {
        Ok(false) => Err(Error::new(
            429,
            format!(
                "too many requests for this organisation; retry after {RETRY_AFTER_SECS} seconds"
            ),
        )),
        Ok(_) => Ok(()),
        Err(e) => {
            worker::console_warn!("rate limiter unavailable, request allowed: {e}");
            Ok(())
        }
    }
}

/// The refusal budget's binding in `wrangler.toml`.
pub const REFUSAL_BINDING: &str = "SCIM_REFUSAL_LIMIT";

/// The refusal budget's period (the binding's `period`): how long a spent budget refuses, and
/// the `Retry-After` of its 429.
pub const REFUSAL_PERIOD_SECS: u32 = 60;

/// Bound on the per-isolate map of spent budgets.
const MAX_SPENT: usize = 10_000;

thread_local! {
    /// Budget key ([`budget_keys`]) -> until when it is spent (Unix ms).
    static SPENT: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// The client's address: `CF-Connecting-IP`, which Cloudflare sets on every request; `unknown`
/// without one, or when it holds anything but the characters of an IPv4 or IPv6 address, so
/// that nothing else is ever keyed or logged. (Cloudflare's value is canonical; a full parse
/// would cost the wasm more than it checks.)
pub fn client_address(req: &worker::Request) -> String {
    req.headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| {
            (2..=45).contains(&a.len())
                && a.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// The budgets a refusal counts against. With the tenant known: the tenant's
/// (a flood spread over many addresses) and the tenant's from this address. Without one
/// (an unknown tenant): the address's own.
fn budget_keys(address: &str, tenant_id: Option<&str>) -> Vec<String> {
    match tenant_id {
        Some(t) => vec![format!("o:{t}"), format!("oa:{t}:{address}")],
        None => vec![format!("a:{address}")],
    }
}

/// Whether refusals for tenant `tenant_id` (from anywhere, or from `address`), or from
/// `address` for tenants this isolate does not know (`None`), have spent their budget,
/// as this isolate last heard from the binding.
///
/// Keyed by tenant, a shared address (an identity provider's egress, which serves many
/// of its customers) that one misconfigured customer makes refused spends nothing of another
/// tenant's budget.
pub fn over_budget(now: i64, address: &str, tenant_id: Option<&str>) -> bool {
    SPENT.with(|m| {
        let m = m.borrow();
        // The common case, on every request: nothing spent, nothing to build.
        if m.is_empty() {
            return false;
        }
        budget_keys(address, tenant_id)
            .iter()
            .any(|key| m.get(key).is_some_and(|until| *until > now))
    })
}

/// The answer to a request refused because its budget is spent.
pub fn budget_spent() -> Error {
    Error {
        retry_after: Some(REFUSAL_PERIOD_SECS),
        ..Error::new(
            429,
            format!(
                "too many requests with a missing or invalid credential from this address or for \
                 this organisation; retry after {REFUSAL_PERIOD_SECS} seconds with a valid credential"
            ),
        )
    }
}

/// Count one refused request against its budgets ([`over_budget`]); remember a budget the
/// binding says is spent. Fails open like [`check`].
pub async fn count_refusal(app: &App, address: &str, tenant_id: Option<&str>) {
    let Ok(limiter) = app.env.rate_limiter(REFUSAL_BINDING) else {
        return;
    };
    for key in budget_keys(address, tenant_id) {
        let outcome = app
            .meter
            .timed(Binding::RateLimit, allowed(&limiter, &key))
            .await;
        match outcome {
            Ok(false) => {
                let until = app
                    .now
                    .saturating_add(i64::from(REFUSAL_PERIOD_SECS).saturating_mul(1_000));
                SPENT.with(|m| remember(&mut m.borrow_mut(), MAX_SPENT, key, until));
            }
            Ok(_) => {}
            Err(e) => worker::console_warn!("refusal budget unavailable: {e}"),
        }
    }
}
