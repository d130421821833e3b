//! Alerts: telling the vendor that an organisation's provisioning fails or stopped, before its
//! users complain. An Entra job quarantined (an expired secret, a deleted app, a wrong Tenant
//! URL) simply stops calling; one whose requests keep failing is on its way there.
//!
//! Each alert is a change-feed event (and so a webhook), raised once per episode and cleared
//! once by its `…_recovered` event, decided by the Cron Trigger on every shard from what the
//! provisioning log already keeps:
//!
//! | alert | raised when | cleared when |
//! |---|---|---|
//! | `organisation.provisioning_failing` | of its latest [`Settings::window`] authenticated requests (at least [`Settings::min_requests`]), more than half failed; or a request presented a credential it retired (a revoked Secret Token or client secret, an expired client secret) after its latest success | half or fewer did, and a request succeeded since |
//! | `organisation.provisioning_stalled` | provisioning is on, it succeeded before, and not once for [`Settings::stalled_ms`] (Entra's incremental cycle runs about every 40 minutes) | a request succeeds |
//! | `organisation.credential_expiring` | it has OAuth client secrets and the last of them expires within [`Settings::expiring_ms`] | a later one is made, or none is left |
//!
//! Refused credentials never count, but for the organisation's own retired ones: a stranger's
//! random tokens are aggregated refusals, not the organisation's requests, while a revoked
//! Secret Token still presented is its identity provider's (Entra keeps the old one until its
//! admin pastes the new one). Secret Tokens do not expire, so only client secrets can.

use serde_json::{json, Value};

use crate::service::shards::Databases;
use crate::service::Runtime;
use crate::store::alerts::{self as store, Signals};
use crate::store::row;
use crate::store::trail::EventType;
use crate::store::Executor;
use scim_core::scim::error::Result;
use scim_core::time::{rfc3339, DAY_MS};

/// What decides the alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `ALERT_STALLED_MINUTES` (120 by default).
    pub stalled_ms: i64,
    pub window: i64,
    pub min_requests: i64,
    pub expiring_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stalled_ms: 120 * 60_000,
            window: 20,
            min_requests: 5,
            expiring_ms: crate::service::oauth::EXPIRING_DAYS.saturating_mul(DAY_MS),
        }
    }
}

/// One kind of alert: its name, its event, and its recovery's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failing,
    Stalled,
    CredentialExpiring,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Failing, Kind::Stalled, Kind::CredentialExpiring];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Failing => "provisioning_failing",
            Kind::Stalled => "provisioning_stalled",
            Kind::CredentialExpiring => "credential_expiring",
        }
    }

    fn events(self) -> (EventType, EventType) {
        match self {
            Kind::Failing => (
                EventType::ProvisioningFailing,
                EventType::ProvisioningFailingRecovered,
            ),
            Kind::Stalled => (
                EventType::ProvisioningStalled,
                EventType::ProvisioningStalledRecovered,
            ),
            Kind::CredentialExpiring => (
                EventType::CredentialExpiring,
                EventType::CredentialExpiringRecovered,
            ),
        }
    }
}

/// The alerts tenant `s` should have raised at `now`, each with what the event says of it.
pub fn wanted(s: &Signals, settings: &Settings, now: i64) -> Vec<(Kind, Value)> {
    let mut out = vec![];
    let failing = s.recent >= settings.min_requests && s.failed.saturating_mul(2) > s.recent;
    let retired = s
        .retired_seen_at
        .filter(|seen| *seen > s.last_success.unwrap_or(i64::MIN));
    if failing {
        let words = format!("{} of its latest {} requests failed", s.failed, s.recent);
        out.push((
            Kind::Failing,
            json!({"reason": words, "failed": s.failed, "requests": s.recent}),
        ));
    } else if let Some(seen) = retired {
        let words = "a revoked or expired credential of this organisation was presented after \
                     its latest successful request: update the Secret Token or client secret in \
                     the identity provider";
        out.push((
            Kind::Failing,
            json!({"reason": words, "retiredCredentialAt": rfc3339(seen)}),
        ));
    }
    if let Some(last) = s.last_success {
        let quiet = now.saturating_sub(last);
        if s.provisioning_enabled == 1 && quiet > settings.stalled_ms {
            let words = format!("no successful request for {} minutes", quiet / 60_000);
            out.push((
                Kind::Stalled,
                json!({"reason": words, "lastSuccessAt": rfc3339(last)}),
            ));
        }
    }
    if let Some(end) = s.secrets_end {
        if end.saturating_sub(now) <= settings.expiring_ms {
            let words = format!("its last OAuth client secret expires on {}", rfc3339(end));
            out.push((
                Kind::CredentialExpiring,
                json!({"reason": words, "expiresAt": rfc3339(end)}),
            ));
        }
    }
    out
}

