//! Tenants over several shards, on SQLite: placement, the catalog's list, updates and
//! deletion reaching the right shard, and the feed of everything merged across shards.

use pollster::block_on;
use serde_json::{json, Value};

use super::shards::{self, Cursor, Databases};
use super::testing::{TestRuntime, TestShards};
use super::{host_app, tenants, upkeep, Runtime};
use crate::store::catalog;
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
        .map(|v| (v.binding.clone(), v.open, v.figures.tenants))
        .collect();
    assert_eq!(
        orgs,
        vec![
            ("DB".into(), false, 3),
            ("SHARD_2".into(), false, 2),
            ("SHARD_3".into(), false, 3)
        ]
    );

    // The list pages through the catalog in subdomain order.
    let (first, next) = block_on(tenants::list(&all, None, 5)).expect("list");
    assert_eq!(first.len(), 5);
    let (rest, last) = block_on(tenants::list(&all, next.as_deref(), 5)).expect("list");
    assert_eq!((rest.len(), last), (3, None));

    // An update reaches the tenant's shard (its gate reads it) and the catalog.
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
    // Interleaved in time across shards; within one tenant, in commit order.
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
        let page =
            block_on(host_app::feed_of_all(&all, &rt, cursor.clone(), vec![], 4)).expect("page");
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
    let idle = block_on(host_app::feed_of_all(&all, &rt, cursor.clone(), vec![], 4)).expect("idle");
    assert!(idle.items.is_empty());
    assert_eq!(idle.next, cursor);
    event(
        &all.shard("SHARD_3").expect("shard"),
        &orgs[2].id,
        "z-late",
        99,
    );
    let late = block_on(host_app::feed_of_all(&all, &rt, cursor.clone(), vec![], 4)).expect("late");
    assert_eq!(late.items.len(), 1);
    assert_eq!(late.items[0]["resourceId"], json!("z-late"));
    assert_eq!(late.items[0]["tenant"]["subdomain"], json!("z"));
    // One tenant's feed reads its shard only.
    let y = block_on(shards::locate(&all, "y")).expect("y");
    let page = block_on(host_app::feed(
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

mod moving {
    use super::*;
    use crate::service::groups::Groups;
    use crate::service::moves;
    use crate::service::oauth;
    use crate::service::resources::{self, Kind, Table};
    use crate::service::users::Users;
    use crate::service::Scope;
    use crate::store::moves::rows_of;

    /// Key sets are not used here: the OAuth client authenticates with its secret.
    struct NoKeys;

    impl oauth::KeySet for NoKeys {
        async fn verify(
            &self,
            _: &str,
            _: &scim_core::oauth::jwt::Assertion,
        ) -> scim_core::scim::error::Result<Option<&'static str>> {
            Ok(Some("no key set here"))
        }
    }

    fn scope<'a>(
        db: &'a Sqlite,
        rt: &'a TestRuntime,
        id: &'a str,
    ) -> Scope<'a, Sqlite, TestRuntime> {
        Scope {
            db,
            rt,
            tenant_id: id,
            log: None,
        }
    }

    /// Every event of tenant `sub`'s feed after `cursor`, page by page, from wherever it
    /// lives now; and the cursor after them.
    fn org_feed(
        all: &TestShards,
        sub: &str,
        mut cursor: Cursor,
        limit: u32,
    ) -> (Vec<Value>, Cursor) {
        let mut events = Vec::new();
        loop {
            let at = block_on(shards::locate(all, sub)).expect("locate");
            let page = block_on(host_app::feed(
                &at.db,
                &at.org.shard,
                sub,
                cursor,
                vec![],
                limit,
            ))
            .expect("page");
            let n = page.items.len();
            events.extend(page.items);
            cursor = page.next;
            if n < limit as usize {
                return (events, cursor);
            }
        }
    }

    fn all_feed(
        all: &TestShards,
        rt: &TestRuntime,
        mut cursor: Cursor,
        limit: u32,
    ) -> (Vec<Value>, Cursor) {
        let mut events = Vec::new();
        loop {
            let page =
                block_on(host_app::feed_of_all(all, rt, cursor, vec![], limit)).expect("page");
            let n = page.items.len();
            events.extend(page.items);
            cursor = page.next;
            if n < limit as usize {
                return (events, cursor);
            }
        }
    }

    /// What identifies an event whatever its cursor: its type, resource and data.
    fn plain(events: &[Value]) -> Vec<Value> {
        events
            .iter()
            .map(|e| json!([e["tenant"]["id"], e["type"], e["resourceId"], e["data"]]))
            .collect()
    }

    #[test]
    fn a_move_copies_everything_once_while_writes_go_on_and_the_feeds_continue() {
        let all = three();
        let rt = TestRuntime::at(1_000);
        let org = block_on(tenants::create(&all, &rt, "m", None, None, Some("DB"))).expect("org");
        let other =
            block_on(tenants::create(&all, &rt, "o", None, None, Some("SHARD_2"))).expect("o");
        let db = all.shard("DB").expect("DB");
        let token = block_on(tenants::create_token(&db, &rt, "m", false)).expect("token");
        // Its OAuth client, a secret, a federated credential and an access token travel too.
        let secret = block_on(oauth::create_secret(&db, &rt, &org.id, None)).expect("secret");
        let f = oauth::Federation {
            issuer: "https://login.microsoftonline.com/t/v2.0".into(),
            subject: "s".into(),
            audience: "a".into(),
            jwks_uri: "https://login.microsoftonline.com/t/discovery/v2.0/keys".into(),
        };
        block_on(oauth::set_federation(&db, &rt, &org.id, &f, false)).expect("federation");
        let by_secret = scim_core::oauth::Client::Secret {
            id: secret.client_id.clone(),
            secret: secret.secret.clone(),
            basic: true,
        };
        let hour = 3_600_000;
        let access = block_on(oauth::grant(&db, &rt, &NoKeys, &org.id, &by_secret, hour))
            .map_err(|r| r.why)
            .expect("access token");
        let mut ids = Vec::new();
        for i in 0..250 {
            let s = scope(&db, &rt, &org.id);
            let u = block_on(Users::create(
                &s,
                &json!({"userName": format!("u{i}@m.org"),
                "emails": [{"value": format!("u{i}@m.org"), "primary": true}]}),
            ))
            .expect("user");
            ids.push(u.id);
        }
        let members: Vec<Value> = ids
            .iter()
            .take(120)
            .map(|id| json!({"value": id}))
            .collect();
        let g = block_on(Groups::create(
            &scope(&db, &rt, &org.id),
            &json!({"displayName": "Sales", "members": members}),
        ))
        .expect("group");
        // Its roles travel too: the declaration it applied, its default, its mappings.
        let declared: Vec<String> = vec!["Writer".into(), "Reader".into()];
        block_on(crate::service::roles::declare(&all, &rt, &declared, 10_000)).expect("declare");
        let pairs = vec![(g.id.clone(), "Writer".to_string())];
        block_on(crate::service::roles::set_mappings(
            &db, &rt, &org.id, &pairs,
        ))
        .expect("mapped");
        block_on(crate::service::roles::set_default(
            &db,
            &rt,
            &org.id,
            Some("Reader"),
        ))
        .expect("default");
        let o2 = all.shard("SHARD_2").expect("SHARD_2");
        block_on(Users::create(
            &scope(&o2, &rt, &other.id),
            &json!({"userName": "x@o.org"}),
        ))
        .expect("other");
        // Consumers that read part of the feeds before the move.
        let (first, c1) = {
            let at = block_on(shards::locate(&all, "m")).expect("m");
            let page = block_on(host_app::feed(
                &at.db,
                "DB",
                "m",
                Cursor::default(),
                vec![],
                100,
            ))
            .expect("page");
            (page.items, page.next)
        };
        let page = block_on(host_app::feed_of_all(
            &all,
            &rt,
            Cursor::default(),
            vec![],
            60,
        ))
        .expect("all");
        let (all_first, a1) = (page.items, page.next);

        let started = block_on(moves::start(&all, &rt, "m", "SHARD_3")).expect("start");
        assert_eq!(started.phase, "copy");
        assert!(started.rows_at_start > 500, "{started:?}");
        // The move goes on a little at a time, and the tenant keeps being written.
        rt.step.set(1);
        let mut round = 0;
        let mut phases = Vec::new();
        loop {
            let m = block_on(moves::drive(&all, &rt, &org.id, 3)).expect("drive");
            let m = m.expect("a move");
            assert_eq!(m.error, None, "{m:?}");
            phases.push(m.phase.clone());
            if m.phase == "done" {
                assert!(m.catchup_rounds >= 1 && m.frozen_ms.is_some(), "{m:?}");
                break;
            }
            assert!(round < 500, "the move does not finish: {m:?}");
            let at = block_on(shards::locate(&all, "m")).expect("m");
            let s = scope(&at.db, &rt, &org.id);
            if m.phase == "cleanup" {
                // Its grace passes (log entries on their way to the old shard).
                rt.now.set(rt.now.get() + moves::GRACE_MS);
            }
            if round % 3 == 0 {
                let i = round;
                block_on(Users::create(
                    &s,
                    &json!({"userName": format!("late{i}@m.org")}),
                ))
                .expect("a write during the move");
                let patch = json!({"Operations": [{"op": "Replace", "path": "displayName",
                    "value": format!("Renamed {i}")}]});
                let id = ids.get(round % ids.len()).expect("id");
                block_on(Users::patch(&s, id, &patch, None)).expect("patch");
                let add = json!({"Operations": [{"op": "Add", "path": "members",
                    "value": [{"value": ids[200 + (round % 50)]}]}]});
                block_on(Groups::patch(&s, &g.id, &add, None)).expect("member add");
            }
            if round == 2 {
                block_on(resources::delete(&s, Table::Users, &ids[5], None)).expect("delete");
            }
            round += 1;
        }
        assert!(
            phases.iter().filter(|p| *p == "copy").count() > 2,
            "in steps: {phases:?}"
        );
        // Where it lives now, and nothing of it where it was.
        let at = block_on(shards::locate(&all, "m")).expect("m");
        assert_eq!(at.org.shard, "SHARD_3");
        assert_eq!(block_on(rows_of(&db, &org.id)).expect("rows"), 0);
        assert_eq!(
            db.count(&format!(
                "SELECT count(*) FROM tenants WHERE id = '{}'",
                org.id
            )),
            0
        );
        let new = all.shard("SHARD_3").expect("SHARD_3");
        // Everything arrived once: users (the deleted one gone), values, members, tokens.
        let users = new.count(&format!(
            "SELECT count(*) FROM users WHERE tenant_id = '{}'",
            org.id
        ));
        let late = new.count(&format!(
            "SELECT count(*) FROM users WHERE tenant_id = '{}' AND user_name LIKE 'late%'",
            org.id
        ));
        assert_eq!(users, 250 - 1 + late);
        assert!(late > 0);
        assert_eq!(
            new.count(&format!(
                "SELECT count(*) FROM user_values WHERE tenant_id = '{}' AND attr = 'emails'",
                org.id
            )),
            249
        );
        let members = new.count(&format!(
            "SELECT count(*) FROM memberships WHERE tenant_id = '{}'",
            org.id
        ));
        let added: std::collections::HashSet<usize> = (0..round)
            .filter(|r| r % 3 == 0)
            .map(|r| 200 + (r % 50))
            .collect();
        assert_eq!(
            members as usize,
            120 - 1 + added.len(),
            "the deleted user left Sales"
        );
        assert_eq!(
            new.count(&format!(
                "SELECT count(*) FROM tokens WHERE tenant_id = '{}'",
                org.id
            )),
            2,
            "the Secret Token and the access token"
        );
        for table in ["oauth_clients", "oauth_secrets"] {
            let n = new.count(&format!(
                "SELECT count(*) FROM {table} WHERE tenant_id = '{}'",
                org.id
            ));
            assert_eq!(n, 1, "{table}");
        }
        let gated = crate::store::gate::Gated::new(
            &new,
            &org.id,
            &scim_core::tenancy::token::hash(&access.access_token),
            rt.now.get(),
        );
        block_on(gated.open()).expect("the access token opens the new shard's gate");
        let again = block_on(oauth::grant(&new, &rt, &NoKeys, &org.id, &by_secret, hour));
        assert!(again.is_ok(), "the secret buys tokens on the new shard");
        let _ = token;
        let moved = block_on(crate::service::roles::of_tenant(&new, &org.id)).expect("roles");
        assert_eq!(moved.roles, declared);
        assert_eq!(moved.default_role.as_deref(), Some("Reader"));
        assert_eq!(
            moved
                .mappings
                .iter()
                .map(|m| (m.group_id.clone(), m.role.clone()))
                .collect::<Vec<_>>(),
            pairs
        );
        assert_eq!(
            new.count(&format!(
                "SELECT count(*) FROM users WHERE tenant_id = '{}' AND role = 'Writer' AND role_group = '{}'",
                org.id, g.id
            )),
            new.count(&format!(
                "SELECT count(*) FROM memberships WHERE tenant_id = '{}' AND group_id = '{}' AND member_type = 'User'",
                org.id, g.id
            )),
            "every member of the mapped group has its role on the new shard, those added meanwhile too"
        );
        // The new shard's gate opens for the tenant's token.
        assert_eq!(new.count(&format!("SELECT count(*) FROM tenants WHERE id = '{}' AND coalesce(frozen_until, 0) = 0 AND deleted_at IS NULL", org.id)), 1);

        // One tenant's feed: a consumer that kept its cursor continues exactly after it.
        let (rest, _) = org_feed(&all, "m", c1, 40);
        let (whole, _) = org_feed(&all, "m", Cursor::default(), 1000);
        let mut joined = plain(&first);
        joined.extend(plain(&rest));
        assert_eq!(
            joined,
            plain(&whole),
            "the feed across the move: no repeat, no gap"
        );
        assert_eq!(
            whole.iter().filter(|e| e["type"] == "user.created").count() as i64,
            250 + late
        );
        // Everyone's feed likewise, with the other tenant's events among them.
        let (all_rest, _) = all_feed(&all, &rt, a1, 45);
        let mut everyone = plain(&all_first);
        everyone.extend(plain(&all_rest));
        let mut unique = everyone.clone();
        unique.sort_by_key(|v| v.to_string());
        unique.dedup();
        assert_eq!(unique.len(), everyone.len(), "no event twice");
        let mine: Vec<Value> = everyone
            .iter()
            .filter(|e| e[0] == json!(org.id))
            .cloned()
            .collect();
        let expected = plain(&whole);
        let first_difference = mine.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!(
            (mine.len(), first_difference),
            (expected.len(), None),
            "its events once each, in commit order: {:?} vs {:?}",
            first_difference.and_then(|i| mine.get(i).map(|v| (i, v[1].clone(), v[2].clone()))),
            first_difference.and_then(|i| expected.get(i).map(|v| (v[1].clone(), v[2].clone())))
        );
        assert_eq!(everyone.len(), whole.len() + 1);
    }

    #[test]
    fn a_cancelled_move_leaves_the_organisation_where_it_was_and_purges_the_copy() {
        let all = three();
        let rt = TestRuntime::at(1_000);
        let org = block_on(tenants::create(&all, &rt, "c", None, None, Some("DB"))).expect("org");
        let db = all.shard("DB").expect("DB");
        for i in 0..300 {
            block_on(Users::create(
                &scope(&db, &rt, &org.id),
                &json!({"userName": format!("u{i}@c.org")}),
            ))
            .expect("user");
        }
        block_on(moves::start(&all, &rt, "c", "SHARD_2")).expect("start");
        let again = block_on(moves::start(&all, &rt, "c", "SHARD_3"));
        assert_eq!(again.map(|_| ()).map_err(|e| e.status), Err(409));
        rt.step.set(1);
        let m = block_on(moves::drive(&all, &rt, &org.id, 2))
            .expect("drive")
            .expect("move");
        assert_eq!(m.phase, "copy", "{m:?}");
        let cancelled = block_on(moves::cancel(&all, &rt, "c")).expect("cancel");
        assert_eq!(cancelled.phase, "cancelled");
        let at = block_on(shards::locate(&all, "c")).expect("c");
        assert_eq!(at.org.shard, "DB");
        assert_eq!(
            block_on(rows_of(&db, &org.id)).expect("rows"),
            300 + 300 + 1,
            "users, events, its count of users"
        );
        let copy = all.shard("SHARD_2").expect("SHARD_2");
        let report =
            block_on(upkeep::run_all(&all, &rt, Default::default(), 60_000)).expect("upkeep");
        assert!(
            report
                .purges
                .iter()
                .any(|p| p.id == org.id && p.remaining == 0),
            "{report:?}"
        );
        assert_eq!(block_on(rows_of(&copy, &org.id)).expect("rows"), 0);
        assert_eq!(copy.count("SELECT count(*) FROM tenants"), 0);
        // Writes go on where it is; a new move can start.
        block_on(Users::create(
            &scope(&db, &rt, &org.id),
            &json!({"userName": "after@c.org"}),
        ))
        .expect("write");
        block_on(moves::start(&all, &rt, "c", "SHARD_2")).expect("a new move");
    }

    #[test]
    fn a_busy_organisations_catch_up_takes_several_rounds_and_the_switch_takes_the_rest() {
        let all = three();
        let rt = TestRuntime::at(1_000);
        let org =
            block_on(tenants::create(&all, &rt, "busy", None, None, Some("DB"))).expect("org");
        let db = all.shard("DB").expect("DB");
        let mut ids = Vec::new();
        for i in 0..40 {
            let s = scope(&db, &rt, &org.id);
            let u = block_on(Users::create(
                &s,
                &json!({"userName": format!("u{i}@busy.org")}),
            ));
            ids.push(u.expect("user").id);
        }
        block_on(moves::start(&all, &rt, "busy", "SHARD_2")).expect("start");
        // 2,300 changes after the move started: more than two rounds take.
        for n in 0..2_300 {
            let s = scope(&db, &rt, &org.id);
            let patch = json!({"Operations": [{"op": "Replace", "path": "displayName",
                "value": format!("v{n}")}]});
            block_on(Users::patch(&s, &ids[n % ids.len()], &patch, None)).expect("patch");
        }
        let m = block_on(moves::drive(&all, &rt, &org.id, 60_000))
            .expect("drive")
            .expect("move");
        assert_eq!(m.phase, "done", "{m:?}");
        assert!(m.catchup_rounds >= 2, "{m:?}");
        let new = all.shard("SHARD_2").expect("SHARD_2");
        for (i, id) in ids.iter().enumerate() {
            let last = (0..2_300)
                .filter(|n| n % ids.len() == i)
                .max()
                .expect("a change");
            let sql = format!(
                "SELECT count(*) FROM users WHERE tenant_id = '{}' AND id = '{id}' \
                 AND data LIKE '%\"v{last}\"%'",
                org.id
            );
            assert_eq!(new.count(&sql), 1, "{id}: its last change, v{last}");
        }
        let events = format!("SELECT count(*) FROM events WHERE tenant_id = '{}'", org.id);
        assert_eq!(new.count(&events), 40 + 2_300);
        // Its count of users came along right (changed users were taken out and copied again,
        // many times over), and goes on from there; an unfiltered page's totalResults is it.
        let counted = |db: &Sqlite| {
            db.count(&format!(
                "SELECT coalesce(sum(n), 0) FROM resource_counts WHERE tenant_id = '{}' \
                 AND kind = 'users'",
                org.id
            ))
        };
        assert_eq!(counted(&new), 40);
        let s = scope(&new, &rt, &org.id);
        block_on(Users::create(&s, &json!({"userName": "later@busy.org"}))).expect("user");
        block_on(resources::delete(&s, Table::Users, &ids[0], None)).expect("delete");
        block_on(resources::delete(&s, Table::Users, &ids[1], None)).expect("delete");
        assert_eq!(counted(&new), 39);
        let params = scim_core::scim::query::ListParams::default();
        let (total, _) =
            block_on(resources::list(&s, Table::Users, &params, false, None)).expect("page");
        assert_eq!(total, 39);
    }
}

