//! The change feed, the provisioning log and upkeep on SQLite, through the real service: every
//! committed change leaves its events (and only committed ones do), in commit order, with the
//! resource's directory shape; a write's log entry rides in its batch and holds no attribute
//! value but the resource's name; unknown members are skipped with a warning; a 1,600-member
//! push stays one batch within D1's parameter limit; retention, the log cap and a
//! tenant's purge work in chunks.

use pollster::block_on;
use serde_json::{json, Value};
use std::cell::Cell;

use super::groups::Groups;
use super::host_app;
use super::log::RequestLog;
use super::resources::{self, Kind, Table};
use super::shards::Cursor;
use super::testing::TestRuntime;
use super::upkeep::{self, Settings};
use super::users::Users;
use super::Scope;
use crate::store::fixture::{seeded, two_tenants, T};
use crate::store::listing::MAX_PARAMS;
use crate::store::log::LogEntry;
use crate::store::log::LogQuery;
use crate::store::sqlite::Sqlite;
use crate::store::{Executor, Outcome, Stmt, StoreError};

fn scope<'a, E>(
    db: &'a E,
    rt: &'a TestRuntime,
    log: Option<&'a RequestLog>,
) -> Scope<'a, E, TestRuntime> {
    Scope {
        db,
        rt,
        tenant_id: T,
        log,
    }
}

/// Every event of tenant `a` after seq `after`, in feed order, read page by page.
fn feed_after(db: &Sqlite, after: i64) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut cursor = Cursor::default();
    cursor.advance("DB", after);
    loop {
        let page = block_on(host_app::feed(db, "DB", "a", cursor, vec![], 1_000)).expect("feed");
        let n = page.items.len();
        all.extend(page.items);
        cursor = page.next;
        if n < 1_000 {
            return all;
        }
    }
}

fn feed(db: &Sqlite) -> Vec<Value> {
    feed_after(db, 0)
}

fn kinds(events: &[Value]) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    events
        .iter()
        .map(|e| format!("{} {}", text(&e["type"]), text(&e["resourceId"])))
        .collect()
}

