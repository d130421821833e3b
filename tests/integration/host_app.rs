//! The vendor's side over HTTP: the change feed (one organisation's and everyone's, paged by
//! cursor, filtered by type, in order and complete under concurrent writers), the directory,
//! the provisioning log (refusals included, nothing but names in it), the summary, upkeep by
//! the scheduled handler, and deleting a large organisation in chunks.

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::harness::{limited_server, server, workerd_server, Server, LOW_LOG_MAX};
use crate::{one, url_encode, Tenant, PATCH};

/// Every item of a paged admin read, following `cursor`/`next` until the end.
pub fn all_pages(s: &Server, path: &str, limit: u32) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(c) => format!("{path}{sep}limit={limit}&after={}", url_encode(c)),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page = s.admin("GET", &url).send().expect(200).json();
        let got = page["items"].as_array().cloned().unwrap_or_default();
        assert!(got.len() <= limit as usize, "{page}");
        items.extend(got);
        // One page shape: `{items, next}`. A feed's `next` is never null (it has no last
        // page): a page shorter than asked for is the end, for now.
        let feed = path.contains("/events");
        let next = page["next"]
            .as_str()
            .filter(|_| !feed || got_len(&page) == limit as usize)
            .map(str::to_string);
        match next {
            Some(c) => after = Some(c),
            None => return items,
        }
    }
}

fn got_len(page: &Value) -> usize {
    page["items"].as_array().map_or(0, Vec::len)
}

