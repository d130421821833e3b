//! Scheduled upkeep (the Worker's Cron Trigger) and deleting a tenant.
//!
//! Each task works in chunks ([`crate::store::upkeep`]) until it is done or the run's time
//! budget is spent; whatever is left, the next run continues. Deleting a tenant makes
//! it unreachable in one batch and purges what it had in rounds, here and in later runs, with
//! what is left visible on the admin API.

use super::shards::{self, Databases};
use super::Runtime;
use crate::store::catalog;
use crate::store::tenants as tenants_store;
use crate::store::upkeep::{self as store, CHUNK};
use scim_core::scim::error::{quote, Error, Result};

/// A deleted tenant still being purged, as the admin API lists it.
pub use crate::store::upkeep::Purge;
use crate::store::Executor;
use scim_core::time::DAY_MS;

/// What upkeep keeps, from the Worker's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `EVENT_RETENTION_DAYS`, 30 by default.
    pub event_retention_days: i64,
    /// `LOG_RETENTION_DAYS`, 30 by default.
    pub log_retention_days: i64,
    /// `LOG_MAX_ENTRIES` per tenant, 20,000 by default.
    pub log_max_entries: i64,
    /// `LOG_MAX_REFUSALS` per tenant, 1,000 by default: aggregated refusals (each one
    /// minute of one address's refused requests), capped apart from the entries above.
    pub log_max_refusals: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            event_retention_days: 30,
            log_retention_days: 30,
            log_max_entries: 20_000,
            log_max_refusals: 1_000,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub events_expired: u64,
    pub logs_expired: u64,
    pub logs_capped: u64,
    /// Expired console links and sessions, access tokens, client secrets and remembered
    /// assertions removed.
    pub lapsed: u64,
    pub purges: Vec<Purge>,
    /// Webhook delivery attempts and dead letters (in the catalog) past the events' retention.
    pub deliveries_expired: u64,
    /// Whether the time budget ran out before everything was done.
    pub unfinished: bool,
}

/// Tenants whose log cap one batch enforces.
const CAP_BATCH: i64 = 50;

/// One run over every shard, each given an equal part of what is left of `budget_ms` (a
/// shard's D1 limits are its own: 1,000 statements and 30 s per invocation apply per call).
pub async fn run_all<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    settings: Settings,
    budget_ms: i64,
) -> Result<Report> {
    let deadline = rt.clock().saturating_add(budget_ms);
    let mut total = Report::default();
    let bindings = s.bindings();
    for (i, binding) in bindings.iter().enumerate() {
        let left = i64::try_from(bindings.len().saturating_sub(i))
            .unwrap_or(1)
            .max(1);
        let share = deadline
            .saturating_sub(rt.clock())
            .max(0)
            .checked_div(left)
            .unwrap_or(0);
        let r = run(&s.shard(binding)?, rt, settings, share).await?;
        total.events_expired = total.events_expired.saturating_add(r.events_expired);
        total.logs_expired = total.logs_expired.saturating_add(r.logs_expired);
        total.logs_capped = total.logs_capped.saturating_add(r.logs_capped);
        total.lapsed = total.lapsed.saturating_add(r.lapsed);
        total.purges.extend(r.purges);
        total.unfinished |= r.unfinished;
    }
    // A delivery's record lives as long as its event: replaying a dead letter needs the event.
    let catalog = s.catalog()?;
    let before = rt
        .now()
        .saturating_sub(settings.event_retention_days.saturating_mul(DAY_MS));
    loop {
        let n = crate::store::webhooks::expire(&catalog, before, CHUNK).await?;
        total.deliveries_expired = total.deliveries_expired.saturating_add(n);
        if n < CHUNK as u64 || rt.clock() >= deadline {
            break;
        }
    }
    Ok(total)
}

/// One run on one shard: retention of events and log entries, the log cap, and the purge of
/// deleted tenants, until done or `budget_ms` have passed.
pub async fn run<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    settings: Settings,
    budget_ms: i64,
) -> Result<Report> {
    let deadline = rt.clock().saturating_add(budget_ms);
    let out_of_time = || rt.clock() >= deadline;
    let mut report = Report::default();
    let now = rt.now();
    for (table, days, count) in [
        (
            "events",
            settings.event_retention_days,
            &mut report.events_expired,
        ),
        (
            "logs",
            settings.log_retention_days,
            &mut report.logs_expired,
        ),
    ] {
        let before = now.saturating_sub(days.saturating_mul(DAY_MS));
        loop {
            let n = store::expire(db, table, before).await?;
            *count = count.saturating_add(n);
            if n < CHUNK as u64 || out_of_time() {
                break;
            }
        }
    }
    report.lapsed = store::expire_lapsed(db, now).await?;
    let mut after = String::new();
    while !out_of_time() {
        let ids = store::tenant_ids(db, &after, CAP_BATCH).await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        // Capping removes at most a chunk per tenant per batch; repeat while it bites.
        loop {
            let n = store::cap_logs(
                db,
                &ids,
                settings.log_max_entries,
                settings.log_max_refusals,
            )
            .await?;
            report.logs_capped = report.logs_capped.saturating_add(n);
            if n == 0 || out_of_time() {
                break;
            }
        }
        after = last;
    }
    for purge in store::pending(db).await? {
        let mut remaining = purge.remaining;
        while remaining > 0 && !out_of_time() {
            remaining = store::purge_round(db, &purge.id).await?;
        }
        if remaining == 0 && purge.remaining == 0 {
            // Nothing was left but the row: one round removes it.
            store::purge_round(db, &purge.id).await?;
        }
        report.purges.push(Purge { remaining, ..purge });
    }
    report.unfinished = out_of_time();
    Ok(report)
}

/// Delete tenant `sub`: unreachable at once (in its shard, its tokens deleted and its
/// subdomain freed; then off the catalog's list), then as much of its data purged as
/// `budget_ms` allows; the rest goes in the scheduled runs. Returns the purge as it stands.
pub async fn delete_tenant<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    sub: &str,
    budget_ms: i64,
) -> Result<Purge> {
    let at = shards::locate(s, sub).await?;
    let db = &at.db;
    // The shard first: once its row says deleted, no request reaches the tenant, even
    // should taking it off the list fail (a retried DELETE then finishes the job).
    let deleted = tenants_store::delete_tenant(db, sub, rt.now()).await?;
    catalog::remove(&s.catalog()?, &at.org.id).await?;
    let id = deleted
        .ok_or_else(|| Error::not_found(format!("no tenant with subdomain '{}'", quote(sub))))?;
    let deadline = rt.clock().saturating_add(budget_ms);
    let mut remaining = store::purge_round(db, &id).await?;
    while remaining > 0 && rt.clock() < deadline {
        remaining = store::purge_round(db, &id).await?;
    }
    Ok(Purge {
        id,
        subdomain: sub.to_string(),
        deleted_at: rt.now(),
        remaining,
    })
}

/// The tenants still being purged, on every shard.
pub async fn pending<S: Databases>(s: &S) -> Result<Vec<Purge>> {
    let mut all = Vec::new();
    for binding in s.bindings() {
        all.extend(store::pending(&s.shard(binding)?).await?);
    }
    Ok(all)
}
