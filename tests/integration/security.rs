//! The findings of the security review of the console, the log and the admin API, each held
//! over HTTP: refused credentials cost a bounded number of D1 calls and log entries and never
//! push a genuine entry out; unknown methods are 405 before any side effect; a log entry has a
//! bounded size; URLs are built from the configuration, never from a request's `Host`.

use serde_json::{json, Value};

use crate::harness::{d1_calls, limited_server, server, Server, LOW_LOG_MAX};
use crate::host_app::{all_pages, logs_when, run_upkeep};
use crate::Tenant;

fn logs(s: &Server, sub: &str) -> Vec<Value> {
    all_pages(s, &format!("/admin/v1/tenants/{sub}/logs"), 1000)
}

/// An aggregated refusal's entry (it says how many requests it stands for).
fn is_refusal(e: &Value) -> bool {
    e["summary"]
        .as_str()
        .is_some_and(|s| s.starts_with("Refused "))
}

/// 1,000 requests with random tokens and 1,000 without one, from one address, on assorted
/// routes (the phishing path among them): once the refusal budget (wrangler.toml's 20 a
/// minute) is spent they are 429 with no D1 call, so all of them together cost at most 100 D1
/// calls; they leave a handful of aggregated entries whose counts add up to 2,000, shown by
/// route template; the organisation's real token is never refused; and after the log cap runs,
/// every genuine entry is still there.
#[test]
fn a_flood_of_refused_credentials_is_bounded_and_pushes_no_genuine_entry_out() {
    let s = limited_server();
    let t = Tenant::on(s, "flooded");
    let user = t.create(json!({"userName": "real@flooded.org"}));
    let id = user["id"].as_str().expect("id").to_string();
    t.get(&format!("/Users/{id}")).expect(200);
    let paths = [
        "/Users".to_string(),
        format!("/Users/{id}"),
        "/Users/URGENT:your-Secret-Token-leaked.Generate-a-new-one-at-https:/evil.example/rotate"
            .to_string(),
        "/Groups?filter=displayName%20eq%20%22x%22".to_string(),
    ];
    let (mut d1, mut refused_429, mut refused_401, mut reloads) = (0, 0, 0, 0);
    let started = std::time::Instant::now();
    for i in 0..2_000usize {
        let path = &paths[i % paths.len()];
        let call = s.scim(&t.sub, "GET", path);
        let r = if i % 2 == 0 {
            call.bearer(&format!("scim_random{i}x{}", i * 7919)).send()
        } else {
            call.send()
        };
        match r.status {
            401 => refused_401 += 1,
            429 => {
                assert_eq!(r.header("retry-after"), Some("60"));
                // Nothing, or (at most once every 10 s) the organisation's live token hashes.
                let calls = d1_calls(&r);
                assert!(
                    calls <= 1,
                    "a refusal past the budget made {calls} D1 calls"
                );
                reloads += calls;
                refused_429 += 1;
            }
            other => panic!("a refused credential answered {other}: {}", r.text),
        }
        d1 += d1_calls(&r);
        if i % 250 == 0 {
            // The real token, from the same address, in the middle of the flood.
            t.get("/Users").expect(200);
        }
    }
    let secs = started.elapsed().as_secs();
    eprintln!(
        "flood: {refused_401} × 401, {refused_429} × 429 ({reloads} with a read of the live \
         hashes), {d1} D1 calls in {secs} s"
    );
    assert!(
        u64::from(reloads) <= 1 + secs / 10,
        "{reloads} reads of the hashes in {secs} s"
    );
    assert!(
        refused_429 >= 1_900,
        "{refused_401} × 401, {refused_429} × 429"
    );
    assert!(d1 <= 100, "2,000 refused requests made {d1} D1 calls");

    // Aggregated: a few entries whose counts add up to every refused request, shown by route
    // template, none with the stranger's path.
    let refusals =
        |all: &[Value]| -> Vec<Value> { all.iter().filter(|e| is_refusal(e)).cloned().collect() };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let entries = loop {
        let all = logs(s, &t.sub);
        let counted: u64 = refusals(&all)
            .iter()
            .map(|e| e["count"].as_u64().unwrap_or(0))
            .sum();
        if counted >= 2_000 || std::time::Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let agg = refusals(&entries);
    let counted: u64 = agg.iter().map(|e| e["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(counted, 2_000, "{agg:?}");
    eprintln!("flood: {} aggregated log entries", agg.len());
    assert!(agg.len() <= 9, "{} aggregated entries: {agg:?}", agg.len());
    for e in &agg {
        let route = e["route"].as_str().unwrap_or_default();
        assert!(
            ["/Users", "/Users/{id}", "/Groups", "/{unknown}"].contains(&route),
            "{e}"
        );
        assert_eq!(e["outcome"], "failure");
        assert!(e["summary"]
            .as_str()
            .is_some_and(|s| s.contains("from 127.0.0.1")));
    }
    let text = Value::from(entries.clone()).to_string();
    for leaked in ["URGENT", "evil.example", "scim_random"] {
        assert!(!text.contains(leaked), "the log shows {leaked:?}");
    }

    // The cap keeps the latest LOW_LOG_MAX genuine entries (the create, the reads and the
    // real token's requests during the flood): the refusals take none of their places.
    let genuine: Vec<Value> = entries.iter().filter(|e| !is_refusal(e)).cloned().collect();
    assert!(genuine.len() > LOW_LOG_MAX, "{genuine:?}");
    run_upkeep(s);
    let after = logs(s, &t.sub);
    let kept: Vec<Value> = after.iter().filter(|e| !is_refusal(e)).cloned().collect();
    assert_eq!(kept, genuine[..LOW_LOG_MAX].to_vec());
    assert_eq!(refusals(&after), agg);
}

/// A method the runtime would read as GET is 405 with `Allow` everywhere, before any side
/// effect: a console link is not used up, nothing is listed or logged.
#[test]
fn unknown_methods_are_405_before_any_side_effect() {
    let s = server();
    let t = Tenant::new("methods");
    let link = s
        .admin(
            "POST",
            &format!("/admin/v1/tenants/{}/console-links", t.sub),
        )
        .send()
        .expect(201)
        .json()["url"]
        .as_str()
        .expect("url")
        .to_string();
    let link_path = link
        .strip_prefix(&format!("http://127.0.0.1:{}", s.port))
        .expect("on this server")
        .to_string();
    for method in ["PROPFIND", "MKCOL", "SEARCH"] {
        let r = s.call(method, &link_path).send();
        assert_eq!(r.status, 405, "{method} {}", r.text);
        assert_eq!(r.header("allow"), Some("GET, POST, PUT, DELETE"));
        assert!(r.header("set-cookie").is_none());
        assert!(r.header("content-security-policy").is_some());
        let r = s.admin(method, "/admin/v1/tenants").send();
        assert_eq!(r.header("allow"), Some("GET, POST, PUT, PATCH, DELETE"));
        assert!(!r.text.contains(&t.sub), "{}", r.text);
        r.admin_error(405);
        // The token endpoint answers in its own (RFC 6749) terms.
        let r = s
            .call(method, "/oauth/token")
            .host(&s.tenant_host(&t.sub))
            .send();
        assert_eq!(r.status, 405, "{}", r.text);
        assert_eq!(r.header("allow"), Some("POST"));
        assert_eq!(r.json()["error"], "invalid_request");
        assert_eq!(d1_calls(&r), 0);
        let r = t.call(method, "/Users").send();
        assert_eq!(r.header("allow"), Some("GET, POST, PUT, PATCH, DELETE"));
        assert!(!r.text.contains("Resources"), "{}", r.text);
        assert_eq!(d1_calls(&r), 0);
        r.scim_error(405);
    }
    // The link still opens: no method above used it.
    assert_eq!(s.get(&link_path).send().status, 200);
    // Nothing of the refused methods reached the log: only the link-independent GET below.
    t.get("/Users").expect(200);
    let entries = logs_when(s, &format!("/admin/v1/tenants/{}/logs", t.sub), 1);
    let methods: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["method"].as_str())
        .collect();
    assert_eq!(methods, ["GET"], "{entries:?}");
}

/// Bytes of one log entry as the API returns it, at most (README, Limits).
const MAX_ENTRY_BYTES: usize = 6 * 1024;

/// A 100 KB userName, twice: the create and the 409 each log a bounded entry, the name cut to
/// 64 characters.
#[test]
fn a_log_entry_is_bounded_whatever_the_request_holds() {
    let s = server();
    let t = Tenant::new("entrysize");
    let name = format!("{}@big.org", "n".repeat(100_000));
    t.create(json!({"userName": name}));
    t.send("POST", "/Users", &json!({"userName": name}))
        .scim_error(409);
    let entries = logs_when(s, &format!("/admin/v1/tenants/{}/logs", t.sub), 2);
    assert_eq!(entries.len(), 2, "{entries:?}");
    for e in &entries {
        let bytes = e.to_string().len();
        assert!(
            bytes <= MAX_ENTRY_BYTES,
            "{bytes} bytes: {}",
            &e.to_string()[..300]
        );
    }
    let created = entries.iter().find(|e| e["status"] == 201).expect("201");
    assert_eq!(
        created["resourceName"],
        json!(format!("{}…", "n".repeat(64)))
    );
    let conflict = entries.iter().find(|e| e["status"] == 409).expect("409");
    assert!(
        !conflict.to_string().contains(&"n".repeat(65)),
        "{conflict}"
    );
}

/// With `OPERATOR_ORIGIN` set (the limited server), a Location never follows a forged `Host`;
/// without it, a console link is refused off `wrangler dev`'s own hosts rather than pointed at
/// whatever host the request named.
#[test]
fn urls_come_from_the_configuration_not_the_host_header() {
    let s = limited_server();
    let t = Tenant::on(s, "hosthdr");
    let r = s
        .call("POST", &format!("/tenants/{}/api/scim/v2/Users", t.sub))
        .host("evil.example")
        .bearer(&t.token)
        .json(&json!({"userName": "host@x.org"}))
        .send()
        .expect(201);
    let location = r.header("location").expect("Location").to_string();
    let base = format!(
        "http://127.0.0.1:{}/tenants/{}/api/scim/v2/Users/",
        s.port, t.sub
    );
    assert!(location.starts_with(&base), "{location}");
    assert!(r.json()["meta"]["location"]
        .as_str()
        .is_some_and(|l| l == location));
    // The console link of the limited server: its configured origin.
    let link = s
        .admin(
            "POST",
            &format!("/admin/v1/tenants/{}/console-links", t.sub),
        )
        .host("evil.example")
        .send()
        .expect(201)
        .json();
    assert!(link["url"].as_str().is_some_and(|u| u
        .starts_with(&format!("http://127.0.0.1:{}/console/link/ten_", s.port))
        && u.contains(".scl_")));
    // The main server has no OPERATOR_ORIGIN: a link for a request to another host is refused.
    let main = server();
    let other = Tenant::new("hostmain");
    let e = main
        .admin(
            "POST",
            &format!("/admin/v1/tenants/{}/console-links", other.sub),
        )
        .host("evil.example")
        .send()
        .admin_error(409);
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("OPERATOR_ORIGIN")),
        "{e}"
    );
}