/// An API key bound to listed tenant `sub`, straight into the catalog.
fn key_of(catalog: &Sqlite, sub: &str) {
    block_on(catalog.query(Stmt::new(
        "INSERT INTO api_keys (id, name, hash, hint, scopes, tenant_id, tenant_subdomain, created_at) \
         SELECT 'key_' || subdomain, 'k', 'hash_' || subdomain, 'h', '[]', id, subdomain, 0 \
         FROM catalog WHERE subdomain = ?",
        vec![sub.into()],
    )))
    .expect("key");
}

/// Shards whose next `INSERT INTO tenants` fails as D1 does when it says to retry, after
/// running (`written`: the answer was lost) or not; and, with `sweep` set, whose catalog takes
/// every unfinished listing off (as the sweep does) just before the next claim of one.
#[derive(Clone, Copy)]
struct Flaky<'a> {
    all: &'a TestShards,
    fail: &'a std::cell::Cell<bool>,
    written: bool,
    sweep: Option<&'a std::cell::Cell<bool>>,
}

impl<'a> Flaky<'a> {
    fn new(all: &'a TestShards, fail: &'a std::cell::Cell<bool>, written: bool) -> Self {
        Flaky {
            all,
            fail,
            written,
            sweep: None,
        }
    }
}

struct FlakyDb<'a> {
    db: Sqlite,
    flaky: Flaky<'a>,
}

