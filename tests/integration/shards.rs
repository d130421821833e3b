//! Organisations over several D1 databases, under `wrangler dev` with three shards (`DB`,
//! `SHARD_2`, `SHARD_3`): placement, each organisation served wherever it lives, isolation
//! across shards, and moving an organisation online while a client keeps writing to it.

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::harness::{apart_server, d1_calls, server, unique, Server, SHARDS};
use crate::host_app::all_pages;
use crate::{Tenant, PATCH};

fn tenant_on(s: &'static Server, prefix: &str, shard: &str) -> Tenant {
    let sub = unique(prefix);
    let t = s
        .admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": sub, "shard": shard}))
        .send()
        .expect(201)
        .json();
    assert_eq!(t["shard"], json!(shard));
    let token = crate::token_response(s, &sub)["token"]
        .as_str()
        .expect("token")
        .to_string();
    Tenant {
        sub,
        token,
        server: s,
    }
}

fn shard_of(s: &Server, sub: &str) -> Value {
    s.admin("GET", &format!("/admin/v1/tenants/{sub}"))
        .send()
        .expect(200)
        .json()
}

#[test]
fn organisations_spread_over_the_shards_and_each_is_served_where_it_lives() {
    let s = server();
    let mut placed = HashSet::new();
    let open = |binding: &str, open: bool| {
        s.admin("PATCH", &format!("/admin/v1/shards/{binding}"))
            .json(&json!({ "open": open }))
            .send()
            .expect(200)
    };
    // Placement takes only open shards: with two closed, the third; each in turn. (Among open
    // shards it takes the one with the fewest bytes; the unit tests check that choice.)
    for (k, only) in SHARDS.iter().cycle().take(6).enumerate() {
        // Open first: other tests create organisations meanwhile, and one shard stays open.
        open(only, true);
        for other in SHARDS.iter().filter(|b| *b != only) {
            open(other, false);
        }
        let t = Tenant::new("spread");
        if k == 5 {
            for b in SHARDS {
                open(b, true);
            }
        }
        let shard = shard_of(s, &t.sub)["shard"]
            .as_str()
            .expect("shard")
            .to_string();
        assert_eq!(shard, *only);
        placed.insert(shard.clone());
        // SCIM, the directory, the feed and the log, wherever it lives.
        let u = t.create(json!({"userName": format!("jane@{}.org", t.sub)}));
        let id = u["id"].as_str().expect("id");
        let r = t.get(&format!("/Users/{id}")).expect(200);
        assert_eq!(d1_calls(&r), 1, "a read on {shard} is one D1 call");
        let users = all_pages(s, &format!("/admin/v1/tenants/{}/users", t.sub), 10);
        assert_eq!(users.len(), 1);
        let feed = all_pages(s, &format!("/admin/v1/tenants/{}/events", t.sub), 10);
        assert_eq!(feed.len(), 1);
        assert_eq!(feed[0]["resourceId"], json!(id));
        let log = crate::host_app::logs_when(s, &format!("/admin/v1/tenants/{}/logs", t.sub), 2);
        assert!(log.len() >= 2, "{log:?}");
    }
    assert_eq!(
        placed.len(),
        3,
        "organisations created without a shard spread: {placed:?}"
    );
    let shards = s.admin("GET", "/admin/v1/shards").send().expect(200).json();
    let items = shards["items"].as_array().expect("items");
    let bindings: Vec<&str> = items.iter().filter_map(|i| i["binding"].as_str()).collect();
    assert_eq!(bindings, SHARDS);
    for i in items {
        assert!(i["tenants"].as_i64() > Some(0), "{i}");
        assert!(
            i["bytes"].as_i64() > Some(0),
            "D1 reports each shard's size: {i}"
        );
        assert_eq!(i["open"], json!(true));
    }
    // Naming a shard that is not one: 400; closing one takes it out of placement.
    s.admin("POST", "/admin/v1/tenants")
        .json(&json!({"subdomain": unique("noshard"), "shard": "SHARD_9"}))
        .send()
        .admin_error(400);
    s.admin("PATCH", "/admin/v1/shards/SHARD_9")
        .json(&json!({"open": false}))
        .send()
        .admin_error(404);
}