fn member_ids(e: &Value) -> Vec<String> {
    e["data"]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_committed_change_is_in_the_feed_once_in_order_with_its_shape() {
    let db = seeded(&json!({"displayName": "Sales", "members": ["u1"]}));
    let start = block_on(crate::store::feed::latest(&db, Some(T))).expect("latest");
    assert_eq!(start, 1, "the fixture's own membership event");
    let rt = TestRuntime::at(1_764_000_000_000);
    let s = scope(&db, &rt, None);
    let jane = block_on(Users::create(
        &s,
        &json!({"userName": "jane@acme.com", "displayName": "Jane",
            "emails": [{"value": "jane.private@example.org", "type": "work", "primary": true}],
            "roles": [{"value": "Writer", "primary": "True"}]}),
    ))
    .expect("create");
    let deactivate = json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    block_on(Users::patch(&s, &jane.id, &deactivate, None)).expect("deactivate");
    // The same change again changes nothing, and records nothing.
    block_on(Users::patch(&s, &jane.id, &deactivate, None)).expect("no-op");
    let add = json!({"Operations": [{"op": "Add", "path": "members",
        "value": [{"value": "u1"}, {"value": jane.id}, {"value": "nobody"}]}]});
    block_on(Groups::patch(&s, "g1", &add, None)).expect("add, skipping nobody");
    block_on(Groups::replace(
        &s,
        "g1",
        &json!({"displayName": "Sales EMEA", "members": [{"value": "u3"}, {"value": jane.id}]}),
        None,
    ))
    .expect("put");
    block_on(resources::delete(&s, Table::Users, &jane.id, None)).expect("delete");

    let events = feed_after(&db, start);
    let j = jane.id.as_str();
    assert_eq!(
        kinds(&events),
        vec![
            format!("user.created {j}"),
            format!("user.deactivated {j}"),
            "group.members_added g1".to_string(),
            "group.updated g1".to_string(),
            "group.members_removed g1".to_string(),
            "group.members_added g1".to_string(),
            format!("user.deleted {j}"),
            "group.members_removed g1".to_string(),
        ]
    );
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| {
            let c = e["cursor"].as_str().expect("cursor");
            Cursor::parse(Some(c)).expect("a cursor").at("DB")
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    let created = &events[0]["data"]["user"];
    assert_eq!(created["userName"], json!("jane@acme.com"));
    assert_eq!(created["role"], json!("Writer"));
    assert_eq!(created["active"], json!(true));
    assert_eq!(
        created["emails"][0]["value"],
        json!("jane.private@example.org")
    );
    assert_eq!(created["groups"], json!([]));
    assert_eq!(events[1]["data"]["changed"], json!(["active"]));
    assert_eq!(events[1]["data"]["user"]["active"], json!(false));
    // Only the member that was not one already, and never the unknown id.
    assert_eq!(member_ids(&events[2]), vec![j.to_string()]);
    assert_eq!(events[3]["data"]["changed"], json!(["displayName"]));
    assert_eq!(
        events[3]["data"]["group"]["displayName"],
        json!("Sales EMEA")
    );
    // The PUT: u1 leaves, u3 joins, jane stays (no event for her).
    assert_eq!(member_ids(&events[4]), vec!["u1".to_string()]);
    assert_eq!(member_ids(&events[5]), vec!["u3".to_string()]);
    // Deleting jane: her event with her last shape, then g1's, which she leaves.
    assert_eq!(member_ids(&events[7]), vec![j.to_string()]);
    let last = &events[6]["data"]["user"];
    assert_eq!(last["active"], json!(false));
    assert_eq!(
        last["groups"],
        json!([{"id": "g1", "displayName": "Sales EMEA"}])
    );
    assert_eq!(events[6]["at"], json!("2025-11-24T16:00:00.000Z"));
}

/// An executor whose first conditional write loses its race, like the service's own test, and
/// that refuses any statement over D1's 100 bound parameters.
struct Strict<'a> {
    db: &'a Sqlite,
    lose_first: Cell<bool>,
    batches: Cell<u32>,
}

impl Executor for Strict<'_> {
    async fn query(&self, stmt: Stmt) -> Result<Outcome, StoreError> {
        self.batch(vec![stmt]).await.map(|mut o| o.remove(0))
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, StoreError> {
        for s in &stmts {
            assert!(
                s.params.len() <= MAX_PARAMS,
                "{} parameters: {}",
                s.params.len(),
                s.sql
            );
        }
        self.batches.set(self.batches.get() + 1);
        if self.lose_first.get() && stmts.first().is_some_and(|s| s.sql.starts_with("UPDATE")) {
            self.lose_first.set(false);
            self.db
                .query(Stmt::new("UPDATE users SET version = version + 1", vec![]))
                .await?;
            self.db
                .query(Stmt::new("UPDATE groups SET version = version + 1", vec![]))
                .await?;
        }
        self.db.batch(stmts).await
    }
}

#[test]
fn a_lost_race_records_nothing_and_the_retry_records_once() {
    let db = seeded(&json!({"displayName": "Sales", "members": []}));
    let strict = Strict {
        db: &db,
        lose_first: Cell::new(true),
        batches: Cell::new(0),
    };
    let rt = TestRuntime::at(50);
    let log = RequestLog::new(LogEntry {
        at: 50,
        method: "PATCH".into(),
        route: "/Users/u2".into(),
        status: 200,
        ..LogEntry::default()
    });
    let s = scope(&strict, &rt, Some(&log));
    // A whole complex attribute: read first, then the conditional write (a leaf alone would be
    // one blind write, which loses no race).
    let rename =
        json!({"Operations": [{"op": "replace", "path": "name", "value": {"givenName": "R"}}]});
    block_on(Users::patch(&s, "u2", &rename, None)).expect("patch");
    assert_eq!(rt.pauses.get(), 1, "lost once, retried");
    assert_eq!(kinds(&feed(&db)), vec!["user.updated u2".to_string()]);
    assert_eq!(db.count("SELECT COUNT(*) FROM logs"), 1);
    assert_eq!(log.finish(Ok(200), &[], 60), None, "the batch carried it");
}

#[test]
fn a_push_of_1600_members_is_one_batch_and_two_events() {
    let db = two_tenants();
    let rt = TestRuntime::at(70);
    let strict = Strict {
        db: &db,
        lose_first: Cell::new(false),
        batches: Cell::new(0),
    };
    let s = scope(&strict, &rt, None);
    let mut ids = Vec::new();
    for i in 0..1_600 {
        let u = block_on(Users::create(
            &s,
            &json!({"userName": format!("m{i}@x.org")}),
        ))
        .expect("user");
        ids.push(u.id);
    }
    let g = block_on(Groups::create(&s, &json!({"displayName": "All"}))).expect("group");
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let before = strict.batches.get();
    block_on(Groups::patch(
        &s,
        &g.id,
        &json!({"Operations": [{"op": "add", "path": "members", "value": members}]}),
        None,
    ))
    .expect("patch");
    assert_eq!(
        strict.batches.get() - before,
        1,
        "one batch: no read before it"
    );
    let added: Vec<Value> = feed(&db)
        .into_iter()
        .filter(|e| e["type"] == "group.members_added")
        .collect();
    let sizes: Vec<usize> = added.iter().map(|e| member_ids(e).len()).collect();
    assert_eq!(sizes, vec![1_000, 600]);
    let mut all: Vec<String> = added.iter().flat_map(member_ids).collect();
    all.sort();
    ids.sort();
    assert_eq!(all, ids);
}

#[test]
fn log_entries_name_the_resource_and_hold_no_other_value() {
    let db = seeded(&json!({"displayName": "Sales", "members": []}));
    let rt = TestRuntime::at(80);
    let entry = |method: &str, route: &str, status| LogEntry {
        at: 80,
        method: method.into(),
        route: route.into(),
        status,
        ..LogEntry::default()
    };
    let log = RequestLog::new(entry("POST", "/Users", 201));
    let s = scope(&db, &rt, Some(&log));
    let u = block_on(Users::create(
        &s,
        &json!({"userName": "jane@acme.com",
            "emails": [{"value": "jane.private@example.org", "type": "work"}],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
            "roles": [{"value": "Reader", "primary": true}]}),
    ))
    .expect("create");
    assert_eq!(log.finish(Ok(201), &[], 90), None);

    let log = RequestLog::new(entry("PATCH", &format!("/Users/{}", u.id), 200));
    let s = scope(&db, &rt, Some(&log));
    let promote = json!({"Operations": [
        {"op": "replace", "path": "roles", "value": [{"value": "Writer", "primary": "True"}]},
        {"op": "replace", "path": "phoneNumbers", "value": [{"value": "+44 20 7946 0000"}]}]});
    block_on(Users::patch(&s, &u.id, &promote, None)).expect("patch");

    let log = RequestLog::new(entry("PATCH", "/Groups/g1", 204));
    let s = scope(&db, &rt, Some(&log));
    let add = json!({"Operations": [{"op": "add", "path": "members",
        "value": [{"value": u.id}, {"value": "u1"}, {"value": "stale-id"}]}]});
    block_on(Groups::patch(&s, "g1", &add, None)).expect("patch");
    assert_eq!(log.warnings(), 1);

    let q = LogQuery {
        limit: 10,
        ..LogQuery::default()
    };
    let logs = block_on(host_app::logs(&db, "a", &q)).expect("logs").items;
    let lines: Vec<(String, Option<String>, Option<String>)> = logs
        .iter()
        .map(|l| {
            let text = |k: &str| l[k].as_str().map(str::to_string);
            (
                text("route").unwrap_or_default(),
                text("resourceName"),
                text("summary"),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                "/Groups/g1".into(),
                Some("Sales".into()),
                Some("Sales: 2 members added; 1 unknown member skipped".into())
            ),
            (
                format!("/Users/{}", u.id),
                Some("jane@acme.com".into()),
                Some("jane@acme.com: role changed to Writer; updated: phoneNumbers".into())
            ),
            (
                "/Users".into(),
                Some("jane@acme.com".into()),
                Some("jane@acme.com created".into())
            ),
        ]
    );
    assert_eq!(
        logs[0]["warnings"],
        json!(["member 'stale-id' skipped: no user or group of this organisation has this id"])
    );
    let everything = db.count(
        "SELECT COUNT(*) FROM logs WHERE (coalesce(summary, '') || coalesce(detail, '') || \
         coalesce(warnings, '') || route || coalesce(resource_name, '')) \
         GLOB '*example.org*' OR summary GLOB '*555*' OR summary GLOB '*7946*'",
    );
    assert_eq!(everything, 0, "no email but the userName, no phone number");
}

#[test]
fn upkeep_expires_caps_and_purges_in_chunks() {
    let db = two_tenants();
    let day = 86_400_000;
    let rt = TestRuntime::at(40 * day);
    let s = scope(&db, &rt, None);
    // 2,500 users in `a`, created 35 days ago (their events expire); one user in `b`, now.
    rt.now.set(5 * day);
    for i in 0..2_500 {
        block_on(Users::create(
            &s,
            &json!({"userName": format!("p{i}@x.org")}),
        ))
        .expect("user");
    }
    rt.now.set(40 * day);
    let b = Scope {
        tenant_id: "ten_b",
        ..scope(&db, &rt, None)
    };
    block_on(Users::create(&b, &json!({"userName": "keep@b.org"}))).expect("user b");
    // 30 entries written together, as the edge gathers them, in their order.
    let entries: Vec<LogEntry> = (0..30)
        .map(|i| LogEntry {
            at: 40 * day,
            method: "GET".into(),
            route: format!("/Users/{i}"),
            status: if i == 29 { 401 } else { 200 },
            warnings: vec![format!("w{i}")],
            ..LogEntry::default()
        })
        .collect();
    block_on(super::log::record(&db, T, &entries, &[])).expect("log");
    let q = LogQuery {
        limit: 2,
        ..LogQuery::default()
    };
    let newest = block_on(host_app::logs(&db, "a", &q)).expect("logs").items;
    assert_eq!(newest[0]["route"], json!("/Users/29"));
    assert_eq!(newest[0]["outcome"], json!("failure"));
    assert_eq!(newest[0]["warnings"], json!(["w29"]));
    assert_eq!(newest[1]["route"], json!("/Users/28"));
    let settings = Settings {
        log_max_entries: 10,
        ..Settings::default()
    };
    let report = block_on(upkeep::run(&db, &rt, settings, 60_000)).expect("run");
    assert_eq!(report.events_expired, 2_500);
    assert_eq!(report.logs_capped, 20);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM events"),
        1,
        "b's event is kept"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM logs WHERE tenant_id = 'ten_a'"),
        10
    );

    // Deleting `a`: unreachable at once, purged in rounds of at most a chunk per table.
    let all = crate::service::testing::TestShards::new(db.clone(), 0);
    let purge = block_on(upkeep::delete_tenant(&all, &rt, "a", 0)).expect("delete");
    assert!(purge.remaining > 0, "a budget of 0 leaves rows: {purge:?}");
    assert_eq!(
        block_on(host_app::tenant_id(&db, "a")).map_err(|e| e.status),
        Err(404)
    );
    let pending = block_on(upkeep::pending(&all)).expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].subdomain, "a");
    let report = block_on(upkeep::run(&db, &rt, settings, 60_000)).expect("run");
    assert_eq!(report.purges.len(), 1);
    assert_eq!(report.purges[0].remaining, 0);
    assert_eq!(block_on(upkeep::pending(&all)).expect("pending"), vec![]);
    for table in [
        "users",
        "user_values",
        "groups",
        "memberships",
        "events",
        "logs",
        "tokens",
        "tenants",
    ] {
        let id = if table == "tenants" {
            "id"
        } else {
            "tenant_id"
        };
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {id} = 'ten_a'"
            )),
            0,
            "{table}"
        );
    }
    assert_eq!(
        db.count("SELECT COUNT(*) FROM users WHERE tenant_id = 'ten_b'"),
        1
    );
}

