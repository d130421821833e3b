//! The safety valve: at most so many SCIM requests per organisation per period, through the
//! Workers Rate Limiting binding (`[[ratelimits]]` `SCIM_RATE_LIMIT` in `wrangler.toml`).
//!
//! The key is the organisation (its id) and the presented token (a prefix of its hash), checked
//! before the operation, whose own D1 calls authenticate it: one organisation's flood cannot
//! refuse another's requests, and a caller without a valid token spends only its own budget,
//! so it cannot lock an organisation out. Above the
//! limit the answer is `429 Too Many Requests` with `Retry-After` and a SCIM Error (Entra backs
//! off and retries on 429). The count is kept per Cloudflare location and is approximate, as
//! the binding's documentation says: a valve, not a quota.
//!
//! The limit is a setting: `simple = { limit, period }` of the binding (period 10 or 60 s). The
//! default, 1,000 requests per 10 s (100 per second), is four times what Entra's gallery asks an
//! application to accept (25 per second per organisation). Without the binding (a deployment
//! that removed it) or when the binding fails, requests pass: the valve fails open.

use super::app::App;
use crate::scim::error::{Error, Result};
use crate::store::meter::Binding;

/// The binding's name in `wrangler.toml`.
pub const BINDING: &str = "SCIM_RATE_LIMIT";

/// Seconds a refused client is told to wait: the binding's period in `wrangler.toml`.
pub const RETRY_AFTER_SECS: u32 = 10;

/// Count one request under `key`; `429` when it is over the limit.
pub async fn check(app: &App, key: &str) -> Result<()> {
    let limiter = match app.env.rate_limiter(BINDING) {
        Ok(l) => l,
        Err(_) => return Ok(()),
    };
    let outcome = app
        .meter
        .timed(Binding::RateLimit, limiter.limit(key.to_string()))
        .await;
    match outcome {
        Ok(outcome) if !outcome.success => Err(Error::new(
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