#[test]
fn organisations_on_different_shards_and_on_the_same_one_never_meet() {
    let s = server();
    let a = tenant_on(s, "isoa", "DB");
    let b = tenant_on(s, "isob", "SHARD_2");
    let c = tenant_on(s, "isoc", "SHARD_2");
    let ids: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|t| {
            t.create(json!({"userName": "same@iso.org"}))["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    for (i, t) in [&a, &b, &c].iter().enumerate() {
        for (j, other) in [&a, &b, &c].iter().enumerate() {
            if i == j {
                continue;
            }
            // Another organisation's token: refused, whichever shard either lives on.
            s.scim(&t.sub, "GET", "/Users")
                .bearer(&other.token)
                .send()
                .scim_error(401);
            // Another organisation's user id: not found.
            t.get(&format!("/Users/{}", ids[j])).scim_error(404);
        }
        let list = t.get("/Users").expect(200).json();
        assert_eq!(list["totalResults"], json!(1), "{list}");
        let feed = all_pages(s, &format!("/admin/v1/tenants/{}/events", t.sub), 10);
        assert_eq!(feed.len(), 1);
        assert_eq!(feed[0]["resourceId"], json!(ids[i]));
    }
}

/// A SCIM call retried as Entra retries a 503 (after its `Retry-After`); the final response
/// and how many 503s it met.
fn with_retries(t: &Tenant, method: &str, path: &str, body: &Value) -> (crate::harness::Resp, u32) {
    let mut refused = 0;
    loop {
        let r = t.send(method, path, body);
        if r.status != 503 {
            return (r, refused);
        }
        refused += 1;
        assert!(refused < 60, "503 for too long: {}", r.text);
        let wait: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        std::thread::sleep(Duration::from_millis(wait.min(2) * 500));
    }
}

fn move_state(s: &Server, sub: &str) -> Value {
    shard_of(s, sub)["move"].clone()
}

#[test]
fn moving_an_organisation_of_2000_users_loses_and_repeats_nothing_while_it_is_written() {
    // Its own server: it reads the shards' files from a second process at the end.
    let s = apart_server();
    let t = tenant_on(s, "mover", "DB");
    const USERS: usize = 2_000;
    // 2,000 users, four clients at once; a group of 300 of them.
    let created: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let t = &t;
                scope.spawn(move || {
                    (0..USERS / 4)
                        .map(|i| {
                            let n = w * (USERS / 4) + i;
                            t.create(json!({"userName": format!("user{n}@mover.org"),
                                "emails": [{"value": format!("user{n}@mover.org"), "primary": true}]}))["id"]
                                .as_str()
                                .expect("id")
                                .to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("seed"))
            .collect()
    });
    let members: Vec<Value> = created
        .iter()
        .take(300)
        .map(|id| json!({"value": id}))
        .collect();
    let group = t
        .send(
            "POST",
            "/Groups",
            &json!({"displayName": "Movers", "members": members}),
        )
        .expect(201)
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let org = shard_of(s, &t.sub);
    let org_id = org["id"].as_str().expect("id").to_string();
    // Consumers that have read part of the feeds before the move.
    let feed_path = format!("/admin/v1/tenants/{}/events", t.sub);
    let first = s
        .admin("GET", &format!("{feed_path}?limit=500"))
        .send()
        .expect(200)
        .json();
    let everyone_first = s
        .admin("GET", "/admin/v1/events?limit=1000")
        .send()
        .expect(200)
        .json();

    // A client keeps creating and renaming users while the organisation moves.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let (written, renamed, refused, moved) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut written: Vec<(String, String)> = Vec::new();
            let mut renamed: HashMap<String, String> = HashMap::new();
            let mut refused = 0;
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let name = format!("late{i}@mover.org");
                let (r, n) = with_retries(&t, "POST", "/Users", &json!({"userName": name}));
                refused += n;
                let id = r.expect(201).json()["id"].as_str().expect("id").to_string();
                written.push((id, name));
                let target = &created[(i * 7) % created.len()];
                let display = format!("Renamed {i}");
                let patch = json!({"schemas": [PATCH], "Operations": [
                    {"op": "Replace", "path": "displayName", "value": display}]});
                let (r, n) = with_retries(&t, "PATCH", &format!("/Users/{target}"), &patch);
                refused += n;
                r.expect(200);
                renamed.insert(target.clone(), display);
                i += 1;
            }
            (written, renamed, refused)
        });
        std::thread::sleep(Duration::from_millis(300));
        let r = s
            .admin("POST", &format!("/admin/v1/tenants/{}/move", t.sub))
            .json(&json!({"shard": "SHARD_3"}))
            .send()
            .expect(202)
            .json();
        assert_eq!(r["move"]["to"], json!("SHARD_3"));
        assert_eq!(r["move"]["phase"], json!("copy"));
        // Its progress shows until it is done; the Cron Trigger carries on whatever the first
        // request left.
        let mut seen_progress = false;
        let deadline = Instant::now() + Duration::from_secs(240);
        let moved = loop {
            let m = move_state(s, &t.sub);
            if m["rowsCopied"].as_i64() > Some(0) && m["phase"] != json!("done") {
                seen_progress = true;
            }
            if m["phase"] == json!("done") {
                break m;
            }
            assert!(Instant::now() < deadline, "the move did not finish: {m}");
            if m["phase"] == json!("cleanup") {
                // Let the writer go on against the new shard for a moment.
                std::thread::sleep(Duration::from_millis(500));
            }
            std::thread::sleep(Duration::from_millis(500));
            if started.elapsed() > Duration::from_secs(30) {
                s.get(s.scheduled).send();
            }
        };
        assert!(seen_progress || moved["rowsCopied"].as_i64() > Some(0));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (written, renamed, refused) = writer.join().expect("writer");
        (written, renamed, refused, moved)
    });
    println!(
        "moved {} users ({} rows at start, {} copied) in {:.1} s, {} catch-up rounds; writes refused \
         for {} ms at the switch; the writer met {refused} × 503 over {} writes",
        USERS,
        moved["rowsAtStart"],
        moved["rowsCopied"],
        started.elapsed().as_secs_f64(),
        moved["catchupRounds"],
        moved["frozenMs"],
        written.len() * 2
    );
    assert!(
        moved["frozenMs"].as_i64().is_some_and(|ms| ms <= 5_000),
        "{moved}"
    );
    assert!(!written.is_empty());
    assert_eq!(shard_of(s, &t.sub)["shard"], json!("SHARD_3"));

    // Every user once, with its last change, on the new shard.
    let users = all_pages(s, &format!("/admin/v1/tenants/{}/users", t.sub), 1000);
    assert_eq!(users.len(), USERS + written.len());
    let by_id: HashMap<&str, &Value> = users
        .iter()
        .map(|u| (u["id"].as_str().unwrap_or_default(), u))
        .collect();
    assert_eq!(by_id.len(), users.len(), "no user twice");
    for (id, name) in &written {
        assert_eq!(
            by_id.get(id.as_str()).map(|u| &u["userName"]),
            Some(&json!(name))
        );
    }
    for (id, display) in &renamed {
        assert_eq!(
            by_id.get(id.as_str()).map(|u| &u["displayName"]),
            Some(&json!(display))
        );
    }
    let members = all_pages(
        s,
        &format!("/admin/v1/tenants/{}/groups/{group}/members", t.sub),
        1000,
    );
    assert_eq!(members.len(), 300);
    // SCIM reads there are one D1 call; the token works.
    let r = t.get(&format!("/Users/{}", created[0])).expect(200);
    assert_eq!(d1_calls(&r), 1);
    // Nothing of it is left on the old shard, table by table, read from the database itself.
    for table in [
        "tenants",
        "tokens",
        "users",
        "user_values",
        "groups",
        "memberships",
        "events",
        "logs",
        "console_sessions",
    ] {
        let column = if table == "tenants" {
            "id"
        } else {
            "tenant_id"
        };
        let sql = format!("SELECT count(*) AS n FROM {table} WHERE {column} = '{org_id}'");
        assert_eq!(s.count_in("DB", &sql), 0, "{table} on the old shard");
    }
    let users_there = s.count_in(
        "SHARD_3",
        &format!("SELECT count(*) AS n FROM users WHERE tenant_id = '{org_id}'"),
    );
    assert_eq!(users_there as usize, USERS + written.len());

    // The feed: a consumer that kept its cursor continues after it, nothing lost or repeated.
    let strip = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .map(|e| json!([e["type"], e["resourceId"], e["data"]]))
            .collect()
    };
    let first_items = first["items"].as_array().cloned().unwrap_or_default();
    let cursor = first["next"].as_str().expect("next").to_string();
    let rest = all_pages(s, &format!("{feed_path}?after={cursor}"), 500);
    let whole = all_pages(s, &feed_path, 1000);
    let mut joined = strip(&first_items);
    joined.extend(strip(&rest));
    assert_eq!(
        joined.len(),
        whole.len(),
        "no event lost or repeated across the move"
    );
    assert_eq!(joined, strip(&whole));
    let created_events = whole
        .iter()
        .filter(|e| e["type"] == json!("user.created"))
        .count();
    assert_eq!(created_events, USERS + written.len());
    // Everyone's feed too.
    let cursor = everyone_first["next"].as_str().expect("next").to_string();
    let mut everyone: Vec<Value> = everyone_first["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    everyone.extend(all_pages(
        s,
        &format!("/admin/v1/events?after={cursor}"),
        1000,
    ));
    let mine: Vec<Value> = everyone
        .into_iter()
        .filter(|e| e["tenant"]["id"] == json!(org_id))
        .collect();
    assert_eq!(
        strip(&mine),
        strip(&whole),
        "everyone's feed: its events once each, in order"
    );
}