impl Executor for FlakyDb<'_> {
    async fn query(&self, stmt: Stmt) -> Result<crate::store::Outcome, crate::store::StoreError> {
        let claim = stmt.sql.starts_with("UPDATE catalog SET updated_at");
        if claim && self.flaky.sweep.is_some_and(|s| s.replace(false)) {
            let unmade = "DELETE FROM catalog WHERE made = 0";
            self.db.query(Stmt::new(unmade, vec![])).await?;
        }
        if stmt.sql.starts_with("INSERT INTO tenants ") && self.flaky.fail.replace(false) {
            if self.flaky.written {
                self.db.query(stmt).await?;
            }
            return Err(crate::store::StoreError::Unavailable(
                "D1 DB is overloaded".into(),
            ));
        }
        self.db.query(stmt).await
    }

    async fn batch(
        &self,
        stmts: Vec<Stmt>,
    ) -> Result<Vec<crate::store::Outcome>, crate::store::StoreError> {
        self.db.batch(stmts).await
    }
}

impl<'a> Databases for Flaky<'a> {
    type Db = FlakyDb<'a>;

    fn catalog(&self) -> scim_core::scim::error::Result<FlakyDb<'a>> {
        self.shard(shards::CATALOG)
    }

    fn bindings(&self) -> &[String] {
        self.all.bindings()
    }

    fn shard(&self, binding: &str) -> scim_core::scim::error::Result<FlakyDb<'a>> {
        Ok(FlakyDb {
            db: self.all.shard(binding)?,
            flaky: *self,
        })
    }
}

