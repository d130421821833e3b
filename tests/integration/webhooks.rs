//! Webhooks over `wrangler dev` with its local Queue, to a receiver that checks every signature
//! with Standard Webhooks' own Python library (tests/webhooks/receiver.py): events arrive
//! signed and in the feed's order; a receiver failing twice gets the event on the third try
//! with the same `webhook-id`; `410` disables; a dead receiver's event is dead-lettered and
//! replayed; a rotation signs with both secrets; private URLs are refused. The harness's
//! schedule is `1,2` (three attempts, about 3 s).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{server, unique, Server};
use crate::{key_with, Tenant};

/// The receiver, started once for this test binary.
pub(crate) struct Receiver {
    port: u16,
    _child: Child,
}

pub(crate) fn receiver() -> &'static Receiver {
    static R: OnceLock<Receiver> = OnceLock::new();
    R.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/webhooks/receiver.py"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("the receiver starts (make integration installs .venv)");
        crate::harness::stop_at_exit(child.id() as i32);
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        BufReader::new(out).read_line(&mut line).expect("its port");
        Receiver {
            port: line.trim().parse().expect("a port"),
            _child: child,
        }
    })
}

impl Receiver {
    pub(crate) fn url(&self, behaviour: &str, name: &str) -> String {
        format!("http://127.0.0.1:{}/{behaviour}/{name}", self.port)
    }

    pub(crate) fn secrets(&self, name: &str, secrets: &[&str]) {
        let r = ureq::put(&format!("http://127.0.0.1:{}/_secrets/{name}", self.port))
            .send_json(json!({ "secrets": secrets }))
            .expect("receiver");
        assert_eq!(r.status(), 204);
    }