#[test]
fn a_move_to_where_it_is_or_to_no_shard_is_refused_and_a_cancelled_one_leaves_it_served() {
    let s = server();
    let t = tenant_on(s, "nomove", "SHARD_2");
    s.admin("POST", &format!("/admin/v1/tenants/{}/move", t.sub))
        .json(&json!({"shard": "SHARD_2"}))
        .send()
        .admin_error(409);
    s.admin("POST", &format!("/admin/v1/tenants/{}/move", t.sub))
        .json(&json!({"shard": "SHARD_7"}))
        .send()
        .admin_error(400);
    s.admin("DELETE", &format!("/admin/v1/tenants/{}/move", t.sub))
        .send()
        .admin_error(409);
    s.admin("POST", "/admin/v1/tenants/nosuchorg/move")
        .json(&json!({"shard": "DB"}))
        .send()
        .admin_error(404);
    t.create(json!({"userName": "stays@nomove.org"}));
    // A move cancelled (it may also have finished already: a tiny organisation moves at once).
    s.admin("POST", &format!("/admin/v1/tenants/{}/move", t.sub))
        .json(&json!({"shard": "DB"}))
        .send()
        .expect(202);
    // A driver holding the move (copying a chunk) makes a cancel 409 for a moment: try again.
    let mut cancel = s
        .admin("DELETE", &format!("/admin/v1/tenants/{}/move", t.sub))
        .send();
    for _ in 0..20 {
        if cancel.status != 409 || shard_of(s, &t.sub)["move"]["phase"] != json!("copy") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        cancel = s
            .admin("DELETE", &format!("/admin/v1/tenants/{}/move", t.sub))
            .send();
    }
    let here = shard_of(s, &t.sub);
    match cancel.status {
        200 => assert_eq!(here["shard"], json!("SHARD_2"), "{here}"),
        // Too late to cancel: it switched (or finished) meanwhile.
        409 => assert!(here["move"]["phase"] != json!("copy"), "{here}"),
        other => panic!("cancel: {other} {}", cancel.text),
    }
    let list = t.get("/Users").expect(200).json();
    assert_eq!(list["totalResults"], json!(1));
    t.create(json!({"userName": "after@nomove.org"}));
}
