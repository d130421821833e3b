//! Query plans of the host app's statements, exactly as they run (recorded from the real
//! functions, with their ORDER BY and LIMIT): every read of the feed, the directory, the log and
//! the summary, and every chunked delete, seeks an index for its tenant instead of
//! scanning a table. The one exception is retention, which walks the primary key from its
//! oldest row and stops after a chunk.

use pollster::block_on;

use crate::store::directory::{self, UserQuery};
use crate::store::feed;
use crate::store::fixture::{seeded, Recorder, T};
use crate::store::log::{self, LogQuery};
use crate::store::sqlite::Sqlite;
use crate::store::upkeep;
use crate::store::Executor;

/// A scan step that reads no table: a JSON array (`json_each`, aliased `j`), a constant row, or
/// a subquery's own rows (`x`, `c`).
fn derived(step: &str) -> bool {
    let what = step.trim_start_matches("SCAN ");
    what.starts_with("json_each")
        || what.starts_with("j VIRTUAL TABLE")
        || what == "CONSTANT ROW"
        || what == "x"
        || what == "c"
        || what.starts_with("(subquery-")
}

#[test]
fn the_host_apps_statements_seek_their_organisation() {
    let db = seeded(&serde_json::json!({"displayName": "Sales", "members": ["u1", "u2"]}));
    let r = Recorder::new(&db);
    block_on(async {
        let types = vec!["user.created".to_string()];
        let births = r#"{"DB": 5, "SHARD_2": 9}"#;
        feed::read_tenant(&r, "DB", T, births, 5, &types, 0, 10)
            .await
            .expect("feed");
        let positions = [("DB".to_string(), 5), ("SHARD_2".to_string(), 9)];
        feed::read_shard(&r, "DB", &positions, &types, 10)
            .await
            .expect("feed");
        let users = UserQuery {
            active: Some(true),
            user_name: Some("user1@x.org".into()),
            after: Some("u0".into()),
            limit: 10,
        };
        directory::users(&r, T, &users).await.expect("users");
        directory::groups(&r, T, Some("g0"), 10)
            .await
            .expect("groups");
        directory::one(&r, T, false, "u1").await.expect("user");
        directory::members(&r, T, "g1", Some("u1"), 10)
            .await
            .expect("members");
        let lq = LogQuery {
            before: Some((100, 7)),
            failed: Some(true),
            resource_id: None,
            limit: 10,
        };
        log::read(&r, T, &lq).await.expect("logs");
        let lq = LogQuery {
            failed: None,
            resource_id: Some("u1".into()),
            ..lq
        };
        log::read(&r, T, &lq).await.expect("logs");
        log::summary(&r, T, 0).await.expect("summary");
        upkeep::cap_logs(&r, &[T.to_string()], 5, 5)
            .await
            .expect("cap");
        let refused = log::Refusals {
            at: 1,
            minute: 0,
            address: "203.0.113.9".into(),
            reason: "no-token",
            words: "no Secret Token was sent",
            status: 401,
            method: "GET".into(),
            route: "/Users",
            count: 1,
            presented: vec!["a1b2".into()],
        };
        for stmt in log::refusals_stmts(T, &[refused]) {
            r.query(stmt).await.expect("refusals");
        }
        upkeep::purge_round(&r, "ten_b").await.expect("purge");
    });
    let seen = r.seen.borrow();
    assert!(seen.len() >= 14, "{}", seen.len());
    for stmt in seen.iter() {
        let plan = db.plan(&stmt.sql, &stmt.params);
        // A bare `SCAN t` reads a whole table (aliases included); what may be scanned is a
        // JSON array, a constant row, or a subquery's own rows (`x`, `c`). And no sort of a
        // whole tenant's rows.
        for line in plan.lines() {
            let step = line.trim_start_matches(|c: char| !c.is_alphabetic());
            if step.starts_with("SCAN ") {
                assert!(derived(step), "{}\n{plan}", stmt.sql);
            }
            // Grouping the unread copies of moved tenants (the feed of everything) sorts
            // those alone, never a tenant's rows.
            let unread_copies = stmt.sql.starts_with("SELECT tenant_id, origin, min(seq)");
            assert!(
                !step.contains("TEMP B-TREE") || unread_copies,
                "{}\n{plan}",
                stmt.sql
            );
            // A user's groups start from its memberships, never from all the groups.
            assert!(
                !step.starts_with("SEARCH gm USING INDEX groups_by_display_name_key (tenant_id=?)")
            );
        }
        println!("{}\n{plan}\n", stmt.sql);
    }
}

