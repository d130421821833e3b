//! Organisations over several shards, on SQLite: placement, the directory's list, updates and
//! deletion reaching the right shard, and the feed of everything merged across shards.

use pollster::block_on;
use serde_json::{json, Value};

use super::shards::{self, Cursor, Databases};
use super::testing::{TestRuntime, TestShards};
use super::{tenants, upkeep, vendor};
use crate::store::sqlite::Sqlite;
use crate::store::Executor;
use crate::store::Stmt;

fn three() -> TestShards {
    TestShards::new(Sqlite::migrated(), 2)
}

fn count(db: &Sqlite, sql: &str) -> i64 {
    db.count(sql)
}

fn event(db: &Sqlite, tenant: &str, resource: &str, at: i64) {
    block_on(db.query(Stmt::new(
        "INSERT INTO events (tenant_id, type, resource_id, at, data) VALUES (?, 'user.created', ?, ?, '{}')",
        vec![tenant.into(), resource.into(), at.into()],
    )))
    .expect("event");
}

#[test]
fn organisations_spread_over_open_shards_and_their_rows_stay_in_theirs() {
    let all = three();
    let rt = TestRuntime::at(1_000);
    let mut placed = Vec::new();
    for sub in ["a1", "a2", "a3", "a4", "a5", "a6"] {
        let o = block_on(tenants::create(&all, &rt, sub, None, None, None)).expect("create");
        placed.push(o.shard);
    }
    for b in all.bindings() {
        assert_eq!(placed.iter().filter(|p| *p == b).count(), 2, "{placed:?}");
        let shard = all.shard(b).expect("shard");
        assert_eq!(count(&shard, "SELECT count(*) FROM tenants"), 2, "{b}");
    }
    // A subdomain is taken across shards; a named shard must exist; a closed one is skipped.
    let taken = block_on(tenants::create(
        &all,
        &rt,
        "a1",
        None,
        None,
        Some("SHARD_3"),
    ));
    assert_eq!(taken.map_err(|e| e.status).err(), Some(409));
    let unknown = block_on(tenants::create(&all, &rt, "b", None, None, Some("SHARD_9")));
    assert_eq!(unknown.map_err(|e| e.status).err(), Some(400));
    block_on(shards::set_open(&all, "DB", false)).expect("close");
    block_on(shards::set_open(&all, "SHARD_2", false)).expect("close");
    let o = block_on(tenants::create(&all, &rt, "b1", None, None, None)).expect("create");
    assert_eq!(o.shard, "SHARD_3");
    block_on(shards::set_open(&all, "SHARD_3", false)).expect("close");
    let none = block_on(tenants::create(&all, &rt, "b2", None, None, None));
    assert_eq!(none.map_err(|e| e.status).err(), Some(409));
    let named = block_on(tenants::create(&all, &rt, "b3", None, None, Some("DB"))).expect("named");
    assert_eq!(named.shard, "DB");
    let figures = block_on(shards::figures(&all, &rt)).expect("figures");
    let orgs: Vec<(String, bool, i64)> = figures
        .iter()
        .map(|v| (v.binding.clone(), v.open, v.figures.organisations))
        .collect();
    assert_eq!(
        orgs,
        vec![
            ("DB".into(), false, 3),
            ("SHARD_2".into(), false, 2),
            ("SHARD_3".into(), false, 3)
        ]
    );

    // The list pages through the directory in subdomain order.
    let (first, next) = block_on(tenants::list(&all, None, 5)).expect("list");
    assert_eq!(first.len(), 5);
    let (rest, last) = block_on(tenants::list(&all, next.as_deref(), 5)).expect("list");
    assert_eq!((rest.len(), last), (3, None));

    // An update reaches the organisation's shard (its gate reads it) and the directory.
    let a2 = block_on(shards::locate(&all, "a2")).expect("a2");
    let changed = block_on(tenants::update(
        &all,
        &rt,
        "a2",
        Some("Renamed"),
        Some(false),
    ))
    .expect("update");
    assert_eq!(
        (changed.name.as_str(), changed.provisioning_enabled),
        ("Renamed", false)
    );
    assert_eq!(
        count(
            &a2.db,
            "SELECT count(*) FROM tenants WHERE subdomain = 'a2' AND name = 'Renamed' \
             AND provisioning_enabled = 0"
        ),
        1
    );

    // Deleting: off the list, unreachable in its shard, purged there.
    let purge = block_on(upkeep::delete_tenant(&all, &rt, "a2", 60_000)).expect("delete");
    assert_eq!(purge.remaining, 0);
    assert_eq!(
        block_on(shards::locate(&all, "a2"))
            .map(|_| ())
            .map_err(|e| e.status),
        Err(404)
    );
    let left = format!("SELECT count(*) FROM tenants WHERE id = '{}'", a2.org.id);
    assert_eq!(count(&a2.db, &left), 0);
    let again = block_on(tenants::create(
        &all,
        &rt,
        "a2",
        None,
        None,
        Some("SHARD_2"),
    ));
    assert!(again.is_ok(), "the subdomain is free again");
}