/// A create whose shard row failed with a 503 is finished by its retry (the same id, one
/// tenant), not refused as taken; a retry that asks for something else is 409; a create whose
/// row was written but whose answer was lost is 409 on retry, and the tenant is there.
#[test]
fn a_create_that_failed_on_its_shard_is_finished_by_its_retry() {
    let all = three();
    let rt = TestRuntime::at(1_000);
    let fail = std::cell::Cell::new(true);
    let flaky = Flaky::new(&all, &fail, false);
    let first = block_on(tenants::create(
        &flaky,
        &rt,
        "r1",
        None,
        None,
        Some("SHARD_2"),
    ));
    assert_eq!(first.map_err(|e| e.status).err(), Some(503));
    let catalog = all.catalog().expect("catalog");
    let shard = all.shard("SHARD_2").expect("shard");
    assert_eq!(
        count(
            &catalog,
            "SELECT count(*) FROM catalog WHERE subdomain = 'r1'"
        ),
        1
    );
    assert_eq!(
        count(
            &shard,
            "SELECT count(*) FROM tenants WHERE subdomain = 'r1'"
        ),
        0
    );
    let other = block_on(tenants::create(&all, &rt, "r1", Some("Else"), None, None));
    assert_eq!(other.map_err(|e| e.status).err(), Some(409));
    let retry = block_on(tenants::create(&all, &rt, "r1", None, None, None)).expect("retry");
    let listed = block_on(shards::locate(&all, "r1")).expect("located").org;
    assert_eq!(
        (retry.id.as_str(), retry.shard.as_str()),
        (listed.id.as_str(), "SHARD_2")
    );
    let row = format!(
        "SELECT count(*) FROM tenants WHERE subdomain = 'r1' AND id = '{}'",
        retry.id
    );
    assert_eq!(count(&shard, &row), 1);
    let again = block_on(tenants::create(&all, &rt, "r1", None, None, None));
    assert_eq!(again.map_err(|e| e.status).err(), Some(409));

    fail.set(true);
    let lost = Flaky::new(&all, &fail, true);
    let first = block_on(tenants::create(
        &lost,
        &rt,
        "r2",
        None,
        None,
        Some("SHARD_3"),
    ));
    assert_eq!(first.map_err(|e| e.status).err(), Some(503));
    let retry = block_on(tenants::create(&all, &rt, "r2", None, None, None));
    assert_eq!(retry.map_err(|e| e.status).err(), Some(409));
    let shard = all.shard("SHARD_3").expect("shard");
    assert_eq!(
        count(
            &shard,
            "SELECT count(*) FROM tenants WHERE subdomain = 'r2'"
        ),
        1
    );
}

