//! Databases and queries for host tests (unit tests, the fuzzer): two tenants, a small
//! directory of users and groups, a first page, and the check that a filter is an index seek.
//! Compiled only for tests and with the `host-sqlite` feature.
#![allow(clippy::expect_used, clippy::panic)] // test support: a broken fixture ends the test

use pollster::block_on;
use serde_json::{json, Value};

use super::listing::ListQuery;
use super::memberships::Member;
use super::sqlite::Sqlite;
use super::table::Table;
use super::tenants::{create_tenant, NewTenant};
use super::trail::Trail;
use super::{groups, users, Executor, Outcome, Stmt, StoreError};
use scim_core::scim::filter::{self, Filter};
use scim_core::scim::resource::{from_request, RefType};
use scim_core::scim::schema::USER_TYPE;

/// The tenant most tests act for (subdomain `a`); the other is `ten_b` (`b`).
pub const T: &str = "ten_a";

/// A migrated database with tenants `a` (id [`T`]) and `b` (id `ten_b`).
pub fn two_tenants() -> Sqlite {
    let db = Sqlite::migrated();
    for (id, sub) in [(T, "a"), ("ten_b", "b")] {
        block_on(super::catalog::insert(
            &db,
            &super::catalog::Entry {
                id: id.into(),
                subdomain: sub.into(),
                name: sub.into(),
                provisioning_enabled: true,
                shard: "DB".into(),
                created_at: 0,
                updated_at: 0,
                moving: None,
            },
        ))
        .expect("listed");
        block_on(create_tenant(
            &db,
            NewTenant {
                id,
                subdomain: sub,
                name: sub,
                provisioning_enabled: true,
                now: 0,
            },
        ))
        .expect("tenant");
    }
    db
}

/// [`two_tenants`] with users u1..u5 and groups g1 and g2 in `a`, and one user in `b`. g1
/// is named and filled as `before` says (`{"displayName", "members": [ids]}`), g2 is
/// "Marketing" with no members.
pub fn seeded(before: &Value) -> Sqlite {
    let db = two_tenants();
    let user = |tenant: &str, id: &str, name: &str, at: i64| {
        let data = from_request(&USER_TYPE, &json!({ "userName": name })).expect("user");
        block_on(users::insert(
            &db,
            tenant,
            id,
            &data,
            at,
            "w",
            &Trail::default(),
        ))
        .expect("insert user");
    };
    for i in 1..=5 {
        user(T, &format!("u{i}"), &format!("user{i}@x.org"), i);
    }
    user("ten_b", "other-tenant-user", "b@x.org", 1);
    let members: Vec<Member> = before["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| Member {
            id: s.to_string(),
            kind: RefType::User,
            display: Some(format!("{s} display")),
        })
        .collect();
    let name = before["displayName"].as_str().unwrap_or("Sales");
    for (id, name, members, at) in [("g1", name, members, 10), ("g2", "Marketing", vec![], 11)] {
        let data = json!({ "displayName": name });
        let data = data.as_object().expect("object");
        block_on(groups::insert(
            &db,
            T,
            id,
            data,
            members,
            at,
            "w",
            &Trail::default(),
        ))
        .expect("insert group");
    }
    db
}

/// The first page of up to 100 resources, in the stable order.
pub fn first_page(filter: Option<&Filter>) -> ListQuery<'_> {
    ListQuery {
        filter,
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 100,
        after: None,
    }
}

/// Each filter is answered by an index seek through the named index, not by a walk of the
/// tenant's users or groups: the count and the page statements planned exactly as a
/// first page runs them, with their ORDER BY and LIMIT (printing the plans). The ORDER BY is
/// what once led SQLite to walk `*_by_created` for the whole tenant instead of seeking.
pub fn assert_index_seeks(db: &Sqlite, table: Table, cases: &[(&str, &str)]) {
    let rt = table.resource_type();
    let t = table.alias();
    // `SEARCH u USING [COVERING] INDEX users_by_created (tenant_id=?)`: every user, in order.
    let walk = format!("{}_by_created (tenant_id=?)", table.name());
    for (text, must_use) in cases {
        let f = filter::parse(text, rt).expect("parse");
        // Without references (the count and the page), and with them (their first page in
        // the same batch, for the page's ids).
        let r = Recorder::new(db);
        for with_refs in [false, true] {
            let q = first_page(Some(&f));
            block_on(super::resources::list(&r, table, T, &q, with_refs)).expect("list");
        }
        let seen = r.seen.take();
        assert!(
            seen.len() >= 5,
            "{text}: count and page, then with references"
        );
        for stmt in &seen {
            let plan = db.plan(&stmt.sql, &stmt.params);
            // Only the statements that read the table itself (not its references).
            if !plan.contains(&format!(" {t} ")) && !plan.ends_with(&format!(" {t}")) {
                continue;
            }
            assert!(
                plan.contains(must_use),
                "{text}: plan does not use {must_use}:\n{}\n{plan}",
                stmt.sql
            );
            assert!(
                !plan.contains(&format!("SCAN {t}"))
                    && !plan.contains(&walk)
                    && !plan.contains("SCAN m "),
                "{text}: walks the organisation:\n{}\n{plan}",
                stmt.sql
            );
            println!("{text}\n{plan}");
        }
    }
}

/// Runs statements on SQLite and keeps them, to plan them exactly as they ran.
pub struct Recorder<'a> {
    db: &'a Sqlite,
    pub seen: std::cell::RefCell<Vec<Stmt>>,
}

impl<'a> Recorder<'a> {
    pub fn new(db: &'a Sqlite) -> Recorder<'a> {
        Recorder {
            db,
            seen: Default::default(),
        }
    }
}

impl Executor for Recorder<'_> {
    async fn query(&self, stmt: Stmt) -> Result<Outcome, StoreError> {
        self.seen.borrow_mut().push(stmt.clone());
        self.db.query(stmt).await
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, StoreError> {
        self.seen.borrow_mut().extend(stmts.iter().cloned());
        self.db.batch(stmts).await
    }
}

/// The ids of every resource a filter finds (checking that `totalResults` agrees).
pub fn ids(db: &Sqlite, table: Table, text: &str) -> Vec<String> {
    let f = filter::parse(text, table.resource_type())
        .unwrap_or_else(|e| panic!("{text}: {}", e.detail));
    let (total, found) = block_on(super::resources::list(
        db,
        table,
        T,
        &first_page(Some(&f)),
        false,
    ))
    .unwrap_or_else(|e| panic!("{text}: {e:?}"));
    assert_eq!(
        usize::try_from(total).ok(),
        Some(found.len()),
        "{text}: totalResults agrees with the page"
    );
    found.into_iter().map(|r| r.id).collect()
}

/// A group's attributes and its sorted member ids, as the group fixtures state them.
pub fn group_state(db: &Sqlite, id: &str) -> Value {
    let g = block_on(super::resources::get(db, Table::Groups, T, id, true))
        .expect("get")
        .expect("exists");
    let mut members: Vec<String> = g
        .refs
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.id)
        .collect();
    members.sort();
    let mut state = g.data;
    state.insert("members".into(), json!(members));
    Value::Object(state)
}
