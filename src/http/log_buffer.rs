//! The provisioning-log entries written after the response (reads, refusals, failures, writes
//! that changed nothing), gathered per organisation in this isolate and written together: an
//! identity provider's cycle sends requests in bursts (Entra's initial cycle is a `GET` and a
//! `POST` per user), and one D1 statement for a burst's entries costs the database what one
//! entry did, where one statement per read doubled the database's work for reads.
//!
//! The first entry of an organisation schedules its flush [`FLUSH_AFTER_MS`] later with
//! `ctx.waitUntil` (the runtime keeps the request's context alive for it); a flush comes sooner
//! once [`MAX_BUFFERED`] entries wait. An entry therefore reaches the log within a fraction of
//! a second, and is lost only if the isolate is killed in that window, or if D1 refuses the
//! write twice (the write's own entries ride in their batch and are never at risk).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use worker::Delay;

use super::app::App;
use crate::service::audit;
use crate::store::trail::LogEntry;

/// How long the first entry of an organisation waits for others.
pub const FLUSH_AFTER_MS: u64 = 250;
/// The pause before the one retry of a write that D1 refused as briefly unavailable.
pub const RETRY_AFTER_MS: u64 = 100;
/// Entries of one organisation that are written at once without waiting.
pub const MAX_BUFFERED: usize = 100;

thread_local! {
    /// Organisation id -> its subdomain (which names its database) and the entries waiting.
    static WAITING: RefCell<HashMap<String, (String, Vec<LogEntry>)>> = RefCell::new(HashMap::new());
}

/// Add an entry of organisation `tenant_id` (subdomain `sub`); schedule or make its write.
pub fn add(app: &App, sub: &str, tenant_id: &str, entry: LogEntry) {
    let (first, full) = WAITING.with(|w| {
        let mut w = w.borrow_mut();
        let slot = w
            .entry(tenant_id.to_string())
            .or_insert_with(|| (sub.to_string(), Vec::new()));
        slot.1.push(entry);
        (slot.1.len() == 1, slot.1.len() >= MAX_BUFFERED)
    });
    if !(first || full) {
        return;
    }
    let Ok(db) = app.db_for(sub) else {
        return;
    };
    let tenant_id = tenant_id.to_string();
    app.ctx.wait_until(async move {
        if !full {
            Delay::from(Duration::from_millis(FLUSH_AFTER_MS)).await;
        }
        let entries = WAITING
            .with(|w| w.borrow_mut().remove(&tenant_id))
            .map(|(_, entries)| entries)
            .unwrap_or_default();
        let mut written = audit::record(&db, &tenant_id, &entries).await;
        if written.as_ref().is_err_and(|e| e.status == 503) {
            // D1 was briefly unavailable (its own answer says so): once more, a moment later.
            Delay::from(Duration::from_millis(RETRY_AFTER_MS)).await;
            written = audit::record(&db, &tenant_id, &entries).await;
        }
        if let Err(e) = written {
            worker::console_warn!(
                "provisioning log: {} entries not written: {}",
                entries.len(),
                e.cause.unwrap_or(e.detail)
            );
        }
    });
}