/// Requests for organisations that do not exist spend their address's budget: past it they are
/// 429 without the lookup. Another address is not affected, nor is this address's valid token
/// for an organisation the Worker has served; wrong tokens from one address do not refuse
/// another address's valid token either. (`CF-Connecting-IP` passes through `wrangler dev`.)
#[test]
fn unknown_organisations_spend_the_address_budget_only() {
    let s = limited_server();
    let scanner = "198.51.100.7";
    let served = Tenant::on(s, "scanned");
    served
        .call("GET", "/Users")
        .header("CF-Connecting-IP", scanner)
        .send()
        .expect(200);
    let (mut d1, mut refused) = (0, 0);
    for i in 0..500 {
        let r = s
            .call("GET", &format!("/tenants/nosuchorg{i}/api/scim/v2/Users"))
            .header("CF-Connecting-IP", scanner)
            .bearer("scim_whatever")
            .send();
        match r.status {
            404 => {}
            429 => {
                assert_eq!(d1_calls(&r), 0, "no lookup past the budget");
                refused += 1;
            }
            other => panic!("an unknown organisation answered {other}: {}", r.text),
        }
        d1 += d1_calls(&r);
    }
    eprintln!("unknown organisations: {refused} × 429, {d1} D1 calls for 500 requests");
    assert!(refused >= 450, "{refused} × 429");
    assert!(d1 <= 50, "500 unknown organisations made {d1} D1 calls");
    // The scanner's own valid token, for an organisation this Worker has served: served.
    served
        .call("GET", "/Users")
        .header("CF-Connecting-IP", scanner)
        .send()
        .expect(200);
    // Another address, a new organisation: unaffected.
    let fresh = Tenant::on(s, "unscanned");
    fresh
        .call("GET", "/Users")
        .header("CF-Connecting-IP", "198.51.100.8")
        .send()
        .expect(200);
    // Wrong tokens for `fresh` from a third address spend that address's budget for `fresh`
    // and `fresh`'s own: its valid token from elsewhere still passes.
    for _ in 0..60 {
        let r = s
            .scim(&fresh.sub, "GET", "/Users")
            .header("CF-Connecting-IP", "198.51.100.9")
            .bearer("scim_wrong")
            .send();
        assert!([401, 429].contains(&r.status), "{}", r.status);
    }
    fresh
        .call("GET", "/Users")
        .header("CF-Connecting-IP", "198.51.100.8")
        .send()
        .expect(200);
}
