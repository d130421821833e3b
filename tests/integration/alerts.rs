//! Alerts over `wrangler dev`, decided by its Cron (`/__scheduled`) on a server of their own
//! (so that no other test's organisation meets them) whose stall comes after 4 seconds
//! (`DEV_ALERT_STALLED_SECONDS`): failing requests, a stall, and a revoked token still
//! presented each raise their alert once, in the feed, the summary and a signed webhook, and
//! clear it once.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::Server;
use crate::webhooks::receiver;
use crate::{new_tenant_on, token_response, Tenant};

const FAILING: [&str; 2] = [
    "organisation.provisioning_failing",
    "organisation.provisioning_failing_recovered",
];
const STALLED: [&str; 2] = [
    "organisation.provisioning_stalled",
    "organisation.provisioning_stalled_recovered",
];

fn alerting() -> &'static Server {
    static S: OnceLock<&'static Server> = OnceLock::new();
    S.get_or_init(|| crate::harness::own_server_with(&[("DEV_ALERT_STALLED_SECONDS", "4")]))
}

/// Run the Cron once.
fn cron(s: &Server) {
    let r = s.get(&format!("{}?cron=*/15+*+*+*+*", s.scheduled)).send();
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Tenant `sub`'s feed events of these types, in order.
fn events(s: &Server, sub: &str, types: &[&str]) -> Vec<Value> {
    let page = s
        .admin(
            "GET",
            &format!("/admin/v1/tenants/{sub}/events?types={}", types.join(",")),
        )
        .send()
        .expect(200)
        .json();
    page["items"].as_array().cloned().unwrap_or_default()
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

/// Run the Cron until tenant `sub` has `n` events of these types (the log entries it decides
/// from are written just after their responses); those events.
fn until(s: &Server, sub: &str, types: &[&str], n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        cron(s);
        let got = events(s, sub, types);
        if got.len() >= n {
            return got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{} of {n} events of {sub}: {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn alerts(s: &Server, sub: &str) -> Vec<Value> {
    let summary = s
        .admin("GET", &format!("/admin/v1/tenants/{sub}/summary"))
        .send()
        .expect(200)
        .json();
    summary["alerts"].as_array().cloned().expect("alerts")
}

#[test]
fn failing_requests_raise_the_alert_once_as_an_event_and_a_webhook_and_clear_it_once() {
    let (s, r) = (alerting(), receiver());
    let t = Tenant::on(s, "failing");
    let name = crate::harness::unique("alerts");
    let made = s
        .admin("POST", "/admin/v1/webhooks")
        .json(&json!({"url": r.url("ok", &name), "tenant": t.sub, "events": FAILING}))
        .send()
        .expect(201)
        .json();
    r.secrets(&name, &[made["secret"].as_str().expect("secret")]);
    for _ in 0..6 {
        t.get("/Users/00000000-0000-4000-8000-000000000000")
            .expect(404);
    }
    let raised = until(s, &t.sub, &FAILING, 1);
    assert_eq!(names(&raised), FAILING[..1]);
    assert_eq!(raised[0]["data"]["alert"]["kind"], "provisioning_failing");
    cron(s);
    cron(s);
    assert_eq!(events(s, &t.sub, &FAILING).len(), 1, "raised once");
    let now = alerts(s, &t.sub);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["kind"], "provisioning_failing");
    let reason = now[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("6 of its latest 6"), "{reason}");

    // Eight successes: 6 of 14 failed, no longer most of them.
    for _ in 0..8 {
        t.get("/Users").expect(200);
    }
    let both = until(s, &t.sub, &FAILING, 2);
    assert_eq!(names(&both), FAILING);
    cron(s);
    assert_eq!(events(s, &t.sub, &FAILING).len(), 2, "cleared once");
    assert!(
        alerts(s, &t.sub)
            .iter()
            .all(|a| a["kind"] != "provisioning_failing"),
        "cleared from the summary"
    );
    // The same two events, signed (the receiver verifies with Standard Webhooks' library).
    let got = r.wait(&name, 2);
    assert!(
        got.iter().all(|d| d["verified"] == json!([true])),
        "{got:?}"
    );
    let sent: Vec<&Value> = got.iter().map(|d| &d["body"]["data"]).collect();
    assert_eq!(sent, both.iter().collect::<Vec<_>>());
}

#[test]
fn a_stall_raises_the_alert_once_and_a_success_clears_it() {
    let s = alerting();
    let t = Tenant::on(s, "stalled");
    t.get("/Users").expect(200);
    // Nothing before there was a success, then the alert once 4 quiet seconds have passed.
    let raised = until(s, &t.sub, &STALLED, 1);
    assert_eq!(names(&raised), STALLED[..1]);
    cron(s);
    assert_eq!(events(s, &t.sub, &STALLED).len(), 1, "raised once");
    assert!(
        alerts(s, &t.sub)
            .iter()
            .any(|a| a["kind"] == "provisioning_stalled"),
        "in the summary"
    );
    t.get("/Users").expect(200);
    let both = until(s, &t.sub, &STALLED, 2);
    assert_eq!(names(&both[..2]), STALLED);
    assert!(
        events(s, &t.sub, &FAILING).is_empty(),
        "a quiet organisation is not failing"
    );
}

#[test]
fn a_revoked_token_still_presented_raises_the_failing_alert_until_a_request_succeeds() {
    let s = alerting();
    let sub = new_tenant_on(s, "revoked");
    let old = token_response(s, &sub);
    let new = token_response(s, &sub);
    let bearer = |t: &Value| t["token"].as_str().expect("token").to_string();
    s.scim(&sub, "GET", "/Users")
        .bearer(&bearer(&old))
        .send()
        .expect(200);
    let id = old["id"].as_str().expect("id");
    s.admin("DELETE", &format!("/admin/v1/tenants/{sub}/tokens/{id}"))
        .send()
        .expect(204);
    // A stranger's guess is no sign of anything; the revoked token is the tenant's own.
    s.scim(&sub, "GET", "/Users")
        .bearer("scim_not-a-token-of-anyone")
        .send()
        .expect(401);
    // Its aggregated entry is written just after the response.
    std::thread::sleep(Duration::from_millis(1_500));
    cron(s);
    assert!(events(s, &sub, &FAILING).is_empty(), "a stranger's guess");
    s.scim(&sub, "GET", "/Users")
        .bearer(&bearer(&old))
        .send()
        .expect(401);
    let raised = until(s, &sub, &FAILING, 1);
    assert_eq!(names(&raised), FAILING[..1]);
    let reason = raised[0]["data"]["alert"]["detail"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("revoked or expired credential"),
        "{raised:?}"
    );
    cron(s);
    assert_eq!(events(s, &sub, &FAILING).len(), 1, "raised once");
    // The identity provider has the new token: the episode ends.
    s.scim(&sub, "GET", "/Users")
        .bearer(&bearer(&new))
        .send()
        .expect(200);
    let both = until(s, &sub, &FAILING, 2);
    assert_eq!(names(&both), FAILING);
}