/// What a run raised and cleared.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub raised: usize,
    pub cleared: usize,
    /// The budget ran out before every shard was seen.
    pub unfinished: bool,
}

/// Tenants read per statement.
const CHUNK: u32 = 200;

/// Decide every tenant's alerts, shard by shard, within `budget_ms`: one read per chunk of
/// tenants, and one batch for the chunk's changes (each raise or clear writes its event only
/// if the alert's row changes, so two runs at once raise nothing twice).
pub async fn evaluate<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    settings: &Settings,
    budget_ms: i64,
) -> Result<Report> {
    let started = rt.clock();
    let mut report = Report::default();
    for binding in s.bindings() {
        let db = s.shard(binding)?;
        let mut after = String::new();
        loop {
            if rt.clock().saturating_sub(started) > budget_ms {
                report.unfinished = true;
                return Ok(report);
            }
            let now = rt.now();
            let chunk = store::signals(&db, &after, CHUNK, settings.window, now).await?;
            let mut batch = vec![];
            for sig in &chunk {
                let want = wanted(sig, settings, now);
                let raised = row::strings(&sig.raised);
                for kind in Kind::ALL {
                    let (event, recovered) = kind.events();
                    let had = raised.iter().any(|r| r == kind.name());
                    let change = match (want.iter().find(|(k, _)| *k == kind), had) {
                        (Some((_, detail)), false) => Some((
                            event,
                            json!({"alert": {"kind": kind.name(), "detail": detail}}),
                            true,
                        )),
                        (None, true) => {
                            Some((recovered, json!({"alert": {"kind": kind.name()}}), false))
                        }
                        _ => None,
                    };
                    let Some((event, data, raise)) = change else {
                        continue;
                    };
                    let ev = (event.name(), &data);
                    batch.extend(store::change(&sig.tenant_id, kind.name(), ev, now, raise));
                    let count = if raise {
                        &mut report.raised
                    } else {
                        &mut report.cleared
                    };
                    *count = count.saturating_add(1);
                }
            }
            if !batch.is_empty() {
                db.batch(batch).await?;
            }
            match chunk.last() {
                Some(last) if chunk.len() >= CHUNK as usize => after = last.tenant_id.clone(),
                _ => break,
            }
        }
    }
    Ok(report)
}