/// Refused requests add up in one entry per minute, address and reason (a second write of the
/// same minute adds to its count), read with their count in words, and the log cap counts them
/// apart: a thousand refusals push no request's entry out.
#[test]
fn refusals_aggregate_and_are_capped_apart_from_requests() {
    use crate::store::log::Refusals;
    let db = two_tenants();
    let rt = TestRuntime::at(60_000 * 100);
    let genuine: Vec<LogEntry> = (0..3)
        .map(|i| LogEntry {
            at: 60_000 * 100 + i,
            method: "GET".into(),
            route: format!("/Users/{i}"),
            status: 200,
            ..LogEntry::default()
        })
        .collect();
    block_on(super::log::record(&db, T, &genuine, &[])).expect("log");
    let refusal = |minute: i64, reason: &'static str, count: u64| Refusals {
        at: 60_000 * minute + 5,
        minute: 60_000 * minute,
        address: "203.0.113.9".into(),
        reason,
        words: "no Secret Token was sent",
        status: 401,
        method: "GET".into(),
        route: "/Users/{id}",
        count,
        presented: vec![],
    };
    for minute in 101..=112 {
        // Two isolates' flushes of the same minute, and another reason.
        let batch = [
            refusal(minute, "no-token", 400),
            refusal(minute, "invalid-token", 1),
        ];
        block_on(super::log::record(&db, T, &[], &batch)).expect("refusals");
        block_on(super::log::record(
            &db,
            T,
            &[],
            &[refusal(minute, "no-token", 100)],
        ))
        .expect("refusals");
    }
    assert_eq!(
        db.count("SELECT COUNT(*) FROM logs WHERE refusal_key IS NOT NULL"),
        24
    );
    let q = LogQuery {
        limit: 2,
        ..LogQuery::default()
    };
    let newest = block_on(host_app::logs(&db, "a", &q)).expect("logs").items;
    let counts: Vec<&Value> = newest.iter().map(|e| &e["count"]).collect();
    assert_eq!(counts, [&json!(1), &json!(500)], "{newest:?}");
    assert_eq!(
        newest[1]["summary"],
        json!("Refused 500 requests from 203.0.113.9: no Secret Token was sent")
    );
    assert_eq!(newest[1]["route"], json!("/Users/{id}"));
    let summary = block_on(host_app::summary(&db, "a", 60_000 * 113)).expect("summary");
    assert_eq!(summary["last24h"]["failures"], json!(12 * 501));
    let settings = Settings {
        log_max_entries: 3,
        log_max_refusals: 10,
        ..Settings::default()
    };
    block_on(upkeep::run(&db, &rt, settings, 60_000)).expect("run");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM logs WHERE refusal_key IS NULL"),
        3,
        "every request's entry stays"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM logs WHERE refusal_key IS NOT NULL"),
        10,
        "the newest refusals stay"
    );
}

