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
use worker::{Context, Delay, Env, KvStore};

use crate::service::auth::{AuthCache, Grant};

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
}

impl<'a> KvCache<'a> {
    pub fn new(env: &Env, ctx: &'a Context) -> KvCache<'a> {
        let kv = match env.kv("KV") {
            Ok(kv) => Some(kv),
            Err(e) => {
                worker::console_error!("KV binding unavailable, authenticating from D1: {e}");
                None
            }
        };
        KvCache { kv, ctx }
    }
}

impl AuthCache for KvCache<'_> {
    async fn get(&self, hash: &str) -> Option<Grant> {
        let kv = self.kv.as_ref()?;
        match kv.get(&cache_key(hash)).json::<Grant>().await {
            Ok(found) => found,
            Err(e) => {
                worker::console_warn!("auth cache read failed: {e}");
                None
            }
        }
    }

    async fn put(&self, hash: &str, grant: &Grant) {
        let Some(kv) = &self.kv else { return };
        let put = match kv.put(&cache_key(hash), grant) {
            Ok(put) => put.expiration_ttl(CACHE_TTL_SECS).execute().await,
            Err(e) => Err(e),
        };
        if let Err(e) = put {
            worker::console_warn!("auth cache write failed: {e}");
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
            if let Err(e) = kv.delete(key).await {
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
