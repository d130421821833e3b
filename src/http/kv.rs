//! The auth cache on Workers KV ([`AuthCache`]): a grant under `auth:v1:<token hash>`, so that a
//! warm SCIM request authenticates without a D1 call.
//!
//! Staleness: D1 is the truth; KV is eventually consistent between locations. Revoking a token,
//! disabling provisioning or deleting an organisation deletes the cached entries before the
//! admin call returns (so the same location refuses at once, as does `wrangler dev`), deletes
//! them again two seconds later (a request that read D1 just before the change may have written
//! its grant back), and every entry expires [`CACHE_TTL_SECS`] after it was written. Elsewhere a
//! change shows within KV's propagation delay (typically up to 60 s), and never later than the
//! TTL. Without the KV binding every request authenticates from D1: slower, still correct.

use std::time::Duration;
use worker::{Context, Delay, KvStore};

use super::app::App;
use crate::service::auth::{AuthCache, Grant};
use crate::store::meter::{Binding, Meter};

/// Seconds a cached grant lives in KV: the upper bound on staleness (KV's minimum is 60).
pub const CACHE_TTL_SECS: u64 = 300;

/// Delay before the second invalidation.
const SECOND_FORGET_DELAY: Duration = Duration::from_secs(2);

fn cache_key(hash: &str) -> String {
    format!("auth:v1:{hash}")
}

/// The KV namespace `KV`, and the request context that runs the second invalidation after the
/// response.
pub struct KvCache<'a> {
    kv: Option<KvStore>,
    ctx: &'a Context,
    meter: &'a Meter,
}

impl<'a> KvCache<'a> {
    pub fn new(app: &'a App) -> KvCache<'a> {
        let kv = match app.env.kv("KV") {
            Ok(kv) => Some(kv),
            Err(e) => {
                worker::console_error!("KV binding unavailable, authenticating from D1: {e}");
                None
            }
        };
        KvCache {
            kv,
            ctx: &app.ctx,
            meter: &app.meter,
        }
    }
}

impl AuthCache for KvCache<'_> {
    async fn get(&self, hash: &str) -> Option<Grant> {
        let kv = self.kv.as_ref()?;
        match self
            .meter
            .timed(Binding::Kv, kv.get(&cache_key(hash)).json::<Grant>())
            .await
        {
            Ok(found) => found,
            Err(e) => {
                worker::console_warn!("auth cache read failed: {e}");
                None
            }
        }
    }

    /// Written after the response: the request that missed the cache has its grant from D1
    /// already, and should not wait for a second round trip to store it.
    async fn put(&self, hash: &str, grant: &Grant) {
        let Some(kv) = &self.kv else { return };
        match kv.put(&cache_key(hash), grant) {
            Ok(put) => self.ctx.wait_until(async move {
                if let Err(e) = put.expiration_ttl(CACHE_TTL_SECS).execute().await {
                    worker::console_warn!("auth cache write failed: {e}");
                }
            }),
            Err(e) => worker::console_warn!("auth cache write failed: {e}"),
        }
    }

    /// Drop the cached grants of these token hashes: now, and once more shortly after.
    async fn forget(&self, hashes: &[String]) {
        let Some(kv) = self.kv.clone() else { return };
        if hashes.is_empty() {
            return;
        }
        let keys: Vec<String> = hashes.iter().map(|h| cache_key(h)).collect();
        for key in &keys {
            if let Err(e) = self.meter.timed(Binding::Kv, kv.delete(key)).await {
                worker::console_error!(
                    "auth cache invalidation failed (entry expires within {CACHE_TTL_SECS} s): {e}"
                );
            }
        }
        self.ctx.wait_until(async move {
            Delay::from(SECOND_FORGET_DELAY).await;
            for key in &keys {
                if let Err(e) = kv.delete(key).await {
                    worker::console_warn!("second auth cache invalidation failed: {e}");
                }
            }
        });
    }
}