/// Entra's attribute updates without If-Match are one batch that reads nothing first; with
/// `If-Match: *` the same PATCH takes the read-then-write path. From the same directory both
/// leave the same user, version, events (with the same `changed`), and log summaries; a
/// repeated PATCH is no write in either; an unknown user is 404 in both.
#[test]
fn a_leaf_patch_is_one_batch_and_records_what_read_then_write_records() {
    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let ops = |list: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list});
    let steps = [
        // Through the read first on both: a starting point with values to change or keep.
        (
            ops(
                json!([{"op": "replace", "path": "name", "value": {"givenName": "G", "familyName": "F"}},
                    {"op": "add", "path": ENT, "value": {"department": "D"}},
                    {"op": "add", "path": "emails", "value": [{"value": "a@x.org", "type": "work"}]}]),
            ),
            false,
        ),
        (
            ops(
                json!([{"op": "Replace", "path": "displayName", "value": "Ann"},
                    {"op": "Replace", "path": "name.givenName", "value": "Gina"},
                    {"op": "Replace", "path": "name.familyName", "value": "F"},
                    {"op": "Add", "path": format!("{ENT}:department"), "value": "D"},
                    {"op": "Add", "path": format!("{ENT}:costCenter"), "value": "42"},
                    {"op": "Replace", "path": "title", "value": "Eng"}]),
            ),
            true,
        ),
        // The same again: nothing differs.
        (
            ops(
                json!([{"op": "Replace", "path": "displayName", "value": "Ann"},
                    {"op": "Replace", "path": "title", "value": "Eng"}]),
            ),
            true,
        ),
        // Path-less, Okta's way, one value differing; an unknown key ignored.
        (
            ops(
                json!([{"op": "replace", "value": {"title": "Eng", "nickName": "A",
                    "urn:example:unknown:x": "y"}}]),
            ),
            true,
        ),
        (
            ops(json!([{"op": "replace", "path": "name.givenName", "value": "G\u{e4}"}])),
            true,
        ),
    ];
    let run = |blind: bool| {
        let db = seeded(&json!({"displayName": "Sales", "members": ["u1"]}));
        let strict = Strict {
            db: &db,
            lose_first: Cell::new(false),
            batches: Cell::new(0),
        };
        let rt = TestRuntime::at(90);
        let mut seen = Vec::new();
        for (body, leaf) in &steps {
            let log = RequestLog::new(LogEntry {
                at: 90,
                method: "PATCH".into(),
                route: "/Users/u1".into(),
                status: 200,
                ..LogEntry::default()
            });
            let s = scope(&strict, &rt, Some(&log));
            let before = strict.batches.get();
            let if_match = (!(blind && *leaf)).then_some("*");
            let u = block_on(Users::patch(&s, "u1", body, if_match))
                .expect("patch")
                .expect("a user");
            if blind && *leaf {
                assert_eq!(strict.batches.get() - before, 1, "one batch: {body}");
            }
            seen.push((Value::Object(u.data.clone()), u.version));
            if let Some(entry) = log.finish(Ok(200), &[], 95) {
                let stmt = crate::store::log::insert_stmt(T, &[entry]).expect("a statement");
                block_on(db.query(stmt)).expect("log");
            }
        }
        // A user without the extension: the extension is what changed.
        let s = scope(&strict, &rt, None);
        let if_match = (!blind).then_some("*");
        let u2 = block_on(Users::patch(&s, "u2", &steps[1].0, if_match)).expect("patch");
        seen.push((Value::Object(u2.expect("u2").data), 0));
        let missing = block_on(Users::patch(&s, "nobody", &steps[1].0, None)).expect_err("404");
        assert_eq!(missing.status, 404);
        let q = LogQuery {
            limit: 100,
            ..LogQuery::default()
        };
        let logs = block_on(host_app::logs(&db, "a", &q)).expect("logs").items;
        let summaries: Vec<Value> = logs.iter().map(|l| l["summary"].clone()).collect();
        (seen, feed(&db), summaries)
    };
    let (blind, read_first) = (run(true), run(false));
    assert_eq!(
        blind.0, read_first.0,
        "the same user and version after each step"
    );
    assert_eq!(blind.1, read_first.1, "the same events");
    assert_eq!(blind.2, read_first.2, "the same log summaries");
    let changed: Vec<Value> = blind
        .1
        .iter()
        .filter(|e| e["type"] == "user.updated")
        .map(|e| e["data"]["changed"].clone())
        .collect();
    let cost = format!("{ENT}:costCenter");
    assert_eq!(
        changed,
        [
            // The extension was new: it changed as a whole.
            json!(["emails", "name", ENT]),
            // `name.familyName` and the department were set to what they were.
            json!(["displayName", "name", "title", cost]),
            json!(["nickName"]),
            json!(["name"]),
            json!(["displayName", "name", "title", ENT]),
        ],
        "{:#?}",
        blind.1
    );
    assert_eq!(blind.0[1].1, blind.0[2].1, "the repeat is no new version");
    assert!(
        blind
            .2
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.ends_with(": no change"))),
        "{:?}",
        blind.2
    );
}