#[test]
fn the_feed_of_everything_merges_shards_and_resumes_each_exactly() {
    let all = three();
    let rt = TestRuntime::at(1_000);
    let mut orgs = Vec::new();
    for (sub, shard) in [("x", "DB"), ("y", "SHARD_2"), ("z", "SHARD_3")] {
        orgs.push(block_on(tenants::create(&all, &rt, sub, None, None, Some(shard))).expect("org"));
    }
    // Interleaved in time across shards; within one organisation, in commit order.
    let mut at = 0;
    for round in 0..7 {
        for o in &orgs {
            at += 1;
            event(
                &all.shard(&o.shard).expect("shard"),
                &o.id,
                &format!("{}-{round}", o.subdomain),
                at,
            );
        }
    }
    let mut read: Vec<Value> = Vec::new();
    let mut cursor = Cursor::default();
    loop {
        let page = block_on(vendor::feed_of_all(&all, cursor.clone(), vec![], 4)).expect("page");
        let n = page.items.len();
        if let Some(last) = page.items.last() {
            assert_eq!(last["cursor"], json!(page.next.encode()));
        }
        read.extend(page.items);
        cursor = page.next;
        if n < 4 {
            break;
        }
    }
    let ids: Vec<&str> = read
        .iter()
        .filter_map(|e| e["resourceId"].as_str())
        .collect();
    assert_eq!(ids.len(), 21, "{ids:?}");
    for o in &orgs {
        let mine: Vec<String> = ids
            .iter()
            .filter(|i| i.starts_with(&o.subdomain))
            .map(|i| i.to_string())
            .collect();
        let expected: Vec<String> = (0..7).map(|r| format!("{}-{r}", o.subdomain)).collect();
        assert_eq!(mine, expected);
    }
    // Nothing new: the same cursor comes back; a new event on one shard alone is read next.
    let idle = block_on(vendor::feed_of_all(&all, cursor.clone(), vec![], 4)).expect("idle");
    assert!(idle.items.is_empty());
    assert_eq!(idle.next, cursor);
    event(
        &all.shard("SHARD_3").expect("shard"),
        &orgs[2].id,
        "z-late",
        99,
    );
    let late = block_on(vendor::feed_of_all(&all, cursor.clone(), vec![], 4)).expect("late");
    assert_eq!(late.items.len(), 1);
    assert_eq!(late.items[0]["resourceId"], json!("z-late"));
    assert_eq!(late.items[0]["organisation"]["subdomain"], json!("z"));
    // One organisation's feed reads its shard only.
    let y = block_on(shards::locate(&all, "y")).expect("y");
    let page = block_on(vendor::feed(
        &y.db,
        "SHARD_2",
        "y",
        Cursor::default(),
        vec![],
        100,
    ))
    .expect("y's feed");
    assert_eq!(page.items.len(), 7);
    assert_eq!(page.next.at("SHARD_2"), 7);
}