/// A create that failed on its shard and was never retried is taken off the list by the
/// sweep once it has been unfinished for `UNFINISHED_AFTER_MS` (not before), its subdomain is
/// free again, and a tenant that was made is never touched. One whose row was written but
/// whose answer was lost is found made, and stays.
#[test]
fn the_sweep_takes_off_a_create_that_never_finished_and_keeps_one_that_did() {
    let all = three();
    let rt = TestRuntime::at(1_000);
    let fail = std::cell::Cell::new(true);
    let flaky = Flaky::new(&all, &fail, false);
    let failed = block_on(tenants::create(
        &flaky,
        &rt,
        "s1",
        None,
        None,
        Some("SHARD_2"),
    ));
    assert_eq!(failed.map_err(|e| e.status).err(), Some(503));
    fail.set(true);
    let lost = Flaky::new(&all, &fail, true);
    let lost = block_on(tenants::create(
        &lost,
        &rt,
        "s2",
        None,
        None,
        Some("SHARD_3"),
    ));
    assert_eq!(lost.map_err(|e| e.status).err(), Some(503));
    block_on(tenants::create(&all, &rt, "s3", None, None, None)).expect("s3");
    let catalog = all.catalog().expect("catalog");
    let made = |sub: &str| {
        let sql = format!("SELECT made FROM catalog WHERE subdomain = '{sub}'");
        block_on(catalog.query(Stmt::new(sql, vec![])))
            .expect("made")
            .rows
            .first()
            .and_then(|r| r.get("made").and_then(serde_json::Value::as_i64))
    };
    assert_eq!(
        (made("s1"), made("s2"), made("s3")),
        (Some(0), Some(0), Some(1))
    );
    for sub in ["s1", "s3"] {
        key_of(&catalog, sub);
    }

    rt.now.set(1_000 + tenants::UNFINISHED_AFTER_MS);
    let early = block_on(tenants::sweep_unfinished(&all, &rt)).expect("sweep");
    assert_eq!(early, tenants::Swept::default());
    assert_eq!(made("s1"), Some(0));

    rt.now.set(1_001 + tenants::UNFINISHED_AFTER_MS);
    let swept = block_on(tenants::sweep_unfinished(&all, &rt)).expect("sweep");
    assert_eq!(
        swept,
        tenants::Swept {
            dropped: 1,
            made: 1
        }
    );
    assert_eq!(
        (made("s1"), made("s2"), made("s3")),
        (None, Some(1), Some(1))
    );
    assert_eq!(
        block_on(shards::locate(&all, "s1"))
            .map(|_| ())
            .map_err(|e| e.status),
        Err(404)
    );
    for sub in ["s2", "s3"] {
        block_on(shards::locate(&all, sub)).expect("still listed");
    }
    // The key bound to the tenant taken off went with it; the made tenant's stays.
    let keys = |sub: &str| {
        let sql = format!("SELECT count(*) FROM api_keys WHERE tenant_subdomain = '{sub}'");
        count(&catalog, &sql)
    };
    assert_eq!((keys("s1"), keys("s3")), (0, 1));
    let again = block_on(tenants::sweep_unfinished(&all, &rt)).expect("sweep");
    assert_eq!(again, tenants::Swept::default());

    // The subdomain is free: another create, even one that asks for something else, makes it.
    let anew = block_on(tenants::create(&all, &rt, "s1", Some("Anew"), None, None)).expect("s1");
    let shard = all.shard(&anew.shard).expect("shard");
    let row = format!(
        "SELECT count(*) FROM tenants WHERE subdomain = 's1' AND id = '{}'",
        anew.id
    );
    assert_eq!(count(&shard, &row), 1);
    assert_eq!(made("s1"), Some(1));
}