    /// Deliveries to `name`, once there are at least `n` (within 30 s).
    pub(crate) fn wait(&self, name: &str, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let log: Vec<Value> = ureq::get(&format!("http://127.0.0.1:{}/_log", self.port))
                .call()
                .expect("receiver")
                .into_json()
                .expect("JSON");
            let mine: Vec<Value> = log.into_iter().filter(|d| d["name"] == name).collect();
            if mine.len() >= n {
                return mine;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} of {n} deliveries to {name} arrived: {mine:?}",
                mine.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A webhook of `s` to `url` (for tenant `sub`): its 201 body.
fn hook(s: &Server, url: &str, sub: Option<&str>) -> Value {
    let mut ask = json!({ "url": url });
    if let Some(sub) = sub {
        ask["tenant"] = json!(sub);
    }
    s.admin("POST", "/admin/v1/webhooks")
        .json(&ask)
        .send()
        .expect(201)
        .json()
}

fn deliveries(s: &Server, id: &str) -> Vec<Value> {
    let page = s
        .admin("GET", &format!("/admin/v1/webhooks/{id}/deliveries"))
        .send()
        .expect(200)
        .json();
    page["items"].as_array().cloned().unwrap_or_default()
}

/// Wait until endpoint `id` has an attempt with `outcome`; its attempts.
fn wait_outcome(s: &Server, id: &str, outcome: &str) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let all = deliveries(s, id);
        if all.iter().any(|d| d["outcome"] == outcome) {
            return all;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {outcome} yet: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn events_arrive_signed_and_in_the_feeds_order() {
    let (s, r) = (server(), receiver());
    let t = Tenant::new("hooked");
    let name = unique("order");
    let made = hook(s, &r.url("ok", &name), Some(&t.sub));
    let secret = made["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"), "{made}");
    assert_eq!(made["tenant"], json!(t.sub));
    assert_eq!(made["events"], json!([]));
    r.secrets(&name, &[secret]);
    let id = made["id"].as_str().expect("id");
    // Shown once: never again.
    let read = s
        .admin("GET", &format!("/admin/v1/webhooks/{id}"))
        .send()
        .expect(200)
        .json();
    assert!(read.get("secret").is_none(), "{read}");
    assert!(!read.to_string().contains(secret));

    let mut users = vec![];
    for n in 0..3 {
        users.push(t.create(json!({"userName": format!("u{n}@hooked.example")}))["id"].clone());
    }
    let u0 = users[0].as_str().expect("id");
    t.patch(
        u0,
        json!([{"op": "replace", "path": "active", "value": false}]),
    );
    let got = r.wait(&name, 4);
    assert!(
        got.iter().all(|d| d["verified"] == json!([true])),
        "{got:?}"
    );
    let types: Vec<&str> = got
        .iter()
        .map(|d| d["body"]["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "user.created",
            "user.created",
            "user.created",
            "user.deactivated"
        ]
    );
    // The body is the feed's event, in the feed's order.
    let feed = s
        .admin("GET", &format!("/admin/v1/tenants/{}/events", t.sub))
        .send()
        .expect(200)
        .json();
    let feed_items = feed["items"].as_array().expect("items");
    let sent: Vec<&Value> = got.iter().map(|d| &d["body"]["data"]).collect();
    let fed: Vec<&Value> = feed_items.iter().collect();
    assert_eq!(
        sent, fed,
        "the webhooks carry the feed's events, in its order"
    );
    assert_eq!(got[0]["body"]["timestamp"], feed_items[0]["at"]);
    let ids: std::collections::HashSet<&str> =
        got.iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(ids.len(), 4, "each event its own webhook-id");
    let attempts = deliveries(s, id);
    assert_eq!(attempts.len(), 4, "{attempts:#?} {got:#?}");
    assert!(
        attempts
            .iter()
            .all(|a| a["outcome"] == "delivered" && a["status"] == 200),
        "{attempts:?}"
    );
}

#[test]
fn a_receiver_failing_twice_gets_the_event_on_the_third_try_with_the_same_id() {
    let (s, r) = (server(), receiver());
    let t = Tenant::new("retried");
    let name = unique("retry");
    let made = hook(s, &r.url("fail2", &name), Some(&t.sub));
    r.secrets(&name, &[made["secret"].as_str().expect("secret")]);
    t.create(json!({"userName": "first@retried.example"}));
    t.create(json!({"userName": "second@retried.example"}));
    let got = r.wait(&name, 4);
    let answered: Vec<u64> = got
        .iter()
        .map(|d| d["answered"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(&answered[..4], &[500, 500, 200, 500], "{got:?}");
    assert_eq!(got[0]["id"], got[1]["id"]);
    assert_eq!(got[0]["id"], got[2]["id"]);
    assert_ne!(got[3]["id"], got[0]["id"]);
    assert_eq!(
        got[2]["body"]["data"]["data"]["user"]["userName"],
        "first@retried.example"
    );
    let later = r.wait(&name, 6);
    assert_eq!(later[5]["answered"], 200);
    assert_eq!(
        later[5]["body"]["data"]["data"]["user"]["userName"], "second@retried.example",
        "the second waited for the first"
    );
    assert!(later.iter().all(|d| d["verified"] == json!([true])));
    let id = made["id"].as_str().expect("id");
    let attempts = wait_outcome(s, id, "delivered");
    assert_eq!(attempts[0]["outcome"], "retrying");
    assert_eq!(attempts[0]["status"], 500);
    assert!(attempts[0]["nextAttemptAt"].is_string(), "{attempts:?}");
    assert_eq!(attempts[2]["outcome"], "delivered");
    assert_eq!(attempts[2]["attempt"], 3);
}

#[test]
fn gone_disables_and_a_dead_receivers_event_is_dead_lettered_then_replayed() {
    let (s, r) = (server(), receiver());
    let t = Tenant::new("gone");
    let gone = unique("gone");
    let g = hook(s, &r.url("status410", &gone), Some(&t.sub));
    let dead = unique("dead");
    let d = hook(s, &r.url("status500", &dead), Some(&t.sub));
    r.secrets(&dead, &[d["secret"].as_str().expect("secret")]);
    t.create(json!({"userName": "lost@gone.example"}));
    let gid = g["id"].as_str().expect("id");
    wait_outcome(s, gid, "gone");
    let disabled = s
        .admin("GET", &format!("/admin/v1/webhooks/{gid}"))
        .send()
        .expect(200)
        .json();
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["disabledReason"], "the receiver answered 410 Gone");

    let did = d["id"].as_str().expect("id");
    let attempts = wait_outcome(s, did, "failed");
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let event = attempts[2]["eventId"].as_str().expect("event");
    // The receiver recovers (here: the endpoint moves to one that answers); replay sends it.
    let ok = unique("alive");
    r.secrets(&ok, &[d["secret"].as_str().expect("secret")]);
    s.admin("PATCH", &format!("/admin/v1/webhooks/{did}"))
        .json(&json!({"url": r.url("ok", &ok)}))
        .send()
        .expect(200);
    let replayed = s
        .admin(
            "POST",
            &format!("/admin/v1/webhooks/{did}/deliveries/{event}/replay"),
        )
        .send()
        .expect(200)
        .json();
    assert_eq!(replayed["delivered"], true, "{replayed}");
    let got = r.wait(&ok, 1);
    assert_eq!(got[0]["id"], event);
    assert_eq!(got[0]["verified"], json!([true]));
    let unknown = s
        .admin(
            "POST",
            &format!("/admin/v1/webhooks/{did}/deliveries/evt_db_0/replay"),
        )
        .send()
        .admin_error(404);
    assert!(unknown["message"]
        .as_str()
        .unwrap_or("")
        .contains("evt_db_0"));
}

#[test]
fn a_rotation_signs_with_both_secrets_and_private_urls_are_refused() {
    let (s, r) = (server(), receiver());
    let name = unique("rotate");
    // Bound to a quiet tenant: the only delivery is the test's.
    let quiet = Tenant::new("quiet");
    let made = hook(s, &r.url("ok", &name), Some(&quiet.sub));
    let id = made["id"].as_str().expect("id");
    let old = made["secret"].as_str().expect("secret").to_string();
    let rotated = s
        .admin("POST", &format!("/admin/v1/webhooks/{id}/secrets"))
        .send()
        .expect(201)
        .json();
    let new = rotated["secret"].as_str().expect("secret");
    assert_ne!(new, old);
    assert!(rotated["previousSecretUntil"].is_string());
    r.secrets(&name, &[&old, new]);
    let test = s
        .admin("POST", &format!("/admin/v1/webhooks/{id}/test"))
        .send()
        .expect(200)
        .json();
    assert_eq!(test["delivered"], true, "{test}");
    let got = r.wait(&name, 1);
    assert_eq!(got[0]["body"]["type"], "webhook.test");
    assert_eq!(got[0]["signatures"], 2);
    assert_eq!(
        got[0]["verified"],
        json!([true, true]),
        "both secrets verify"
    );
    for bad in [
        "https://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "http://hooks.example.com/hook",
        "https://0x7f.1/hook",
    ] {
        let e = s
            .admin("POST", "/admin/v1/webhooks")
            .json(&json!({ "url": bad }))
            .send()
            .admin_error(400);
        assert!(
            e["message"].as_str().unwrap_or("").starts_with("url:"),
            "{bad}: {e}"
        );
    }
    let e = s
        .admin("PATCH", &format!("/admin/v1/webhooks/{id}"))
        .json(&json!({"url": "https://192.168.0.1/"}))
        .send()
        .admin_error(400);
    assert!(e["message"].as_str().unwrap_or("").starts_with("url:"));
    s.admin("POST", "/admin/v1/webhooks")
        .json(&json!({"url": "https://hooks.example.com/", "events": ["user.exploded"]}))
        .send()
        .admin_error(400);
    let listed = s
        .admin("GET", "/admin/v1/webhooks")
        .send()
        .expect(200)
        .json();
    assert!(listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|h| h["id"] == id));
    s.admin("DELETE", &format!("/admin/v1/webhooks/{id}"))
        .send()
        .expect(204);
    s.admin("GET", &format!("/admin/v1/webhooks/{id}"))
        .send()
        .admin_error(404);
}

#[test]
fn a_key_bound_to_a_tenant_sees_its_own_webhooks_and_needs_the_scope() {
    let (s, r) = (server(), receiver());
    let a = Tenant::new("hooka");
    let b = Tenant::new("hookb");
    let theirs = hook(s, &r.url("ok", &unique("b")), Some(&b.sub));
    let (bound, _) = key_with(s, &["webhooks:write"], Some(&a.sub));
    let mine = s
        .call("POST", "/admin/v1/webhooks")
        .bearer(&bound)
        .json(&json!({"url": r.url("ok", &unique("a"))}))
        .send()
        .expect(201)
        .json();
    assert_eq!(
        mine["tenant"],
        json!(a.sub),
        "a bound key's endpoint is its tenant's"
    );
    let tid = theirs["id"].as_str().expect("id");
    s.call("GET", &format!("/admin/v1/webhooks/{tid}"))
        .bearer(&bound)
        .send()
        .admin_error(404);
    s.call("POST", "/admin/v1/webhooks")
        .bearer(&bound)
        .json(&json!({"url": r.url("ok", "x"), "tenant": b.sub}))
        .send()
        .admin_error(404);
    let (reader, _) = key_with(s, &["tenants:read", "events:read"], None);
    let e = s
        .call("GET", "/admin/v1/webhooks")
        .bearer(&reader)
        .send()
        .admin_error(403);
    assert!(e["message"]
        .as_str()
        .unwrap_or("")
        .contains("'webhooks:write'"));
}