/// Tenant `tenant_id`'s alerts raised now, as the summary and the console show them.
pub async fn of<E: Executor>(db: &E, tenant_id: &str) -> Result<Vec<Value>> {
    Ok(store::of(db, tenant_id)
        .await?
        .into_iter()
        .map(|a| {
            let detail: Value = serde_json::from_str(&a.detail).unwrap_or(Value::Null);
            json!({
                "kind": a.kind,
                "raisedAt": rfc3339(a.raised_at),
                "reason": detail.pointer("/alert/detail/reason").cloned().unwrap_or(Value::Null),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use pollster::block_on;

    use super::*;
    use crate::service::testing::{TestRuntime, TestShards};
    use crate::service::{host_app, shards::Cursor, tenants};
    use crate::store::sqlite::Sqlite;
    use crate::store::Stmt;

    fn log(db: &Sqlite, tenant: &str, at: i64, failed: bool) {
        block_on(db.query(Stmt::new(
            "INSERT INTO logs (tenant_id, at, method, route, status, failed) VALUES (?, ?, 'GET', '/Users', ?, ?)",
            vec![tenant.into(), at.into(), (if failed { 500 } else { 200 }).into(), failed.into()],
        )))
        .expect("log row");
    }

    fn types(db: &Sqlite) -> Vec<String> {
        let page = block_on(host_app::feed(
            db,
            "DB",
            "acme",
            Cursor::default(),
            vec![],
            100,
        ))
        .expect("feed");
        page.items
            .iter()
            .filter_map(|e| e["type"].as_str().map(str::to_string))
            .collect()
    }

    /// Tenant acme on one database at 1,000,000 ms, with the default settings.
    struct World {
        all: TestShards,
        rt: TestRuntime,
        tenant: crate::store::catalog::Entry,
        db: Sqlite,
        settings: Settings,
    }

    impl World {
        fn new() -> World {
            let all = TestShards::new(Sqlite::migrated(), 0);
            let rt = TestRuntime::at(1_000_000);
            let tenant = block_on(tenants::create(&all, &rt, "acme", None, None, None));
            let db = all.shard("DB").expect("DB");
            World {
                tenant: tenant.expect("acme"),
                all,
                rt,
                db,
                settings: Settings::default(),
            }
        }

        fn run(&self) -> Report {
            block_on(evaluate(&self.all, &self.rt, &self.settings, 60_000)).expect("run")
        }
    }

    #[test]
    fn each_alert_is_raised_once_and_cleared_once() {
        let w = World::new();
        let (rt, db, t, settings) = (&w.rt, &w.db, &w.tenant, w.settings);
        log(db, &t.id, 1_000_000, false);
        for i in 0..6 {
            log(db, &t.id, 1_000_001 + i, true);
        }
        assert_eq!(w.run().raised, 1);
        assert_eq!(w.run().raised, 0, "raised once");
        assert_eq!(types(db), ["organisation.provisioning_failing"]);
        let summary = block_on(host_app::summary(db, "acme", rt.now())).expect("summary");
        assert_eq!(summary["alerts"][0]["kind"], "provisioning_failing");
        for i in 0..10 {
            log(db, &t.id, 1_000_100 + i, false);
        }
        assert_eq!(w.run().cleared, 1);
        assert_eq!(w.run().cleared, 0, "cleared once");
        // Two quiet hours: stalled; a success clears it.
        rt.now.set(1_000_200 + settings.stalled_ms + 1);
        assert_eq!(w.run().raised, 1);
        assert_eq!(w.run().raised, 0);
        log(db, &t.id, rt.now(), false);
        assert_eq!(w.run().cleared, 1);
        assert_eq!(
            types(db),
            [
                "organisation.provisioning_failing",
                "organisation.provisioning_failing_recovered",
                "organisation.provisioning_stalled",
                "organisation.provisioning_stalled_recovered"
            ]
        );
    }

    #[test]
    fn a_last_client_secret_near_its_end_is_expiring_until_a_later_one_is_made() {
        let w = World::new();
        let (rt, db, t, settings) = (&w.rt, &w.db, &w.tenant, w.settings);
        let oauth = crate::service::oauth::create_secret;
        let first = block_on(oauth(db, rt, &t.id, Some(365))).expect("secret");
        assert_eq!(w.run().raised, 0, "a year left");
        rt.now.set(first.expires_at - settings.expiring_ms + 1);
        assert_eq!(w.run().raised, 1);
        assert_eq!(w.run().raised, 0, "raised once");
        let summary = block_on(host_app::summary(db, "acme", rt.now())).expect("summary");
        assert_eq!(
            summary["alerts"][0]["kind"], "credential_expiring",
            "{summary}"
        );
        block_on(oauth(db, rt, &t.id, Some(365))).expect("a later secret");
        assert_eq!(w.run().cleared, 1);
        assert_eq!(
            types(db),
            [
                "organisation.credential_expiring",
                "organisation.credential_expiring_recovered"
            ]
        );
    }

    /// A refusal presenting `hash`, as the edge adds it to the log.
    fn refused(db: &Sqlite, tenant: &str, at: i64, hash: &str) {
        let mut r = crate::service::log::Refusal::InvalidToken.entry(
            at,
            "203.0.113.9",
            "GET".into(),
            "/Users",
        );
        r.presented.push(hash.to_string());
        block_on(crate::service::log::record(db, tenant, &[], &[r])).expect("refusal");
    }

    #[test]
    fn a_revoked_token_still_presented_is_failing_until_a_request_succeeds() {
        let w = World::new();
        let (rt, db, t) = (&w.rt, &w.db, &w.tenant);
        let old = block_on(tenants::create_token(db, rt, "acme", false)).expect("token");
        log(db, &t.id, 1_000_000, false);
        // A stranger's guess is no signal; neither is a live token refused nowhere.
        refused(db, &t.id, 1_000_010, &"0".repeat(64));
        assert_eq!(w.run().raised, 0);
        // Revoked (by a rotation that retires the others), then still presented.
        block_on(tenants::create_token(db, rt, "acme", true)).expect("rotate");
        refused(db, &t.id, 1_000_020, &old.token.hash);
        assert_eq!(w.run().raised, 1);
        assert_eq!(w.run().raised, 0, "raised once");
        let summary = block_on(host_app::summary(db, "acme", rt.now())).expect("summary");
        let reason = summary["alerts"][0]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("revoked or expired credential"),
            "{summary}"
        );
        // The new token works: the episode ends.
        log(db, &t.id, 1_000_030, false);
        assert_eq!(w.run().cleared, 1);
        assert_eq!(
            types(db),
            [
                "organisation.provisioning_failing",
                "organisation.provisioning_failing_recovered"
            ]
        );
        // Kept 30 days, then upkeep forgets the hash.
        let left = |db: &Sqlite| {
            block_on(db.query(Stmt::new(
                "SELECT count(*) AS n FROM retired_credentials",
                vec![],
            )))
            .expect("count")
            .rows[0]["n"]
                .as_i64()
        };
        assert_eq!(left(db), Some(1));
        let later = 1_000_000 + crate::store::tenants::RETIRED_KEEP_MS;
        block_on(crate::store::upkeep::expire_lapsed(db, later)).expect("upkeep");
        assert_eq!(left(db), Some(0));
    }
}