/// A retry that claimed an unfinished listing (its `updated_at` moved) is not undone by a
/// sweep that read the listing before the claim; and a retry whose listing the sweep took
/// off just before its claim lists the tenant anew and makes it.
#[test]
fn a_retry_and_the_sweep_do_not_undo_each_other() {
    let all = three();
    let rt = TestRuntime::at(1_000);
    let fail = std::cell::Cell::new(true);
    let flaky = Flaky::new(&all, &fail, false);
    for sub in ["c1", "c2"] {
        fail.set(true);
        let failed = block_on(tenants::create(
            &flaky,
            &rt,
            sub,
            None,
            None,
            Some("SHARD_2"),
        ));
        assert_eq!(failed.map_err(|e| e.status).err(), Some(503));
    }
    rt.now.set(1_001 + tenants::UNFINISHED_AFTER_MS);
    let catalog = all.catalog().expect("catalog");
    let read = block_on(catalog::unmade(&catalog, rt.now(), 10)).expect("unmade");
    assert_eq!(read.len(), 2);
    let c1 = read.iter().find(|o| o.subdomain == "c1").expect("c1");
    key_of(&catalog, "c1");
    assert!(block_on(catalog::claim_unmade(&catalog, &c1.id, rt.now())).expect("claim"));
    assert!(!block_on(catalog::remove_unmade(&catalog, c1)).expect("drop"));
    block_on(shards::locate(&all, "c1")).expect("still listed");
    let sql = "SELECT count(*) FROM api_keys WHERE tenant_subdomain = 'c1'";
    assert_eq!(
        count(&catalog, sql),
        1,
        "a removal that removed nothing took its key"
    );

    // c2: the sweep takes its listing off between the retry's look and its claim.
    let sweep = std::cell::Cell::new(true);
    let racing = Flaky {
        sweep: Some(&sweep),
        ..Flaky::new(&all, &fail, false)
    };
    let retry = block_on(tenants::create(&racing, &rt, "c2", None, None, None)).expect("c2");
    assert!(!sweep.get(), "the sweep ran before the claim");
    assert_ne!(
        Some(&retry.id),
        read.iter().find(|o| o.subdomain == "c2").map(|o| &o.id)
    );
    let listed = block_on(shards::locate(&all, "c2"))
        .expect("listed anew")
        .org;
    assert_eq!(listed.id, retry.id);
    let shard = all.shard(&retry.shard).expect("shard");
    let row = format!("SELECT count(*) FROM tenants WHERE id = '{}'", retry.id);
    assert_eq!(count(&shard, &row), 1);
}