/// Every entry of a log once it holds `n`: entries written after the response reach it within
/// a fraction of a second (they are gathered per organisation and written together).
pub fn logs_when(s: &Server, path: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let logs = all_pages(s, path, 100);
        if logs.len() >= n || Instant::now() > deadline {
            return logs;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `n` users of `t` created through SCIM, 8 at a time (each with a work email other than its
/// userName): their ids.
fn create_users(t: &Tenant, domain: &str, n: usize) -> Vec<String> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|w| {
                scope.spawn(move || {
                    (w..n)
                        .step_by(8)
                        .map(|i| {
                            let u = t.create(json!({"userName": format!("u{i}@{domain}"),
                                "emails": [{"value": format!("u{i}@mail.{domain}")}]}));
                            u["id"].as_str().unwrap_or_default().to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("creator"))
            .collect()
    })
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Where an event of one organisation's feed is in its shard's commit order: the feed's cursor
/// is opaque to clients, but this test knows how it is made (the read positions, then
/// `|<shard>=<seq>`: how far the organisation's shard has been read).
fn position(e: &Value) -> i64 {
    use base64::Engine;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor_of(e))
        .expect("base64url");
    let text = String::from_utf8(text).expect("text");
    let (_, scan) = text.split_once('|').expect("a scan position");
    scan.split_once('=')
        .expect("binding=seq")
        .1
        .parse::<i64>()
        .expect("seq")
}

fn cursor_of(e: &Value) -> String {
    e["cursor"].as_str().expect("a cursor").to_string()
}

#[test]
fn feed_directory_log_and_summary() {
    let s = server();
    let t = Tenant::new("vendor");
    let jane = t.create(json!({
        "userName": "jane@acme.com", "displayName": "Jane Doe",
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"value": "jane.private@example.org", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
        "roles": [{"value": "Writer", "primary": "True"}]
    }));
    let jid = jane["id"].as_str().expect("id").to_string();
    let bob = t.create(json!({"userName": "bob@acme.com"}));
    let bid = bob["id"].as_str().expect("id").to_string();
    let gid = t
        .send(
            "POST",
            "/Groups",
            &json!({"displayName": "Sales", "members": [{"value": jid}]}),
        )
        .expect(201)
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    t.send(
        "PATCH",
        &format!("/Groups/{gid}"),
        &json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members",
            "value": [{"value": bid}, {"value": "stale-member-id"}]}]}),
    )
    .expect(204);
    t.patch(
        &bid,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    // Refusals of a known organisation are logged too.
    s.scim(&t.sub, "GET", "/Users")
        .bearer("not-the-token")
        .send()
        .expect(401);
    t.get("/Users/no-such-user").expect(404);

    // The organisation's feed, in commit order, each event with the resource's shape.
    let feed = all_pages(s, &format!("/admin/v1/tenants/{}/events", t.sub), 2);
    assert_eq!(
        types(&feed),
        [
            "user.created",
            "user.created",
            "group.created",
            "group.members_added",
            "group.members_added",
            "user.deactivated",
        ]
    );
    // Each event's cursor is its own (opaque) resume point.
    let cursors: std::collections::HashSet<String> = feed.iter().map(cursor_of).collect();
    assert_eq!(cursors.len(), feed.len(), "{cursors:?}");
    assert_eq!(feed[0]["tenant"]["subdomain"], json!(t.sub));
    assert_eq!(feed[0]["resourceId"], json!(jid));
    let created = &feed[0]["data"]["user"];
    assert_eq!(created["role"], json!("Writer"));
    assert_eq!(created["name"]["familyName"], json!("Doe"));
    assert_eq!(
        feed[4]["data"]["members"],
        json!([{"id": bid, "type": "User"}])
    );
    assert_eq!(feed[5]["data"]["changed"], json!(["active"]));
    assert_eq!(
        feed[5]["data"]["user"]["groups"],
        json!([{"id": gid, "displayName": "Sales"}])
    );
    // A type filter, and resuming from a cursor: exactly what follows it.
    let only = s
        .admin(
            "GET",
            &format!(
                "/admin/v1/tenants/{}/events?types=user.deactivated,group.created",
                t.sub
            ),
        )
        .send()
        .expect(200)
        .json();
    assert_eq!(
        types(only["items"].as_array().expect("items")),
        ["group.created", "user.deactivated"]
    );
    let rest = s
        .admin(
            "GET",
            &format!(
                "/admin/v1/tenants/{}/events?after={}",
                t.sub,
                cursor_of(&feed[3])
            ),
        )
        .send()
        .expect(200)
        .json();
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(rest["next"], feed[5]["cursor"]);
    // Everyone's feed holds the same events, in the same order (each with the cursor of that
    // feed, which names every shard's position).
    let uncursored = |events: Vec<Value>| -> Vec<Value> {
        events
            .into_iter()
            .map(|mut e| {
                e.as_object_mut().map(|o| o.remove("cursor"));
                e
            })
            .collect()
    };
    let global: Vec<Value> = all_pages(s, "/admin/v1/events", 1_000)
        .into_iter()
        .filter(|e| e["tenant"]["subdomain"] == json!(t.sub))
        .collect();
    assert_eq!(uncursored(global), uncursored(feed.clone()));
    for bad in ["limit=0", "limit=1001", "after=abc", "types=user.exploded"] {
        s.admin("GET", &format!("/admin/v1/events?{bad}"))
            .send()
            .admin_error(400);
    }

    // The directory.
    let user = s
        .admin("GET", &format!("/admin/v1/tenants/{}/users/{jid}", t.sub))
        .send()
        .expect(200)
        .json();
    assert_eq!(user["userName"], json!("jane@acme.com"));
    assert_eq!(user["role"], json!("Writer"));
    assert_eq!(user["active"], json!(true));
    assert_eq!(user["groups"], json!([{"id": gid, "displayName": "Sales"}]));
    assert!(user["createdAt"].as_str().is_some_and(|c| c.ends_with('Z')));
    let users = all_pages(s, &format!("/admin/v1/tenants/{}/users", t.sub), 1);
    let mut want = vec![jid.clone(), bid.clone()];
    want.sort();
    assert_eq!(ids(&users), want);
    let inactive = all_pages(
        s,
        &format!("/admin/v1/tenants/{}/users?active=false", t.sub),
        10,
    );
    assert_eq!(ids(&inactive), one(&bid));
    let by_name = all_pages(
        s,
        &format!("/admin/v1/tenants/{}/users?userName=JANE%40acme.com", t.sub),
        10,
    );
    assert_eq!(ids(&by_name), one(&jid));
    let groups = all_pages(s, &format!("/admin/v1/tenants/{}/groups", t.sub), 10);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["displayName"], json!("Sales"));
    let members = all_pages(
        s,
        &format!("/admin/v1/tenants/{}/groups/{gid}/members", t.sub),
        1,
    );
    assert_eq!(members.len(), 2);
    assert!(members.contains(&json!({"id": jid, "type": "User", "userName": "jane@acme.com"})));
    s.admin("GET", &format!("/admin/v1/tenants/{}/users/{gid}", t.sub))
        .send()
        .admin_error(404);
    s.admin("GET", "/admin/v1/tenants/nosuchorg/users")
        .send()
        .admin_error(404);
    s.admin("POST", &format!("/admin/v1/tenants/{}/users", t.sub))
        .send()
        .admin_error(405);

    // The log: newest first, refusals included, with names and words, never values.
    let logs = logs_when(s, &format!("/admin/v1/tenants/{}/logs", t.sub), 7);
    assert_eq!(
        logs,
        all_pages(s, &format!("/admin/v1/tenants/{}/logs", t.sub), 3)
    );
    let lines: Vec<(String, String, i64)> = logs
        .iter()
        .map(|l| {
            (
                l["method"].as_str().unwrap_or_default().to_string(),
                l["route"].as_str().unwrap_or_default().to_string(),
                l["status"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("GET".to_string(), "/Users/no-such-user".to_string(), 404),
            ("GET".into(), "/Users".into(), 401),
            ("PATCH".into(), format!("/Users/{bid}"), 200),
            ("PATCH".into(), format!("/Groups/{gid}"), 204),
            ("POST".into(), "/Groups".into(), 201),
            ("POST".into(), "/Users".into(), 201),
            ("POST".into(), "/Users".into(), 201),
        ]
    );
    assert_eq!(logs[2]["summary"], json!("bob@acme.com deactivated"));
    assert_eq!(logs[2]["resourceName"], json!("bob@acme.com"));
    assert_eq!(
        logs[3]["summary"],
        json!("Sales: 1 member added; 1 unknown member skipped")
    );
    assert_eq!(
        logs[3]["warnings"],
        json!([
            "member 'stale-member-id' skipped: no user or group of this organisation has this id"
        ])
    );
    assert_eq!(logs[6]["summary"], json!("jane@acme.com created"));
    assert_eq!(logs[1]["outcome"], json!("failure"));
    assert!(logs
        .iter()
        .all(|l| l["durationMs"].as_i64().is_some_and(|d| d >= 0)));
    let failures = all_pages(
        s,
        &format!("/admin/v1/tenants/{}/logs?outcome=failure", t.sub),
        10,
    );
    assert_eq!(failures.len(), 2);
    let about_bob = all_pages(
        s,
        &format!("/admin/v1/tenants/{}/logs?resourceId={bid}", t.sub),
        10,
    );
    // Bob's creation and his deactivation (a POST's entry carries the id it created).
    assert_eq!(about_bob.len(), 2);
    let text = Value::Array(logs).to_string();
    for secret in [
        t.token.as_str(),
        "jane.private@example.org",
        "555 0100",
        "not-the-token",
        "Doe",
    ] {
        assert!(!text.contains(secret), "the log holds {secret:?}: {text}");
    }

    // The summary.
    let summary = s
        .admin("GET", &format!("/admin/v1/tenants/{}/summary", t.sub))
        .send()
        .expect(200)
        .json();
    assert_eq!(summary["users"], json!({"active": 1, "inactive": 1}));
    assert_eq!(summary["groups"], json!(1));
    assert_eq!(summary["last24h"], json!({"requests": 7, "failures": 2}));
    assert!(summary["lastFailureAt"].as_str().is_some());
    assert!(summary["lastSuccessAt"].as_str() <= summary["lastFailureAt"].as_str());
}

#[test]
fn concurrent_writers_find_every_change_once_in_order() {
    let s = server();
    let t = Tenant::new("feedrace");
    let gid = t.create_group("Everyone");
    const WRITERS: usize = 8;
    const EACH: usize = 8;
    let path = format!("/admin/v1/tenants/{}/events", t.sub);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (written, polled) = std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            // Poll while the writers write: a small page, resumed from the last cursor.
            let mut seen: Vec<Value> = Vec::new();
            let mut cursor = String::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = s
                    .admin("GET", &format!("{path}?limit=7&after={cursor}"))
                    .send()
                    .expect(200)
                    .json();
                seen.extend(page["items"].as_array().cloned().unwrap_or_default());
                let got = got_len(&page);
                cursor = page["next"].as_str().expect("next").to_string();
                if finished && got < 7 {
                    return seen;
                }
            }
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (t, gid) = (&t, &gid);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..EACH {
                        let u = t.create(json!({"userName": format!("w{w}u{i}@race.org")}));
                        let id = u["id"].as_str().expect("id").to_string();
                        t.patch(&id, json!([{"op": "replace", "path": "displayName", "value": "X"}]));
                        t.send(
                            "PATCH",
                            &format!("/Groups/{gid}"),
                            &json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]}),
                        )
                        .expect(204);
                        mine.push(id);
                    }
                    mine
                })
            })
            .collect();
        let written: Vec<String> = writers
            .into_iter()
            .flat_map(|w| w.join().expect("writer"))
            .collect();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (written, poller.join().expect("poller"))
    });
    // Exactly the committed changes, each once, in commit order.
    let cursors: Vec<i64> = polled.iter().map(position).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "reordered or repeated: {cursors:?}"
    );
    assert_eq!(
        polled,
        all_pages(s, &path, 1_000),
        "polling saw what a reader sees after"
    );
    let mut per_user: HashMap<String, Vec<String>> = HashMap::new();
    let mut added: Vec<String> = Vec::new();
    for e in &polled {
        let ty = e["type"].as_str().unwrap_or_default().to_string();
        if ty == "group.members_added" {
            added.extend(ids(e["data"]["members"].as_array().expect("members")));
        } else if ty.starts_with("user.") {
            per_user
                .entry(e["resourceId"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push(ty);
        }
    }
    assert_eq!(per_user.len(), WRITERS * EACH);
    for id in &written {
        assert_eq!(per_user[id], ["user.created", "user.updated"], "{id}");
    }
    let unique: HashSet<&String> = added.iter().collect();
    assert_eq!(
        (added.len(), unique.len()),
        (WRITERS * EACH, WRITERS * EACH)
    );
    assert_eq!(unique, written.iter().collect());
}

/// The scheduled handler (`wrangler dev --test-scheduled` serves it at `/__scheduled`,
/// Miniflare at `/cdn-cgi/handler/scheduled`).
pub fn run_upkeep(s: &Server) {
    let r = s.get(&format!("{}?cron=*/15+*+*+*+*", s.scheduled)).send();
    assert_eq!(r.status, 200, "{}", r.text);
}

/// On the server whose upkeep keeps no event past its run, and five log entries per
/// organisation.
#[test]
fn the_scheduled_handler_applies_retention_and_the_log_cap() {
    let s = limited_server();
    let t = Tenant::on(s, "retain");
    let keep = Tenant::on(s, "retainother");
    for i in 0..3 {
        t.create(json!({"userName": format!("r{i}@x.org")}));
        t.get("/Users").expect(200);
    }
    keep.get("/Users").expect(200);
    let events = format!("/admin/v1/tenants/{}/events", t.sub);
    let logs = format!("/admin/v1/tenants/{}/logs", t.sub);
    assert_eq!(all_pages(s, &events, 100).len(), 3);
    let before = logs_when(s, &logs, 6);
    assert_eq!(before.len(), 6);
    run_upkeep(s);
    assert_eq!(all_pages(s, &events, 100), Vec::<Value>::new());
    // The cap keeps the latest entries of each organisation.
    assert_eq!(all_pages(s, &logs, 100), before[..LOW_LOG_MAX].to_vec());
    let other = format!("/admin/v1/tenants/{}/logs", keep.sub);
    assert_eq!(logs_when(s, &other, 1).len(), 1);
    for _ in 0..4 {
        t.get("/Users").expect(200);
    }
    let grown = logs_when(s, &logs, LOW_LOG_MAX + 4);
    assert_eq!(grown.len(), LOW_LOG_MAX + 4);
    run_upkeep(s);
    assert_eq!(all_pages(s, &logs, 100), grown[..LOW_LOG_MAX].to_vec());
}

#[test]
fn deleting_a_large_organisation_purges_it_in_chunks_and_nothing_else() {
    const USERS: usize = 20_000;
    // Under plain workerd: seeding 20,000 users through SCIM is quicker without the proxy.
    let s = workerd_server();
    let big = Tenant::on(s, "bigorg");
    let other = Tenant::on(s, "neighbour");
    let kept = other.create(json!({"userName": "stays@x.org"}));
    let started = Instant::now();
    let created = create_users(&big, "big.org", USERS);
    let members: Vec<Value> = created[..1_000]
        .iter()
        .map(|id| json!({"value": id}))
        .collect();
    big.send(
        "POST",
        "/Groups",
        &json!({"displayName": "Big", "members": members}),
    )
    .expect(201);
    eprintln!(
        "seeded {USERS} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let deleted = s
        .admin("DELETE", &format!("/admin/v1/tenants/{}", big.sub))
        .send()
        .expect(202)
        .json();
    eprintln!("DELETE answered {deleted}");
    // Unreachable at once: the organisation is unknown to SCIM and to the admin API.
    big.get("/Users").scim_error(404);
    s.admin("GET", &format!("/admin/v1/tenants/{}", big.sub))
        .send()
        .admin_error(404);
    let mut runs = 0;
    loop {
        let pending = s.admin("GET", "/admin/v1/purges").send().expect(200).json();
        let mine: Vec<&Value> = pending["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["subdomain"] == json!(big.sub))
            .collect();
        match mine.first() {
            None => break,
            Some(p) => {
                assert_eq!(p["status"], "purging");
                assert!(p["remaining"].as_i64().is_some_and(|r| r > 0), "{p}");
            }
        }
        runs += 1;
        assert!(runs <= 20, "the purge does not finish");
        run_upkeep(s);
    }
    eprintln!("purged after {runs} scheduled runs");
    // A run with nothing left to purge is a no-op that succeeds.
    run_upkeep(s);
    // The subdomain is free, and a new organisation of that name starts empty.
    s.admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": big.sub}))
        .send()
        .expect(201);
    let fresh = s
        .admin("GET", &format!("/admin/v1/tenants/{}/users", big.sub))
        .send()
        .expect(200)
        .json();
    assert_eq!(fresh["items"], json!([]));
    let events = s
        .admin("GET", &format!("/admin/v1/tenants/{}/events", big.sub))
        .send()
        .expect(200)
        .json();
    assert_eq!(events["items"], json!([]));
    // The neighbour is untouched.
    assert_eq!(
        other.user(kept["id"].as_str().expect("id"))["userName"],
        "stays@x.org"
    );
}

/// `examples/feed-consumer`: the host app's backend Worker, run under Miniflare against this
/// server, mirrors the users from the feed; a second run applies only what changed.
#[test]
fn the_example_backend_worker_mirrors_users_from_the_feed() {
    let s = server();
    let t = Tenant::new("mirror");
    let jane = t.create(json!({"userName": "jane@mirror.org",
        "roles": [{"value": "Writer", "primary": "True"}]}));
    let jid = jane["id"].as_str().expect("id").to_string();
    let bob = t.create(json!({"userName": "bob@mirror.org"}));
    let bid = bob["id"].as_str().expect("id").to_string();
    t.send(
        "POST",
        "/Groups",
        &json!({"displayName": "Sales", "members": [{"value": jid}]}),
    )
    .expect(201);
    // The user's groups reach the mirror with the user's next event.
    t.patch(
        &jid,
        json!([{"op": "replace", "path": "displayName", "value": "Jane"}]),
    );
    let state = std::env::temp_dir().join(format!("scim-edge-mirror-{}", std::process::id()));
    let run = || -> Value {
        let out = std::process::Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/feed-consumer/run.mjs"
            ))
            .arg(format!("http://127.0.0.1:{}", s.port))
            .arg(&s.admin_token)
            .arg(&state)
            .output()
            .expect("run node");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the mirror as JSON")
    };
    let mine = |m: &Value| -> Vec<Value> {
        m["users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|u| {
                u["userName"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("@mirror.org"))
            })
            .map(|u| json!([u["id"], u["userName"], u["active"], u["role"], u["groups"]]))
            .collect()
    };
    let first = run();
    assert_eq!(
        mine(&first),
        [
            json!([bid, "bob@mirror.org", true, null, []]),
            json!([jid, "jane@mirror.org", true, "Writer", ["Sales"]]),
        ]
    );
    t.patch(
        &bid,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    t.call("DELETE", &format!("/Users/{jid}"))
        .send()
        .expect(204);
    let second = run();
    assert_eq!(
        mine(&second),
        [json!([bid, "bob@mirror.org", false, null, []])]
    );
    // The mirror kept the feed's (opaque) cursor, and the second run moved it on.
    let (c1, c2) = (first["cursor"].as_str(), second["cursor"].as_str());
    assert!(
        c1.is_some_and(|c| !c.is_empty()) && c1 != c2,
        "{c1:?} {c2:?}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// A push of 1,600 members (77 KB of our UUIDs) is one PATCH, one write, and two feed events.
#[test]
fn a_push_of_1600_members_commits_whole() {
    let s = workerd_server();
    let t = Tenant::on(s, "bigpush");
    let ids = create_users(&t, "push.org", 1_600);
    let gid = t.create_group("Everyone");
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let body = json!({"schemas": [PATCH], "Operations": [{"op": "Add", "path": "members", "value": members}]});
    assert!(
        body.to_string().len() > 64 * 1024,
        "{}",
        body.to_string().len()
    );
    t.send("PATCH", &format!("/Groups/{gid}"), &body)
        .expect(204);
    let members = all_pages(
        s,
        &format!("/admin/v1/tenants/{}/groups/{gid}/members", t.sub),
        1_000,
    );
    assert_eq!(members.len(), 1_600);
    let added: Vec<Value> = all_pages(
        s,
        &format!(
            "/admin/v1/tenants/{}/events?types=group.members_added",
            t.sub
        ),
        100,
    );
    let sizes: Vec<usize> = added
        .iter()
        .map(|e| e["data"]["members"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [1_000, 600]);
    let logs = logs_when(
        s,
        &format!("/admin/v1/tenants/{}/logs?resourceId={gid}", t.sub),
        2,
    );
    assert_eq!(logs[0]["summary"], json!("Everyone: 1600 members added"));
}