#[test]
fn retention_walks_the_oldest_rows_only() {
    let db = Sqlite::migrated();
    let r = Recorder::new(&db);
    block_on(upkeep::expire(&r, "events", 1_000)).expect("expire");
    let stmt = r.seen.borrow()[0].clone();
    let plan = db.plan(&stmt.sql, &stmt.params);
    // The primary key in order, stopping after a chunk: old rows come first.
    assert!(plan.contains("SCAN events"), "{plan}");
    assert!(stmt.sql.contains("ORDER BY seq LIMIT ?"), "{}", stmt.sql);
}

/// Every statement a write runs, with its events and its log entry, costs the same in a
/// tenant of 10 users as of 100,000: no step walks the tenant (a seek on
/// `tenant_id` alone, or on `tenant_id` and an attribute name), nothing is sorted.
#[test]
fn a_writes_trail_never_walks_the_organisation() {
    use crate::store::log::LogEntry;
    use crate::store::memberships::{Member, MemberChange};
    use crate::store::trail::{Event, EventType, Trail};
    use crate::store::{groups, resources, table::Table, users};
    use scim_core::scim::resource::RefType;

    let db = seeded(&serde_json::json!({"displayName": "Sales", "members": ["u1"]}));
    let r = Recorder::new(&db);
    let log = LogEntry {
        at: 5,
        method: "POST".into(),
        route: "/Users".into(),
        status: 201,
        ..LogEntry::default()
    };
    let trail = |kind| Trail {
        events: vec![Event {
            kind,
            changed: vec!["displayName".into()],
        }],
        log: Some(&log),
    };
    block_on(async {
        let data = serde_json::json!({"userName": "n@x.org",
            "emails": [{"value": "n@x.org"}], "roles": [{"value": "Writer", "primary": true}]});
        let data = data.as_object().cloned().unwrap_or_default();
        let u = users::insert(&r, T, "n1", &data, 5, "w1", &trail(EventType::UserCreated))
            .await
            .expect("insert");
        users::update(&r, T, &u, &data, 6, "w2", &trail(EventType::UserUpdated))
            .await
            .expect("update");
        let add = vec![MemberChange::Add(vec![Member {
            id: "n1".into(),
            kind: RefType::User,
            display: None,
        }])];
        groups::write(
            &r,
            T,
            "g1",
            Some(1),
            None,
            &add,
            7,
            "w3",
            &trail(EventType::GroupUpdated),
        )
        .await
        .expect("group");
        let set = vec![MemberChange::Set(vec![])];
        groups::write(
            &r,
            T,
            "g1",
            None,
            None,
            &set,
            8,
            "w4",
            &trail(EventType::GroupUpdated),
        )
        .await
        .expect("group");
        resources::delete(
            &r,
            Table::Users,
            T,
            "u2",
            None,
            9,
            &trail(EventType::UserDeleted),
        )
        .await
        .expect("delete");
    });
    let seen = r.seen.borrow();
    let mut trail_statements = 0;
    for stmt in seen.iter() {
        trail_statements += usize::from(
            stmt.sql.starts_with("INSERT INTO events") || stmt.sql.starts_with("INSERT INTO logs"),
        );
        let plan = db.plan(&stmt.sql, &stmt.params);
        for line in plan.lines() {
            let step = line.trim_start_matches(|c: char| !c.is_alphabetic());
            let walks = step.ends_with("(tenant_id=?)")
                || step.ends_with("(tenant_id=? AND attr=?)")
                || step.contains("TEMP B-TREE")
                || (step.starts_with("SCAN ") && !derived(step));
            // Removing every member of one group walks that group's members, by design; a
            // membership event sorts the members it records (the request's, or the group's
            // that go), never the tenant's.
            let whole_group = plan.contains("(tenant_id=? AND group_id=?)");
            let sorts_its_members = step.contains("TEMP B-TREE")
                && stmt.sql.starts_with("INSERT INTO events")
                && stmt.sql.contains("row_number() OVER (ORDER BY c.id)");
            assert!(
                !walks || whole_group || sorts_its_members,
                "{}\n{plan}",
                stmt.sql
            );
        }
    }
    assert!(trail_statements >= 10, "{trail_statements}");
}
