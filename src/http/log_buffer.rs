//! The provisioning-log entries written after the response (reads, failures, refusals, writes
//! that changed nothing), gathered per tenant in this isolate and written together: an
//! identity provider's cycle sends requests in bursts (Entra's initial cycle is a `GET` and a
//! `POST` per user), and one D1 statement for a burst's entries costs the database what one
//! entry did, where one statement per read doubled the database's work for reads.
//!
//! The first entry of a tenant schedules its flush [`FLUSH_AFTER_MS`] later with
//! `ctx.waitUntil` (the runtime keeps the request's context alive for it); a flush comes sooner
//! once [`MAX_BUFFERED`] entries wait. An entry therefore reaches the log within a fraction of
//! a second, and is lost only if the isolate is killed in that window, or if D1 refuses the
//! write four times in a row (the write's own entries ride in their batch and are never at
//! risk).
//!
//! Refused authentication is gathered apart ([`refused`]): refusals of one minute, address and
//! reason add up to one aggregated entry here, and the flush adds the count to that entry in
//! D1 (creating it on its minute's first refusal). A flood of a thousand random tokens then
//! makes one entry and a few writes, not a thousand of each.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use worker::Delay;

use super::app::App;
use super::shards::Bindings;
use crate::http::meter::Meter;
use crate::service::log::LogEntry;
use crate::service::log::Refusals;
use crate::service::{log, shards};

/// How long the first entry of a tenant waits for others.
pub const FLUSH_AFTER_MS: u64 = 250;
/// The pause before the first retry of a write that D1 refused as briefly unavailable; each
/// further retry waits twice as long.
pub const RETRY_AFTER_MS: u64 = 100;
/// Retries of such a write (100, 200 and 400 ms later): under 20% of D1 calls failing, one
/// retry lost about one flush in 25; three lose about one in 600.
pub const RETRIES: usize = 3;
/// Entries of one tenant that are written at once without waiting.
pub const MAX_BUFFERED: usize = 100;

/// What waits to be written for one tenant.
#[derive(Default)]
struct Waiting {
    entries: Vec<LogEntry>,
    /// Aggregated, at most one per minute, address and reason.
    refusals: Vec<Refusals>,
}

impl Waiting {
    fn len(&self) -> usize {
        self.entries.len().saturating_add(self.refusals.len())
    }
}

thread_local! {
    /// Tenant id -> what waits to be written for it.
    static WAITING: RefCell<HashMap<String, Waiting>> = RefCell::new(HashMap::new());
}

/// Add an entry of tenant `tenant_id` (on shard `shard`); schedule or make its write.
pub fn add(app: &App, shard: &str, tenant_id: &str, entry: LogEntry) {
    gather(app, shard, tenant_id, |w| w.entries.push(entry));
}

/// Add a refused request of tenant `tenant_id` to its minute's aggregated entry.
pub fn refused(app: &App, shard: &str, tenant_id: &str, refusal: Refusals) {
    gather(app, shard, tenant_id, |w| {
        let same = w.refusals.iter_mut().find(|r| {
            (r.minute, r.address.as_str(), r.reason)
                == (refusal.minute, refusal.address.as_str(), refusal.reason)
        });
        match same {
            Some(r) => r.absorb(refusal),
            None => w.refusals.push(refusal),
        }
    });
}

/// Put something in tenant `tenant_id`'s waiting list; schedule or make its write.
fn gather(app: &App, shard: &str, tenant_id: &str, put: impl FnOnce(&mut Waiting)) {
    let (first, full) = WAITING.with(|w| {
        let mut w = w.borrow_mut();
        let slot = w.entry(tenant_id.to_string()).or_default();
        let before = slot.len();
        put(slot);
        (before == 0 && slot.len() > 0, slot.len() >= MAX_BUFFERED)
    });
    if !(first || full) {
        return;
    }
    let Ok(db) = app.shard(shard) else {
        return;
    };
    let tenant_id = tenant_id.to_string();
    let env = app.env.clone();
    app.ctx.wait_until(async move {
        if !full {
            Delay::from(Duration::from_millis(FLUSH_AFTER_MS)).await;
        }
        let w = WAITING
            .with(|w| w.borrow_mut().remove(&tenant_id))
            .unwrap_or_default();
        let mut written = log::record(&db, &tenant_id, &w.entries, &w.refusals).await;
        let mut pause = RETRY_AFTER_MS;
        for _ in 0..RETRIES {
            if !written.as_ref().is_err_and(|e| e.status == 503) {
                break;
            }
            // D1 was briefly unavailable (its own answer says so): again, a moment later.
            Delay::from(Duration::from_millis(pause)).await;
            pause = pause.saturating_mul(2);
            written = log::record(&db, &tenant_id, &w.entries, &w.refusals).await;
        }
        if matches!(written, Ok(false)) {
            // The tenant moved to another shard since these requests: write them there.
            let meter = Meter::default();
            let all = Bindings::of(&env, &meter);
            written = match shards::locate_id(&all, &tenant_id).await {
                Ok(Some(at)) => log::record(&at.db, &tenant_id, &w.entries, &w.refusals).await,
                Ok(None) => Ok(true),
                Err(e) => Err(e),
            };
        }
        if let Err(e) = written {
            worker::console_warn!(
                "provisioning log: {} entries not written: {}",
                w.len(),
                e.cause.unwrap_or(e.detail)
            );
        }
    });
}
