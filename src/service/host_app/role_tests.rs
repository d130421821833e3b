//! Roles from groups, as a property on SQLite: after every step of a random mix of role
//! attributes, membership changes (nested groups, cycles included), group deletions, mappings,
//! defaults and declarations, every user's effective role in the directory is what the rule
//! says (computed here, in Rust, from the rows), the feed's last event of each user shows the
//! same, and each user the step re-roled has exactly one event for it.

use pollster::block_on;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::service::roles;
use crate::service::testing::{TestRuntime, TestShards};
use crate::service::{tenants, Runtime};
use crate::store::directory::{self, UserQuery};
use crate::store::memberships::{Member, MemberChange};
use crate::store::resources;
use crate::store::sqlite::Sqlite;
use crate::store::table::Table;
use crate::store::trail::{Event, EventType, Trail};
use crate::store::{groups, users, Executor, Stmt};
use scim_core::scim::resource::{from_request, RefType};
use scim_core::scim::schema::{GROUP_TYPE, USER_TYPE};

/// A small deterministic generator (xorshift64*), so a failure replays from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

const USERS: usize = 6;
const GROUPS: usize = 4;
const NAMES: [&str; 5] = ["Admin", "Writer", "Reader", "Guest", "Bogus"];

fn rows(db: &Sqlite, sql: &str, params: Vec<crate::store::Param>) -> Vec<Value> {
    block_on(db.query(Stmt::new(sql.to_string(), params)))
        .expect("query")
        .rows
}

/// What the rule says user `id`'s role is: (role, source, group), from the rows.
fn expected(db: &Sqlite, tenant: &str, id: &str) -> (Value, Value) {
    let t = &rows(
        db,
        "SELECT roles, default_role FROM tenants WHERE id = ?",
        vec![tenant.into()],
    )[0];
    let declared: Vec<String> =
        serde_json::from_str(t["roles"].as_str().expect("roles")).expect("json");
    let primary = rows(
        db,
        "SELECT value FROM user_values WHERE tenant_id = ? AND user_id = ? AND attr = 'roles' AND is_primary = 1",
        vec![tenant.into(), id.into()],
    );
    if let Some(p) = primary.first().and_then(|r| r["value"].as_str()) {
        if declared.is_empty() || declared.iter().any(|d| d == p) {
            return (json!(p), json!({"type": "attribute"}));
        }
    }
    // The groups the user is in, nested.
    let edges = rows(
        db,
        "SELECT group_id, member_id FROM memberships WHERE tenant_id = ?",
        vec![tenant.into()],
    );
    let mut parents: HashMap<String, Vec<String>> = HashMap::new();
    for e in &edges {
        let (g, m) = (
            e["group_id"].as_str().expect("g"),
            e["member_id"].as_str().expect("m"),
        );
        parents
            .entry(m.to_string())
            .or_default()
            .push(g.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![id.to_string()];
    while let Some(x) = todo.pop() {
        for p in parents.get(&x).into_iter().flatten() {
            if seen.insert(p.clone()) {
                todo.push(p.clone());
            }
        }
    }
    let maps = rows(
        db,
        "SELECT group_id, role FROM role_mappings WHERE tenant_id = ?",
        vec![tenant.into()],
    );
    let best = maps
        .iter()
        .filter_map(|m| {
            let (g, r) = (m["group_id"].as_str()?, m["role"].as_str()?);
            let rank = declared.iter().position(|d| d == r)?;
            seen.contains(g)
                .then(|| (rank, g.to_string(), r.to_string()))
        })
        .min();
    if let Some((_, g, r)) = best {
        return (json!(r), json!({"type": "group", "groupId": g}));
    }
    match t["default_role"].as_str() {
        Some(d) if declared.iter().any(|x| x == d) => (json!(d), json!({"type": "default"})),
        _ => (Value::Null, Value::Null),
    }
}

fn directory(db: &Sqlite, tenant: &str) -> BTreeMap<String, (Value, Value)> {
    let q = UserQuery {
        active: None,
        user_name: None,
        after: None,
        limit: 100,
    };
    let page = block_on(directory::users(db, tenant, &q)).expect("users");
    page.items
        .iter()
        .map(|u| {
            let id = u["id"].as_str().expect("id").to_string();
            (id, (u["role"].clone(), u["roleSource"].clone()))
        })
        .collect()
}

/// Each user's events after seq `after`: (seq, role, roleSource, names `role` among changed).
fn events_after(db: &Sqlite, tenant: &str, after: i64) -> Vec<(i64, String, Value, Value, bool)> {
    rows(
        db,
        "SELECT seq, resource_id, data FROM events WHERE tenant_id = ? AND seq > ? AND type LIKE 'user.%' ORDER BY seq",
        vec![tenant.into(), after.into()],
    )
    .iter()
    .map(|r| {
        let data: Value = serde_json::from_str(r["data"].as_str().expect("data")).expect("json");
        let names_role = data["changed"].as_array().is_some_and(|c| c.contains(&json!("role")));
        (
            r["seq"].as_i64().expect("seq"),
            r["resource_id"].as_str().expect("id").to_string(),
            data["user"]["role"].clone(),
            data["user"]["roleSource"].clone(),
            names_role,
        )
    })
    .collect()
}

fn last_seq(db: &Sqlite) -> i64 {
    rows(db, "SELECT coalesce(max(seq), 0) AS s FROM events", vec![])[0]["s"]
        .as_i64()
        .expect("seq")
}

fn user_data(name: &str, role: Option<&str>) -> serde_json::Map<String, Value> {
    let mut body = json!({"userName": name});
    if let Some(r) = role {
        body["roles"] = json!([{"value": r, "primary": true}]);
    }
    from_request(&USER_TYPE, &body).expect("user")
}

fn updated(changed: &[&str]) -> Trail<'static> {
    Trail {
        events: vec![Event {
            kind: EventType::UserUpdated,
            changed: changed.iter().map(|c| c.to_string()).collect(),
        }],
        log: None,
    }
}

struct World {
    all: TestShards,
    rt: TestRuntime,
    tenant: String,
    groups: Vec<Option<String>>,
    made: usize,
}

impl World {
    fn db(&self) -> Sqlite {
        use crate::service::shards::Databases;
        self.all.shard("DB").expect("db")
    }

    fn group(&mut self, i: usize) -> String {
        if let Some(g) = &self.groups[i] {
            return g.clone();
        }
        self.made += 1;
        let id = format!("g{i}_{}", self.made);
        let data = from_request(&GROUP_TYPE, &json!({"displayName": id})).expect("group");
        let t = Trail::single(EventType::GroupCreated, None);
        block_on(groups::insert(
            &self.db(),
            &self.tenant,
            &id,
            &data,
            vec![],
            1,
            "w_g",
            &t,
        ))
        .expect("group");
        self.groups[i] = Some(id.clone());
        id
    }

    fn member(&mut self, rng: &mut Rng) -> Member {
        if rng.below(3) == 0 {
            let id = self.group(rng.below(GROUPS));
            Member {
                id,
                kind: RefType::Group,
                display: None,
            }
        } else {
            Member {
                id: format!("u{}", rng.below(USERS)),
                kind: RefType::User,
                display: None,
            }
        }
    }

    fn step(&mut self, rng: &mut Rng, n: usize) {
        let db = self.db();
        let tag = format!("w_{n}");
        match rng.below(9) {
            0 | 1 => {
                let id = format!("u{}", rng.below(USERS));
                let current = block_on(resources::get(&db, Table::Users, &self.tenant, &id, false))
                    .expect("get")
                    .expect("user");
                let role = [None, Some(NAMES[rng.below(NAMES.len())])][rng.below(2)];
                let data = user_data(&id, role);
                block_on(users::update(
                    &db,
                    &self.tenant,
                    &current,
                    &data,
                    2,
                    &tag,
                    &updated(&["roles"]),
                ))
                .expect("update");
            }
            2..=4 => {
                let g = self.group(rng.below(GROUPS));
                let change = match rng.below(4) {
                    0 | 1 => MemberChange::Add(vec![self.member(rng), self.member(rng)]),
                    2 => MemberChange::Remove(vec![self.member(rng).id]),
                    _ => MemberChange::Set(vec![self.member(rng)]),
                };
                let t = Trail::single(EventType::GroupUpdated, None);
                block_on(groups::write(
                    &db,
                    &self.tenant,
                    &g,
                    None,
                    None,
                    &[change],
                    3,
                    &tag,
                    &t,
                ))
                .expect("write");
            }
            5 => {
                let i = rng.below(GROUPS);
                if let Some(g) = self.groups[i].take() {
                    let t = Trail::single(EventType::GroupDeleted, None);
                    block_on(resources::delete(
                        &db,
                        Table::Groups,
                        &self.tenant,
                        &g,
                        None,
                        4,
                        &t,
                    ))
                    .expect("delete");
                }
            }
            6 => {
                let declared = roles::of_tenant(&db, &self.tenant).expect_ok().roles;
                let mut pairs = Vec::new();
                for i in 0..GROUPS {
                    if rng.below(2) == 0 && !declared.is_empty() {
                        let g = self.group(i);
                        pairs.push((g, declared[rng.below(declared.len())].clone()));
                    }
                }
                block_on(roles::set_mappings(&db, &self.rt, &self.tenant, &pairs))
                    .expect("mappings");
            }
            7 => {
                let declared = roles::of_tenant(&db, &self.tenant).expect_ok().roles;
                let role = (rng.below(3) > 0 && !declared.is_empty())
                    .then(|| declared[rng.below(declared.len())].clone());
                block_on(roles::set_default(
                    &db,
                    &self.rt,
                    &self.tenant,
                    role.as_deref(),
                ))
                .expect("default");
            }
            _ => {
                let mut names: Vec<String> = NAMES[..4].iter().map(|s| s.to_string()).collect();
                names.retain(|_| rng.below(4) > 0);
                for i in (1..names.len()).rev() {
                    names.swap(i, rng.below(i + 1));
                }
                block_on(roles::declare(&self.all, &self.rt, &names, 10_000)).expect("declare");
            }
        }
    }
}

trait ExpectOk<T> {
    fn expect_ok(self) -> T;
}

impl<T, F: std::future::Future<Output = scim_core::scim::error::Result<T>>> ExpectOk<T> for F {
    fn expect_ok(self) -> T {
        block_on(self).expect("ok")
    }
}

#[test]
fn the_directory_and_the_feed_agree_on_every_role_after_any_mix_of_causes() {
    for seed in 1..=12u64 {
        let all = TestShards::new(Sqlite::migrated(), 0);
        let rt = TestRuntime::at(1_000);
        let declared: Vec<String> = ["Admin", "Writer", "Reader"].map(String::from).to_vec();
        block_on(roles::declare(&all, &rt, &declared, 10_000)).expect("declare");
        let org = block_on(tenants::create(&all, &rt, "acme", None, None, None)).expect("tenant");
        let mut w = World {
            all,
            rt,
            tenant: org.id.clone(),
            groups: vec![None; GROUPS],
            made: 0,
        };
        let db = w.db();
        for u in 0..USERS {
            let t = Trail::single(EventType::UserCreated, None);
            let role = (u % 3 == 0).then_some(NAMES[u % NAMES.len()]);
            block_on(users::insert(
                &db,
                &w.tenant,
                &format!("u{u}"),
                &user_data(&format!("u{u}"), role),
                1,
                &w.rt.random_id("w_").expect("id"),
                &t,
            ))
            .expect("user");
        }
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        for n in 0..120 {
            let before = directory(&db, &w.tenant);
            let seq = last_seq(&db);
            w.step(&mut rng, n);
            let after = directory(&db, &w.tenant);
            let events = events_after(&db, &w.tenant, seq);
            for (id, now) in &after {
                let want = expected(&db, &w.tenant, id);
                assert_eq!(now, &want, "seed {seed} step {n}: {id}");
                // The feed's last event of this user shows what the directory shows.
                let last = rows(
                    &db,
                    "SELECT data FROM events WHERE tenant_id = ? AND resource_id = ? ORDER BY seq DESC LIMIT 1",
                    vec![w.tenant.as_str().into(), id.as_str().into()],
                );
                let data: Value =
                    serde_json::from_str(last[0]["data"].as_str().expect("data")).expect("json");
                assert_eq!(
                    (&data["user"]["role"], &data["user"]["roleSource"]),
                    (&now.0, &now.1),
                    "seed {seed} step {n}: {id}"
                );
                // Re-roled: exactly one event says so; otherwise none does.
                let said = events.iter().filter(|e| &e.1 == id && e.4).count();
                let changed = before.get(id) != Some(now);
                assert_eq!(
                    said,
                    usize::from(changed),
                    "seed {seed} step {n}: {id} {:?} -> {now:?}",
                    before.get(id)
                );
                for e in events.iter().filter(|e| &e.1 == id && e.4) {
                    assert_eq!((&e.2, &e.3), (&now.0, &now.1));
                }
            }
            let pending = rows(&db, "SELECT count(*) AS n FROM role_pending", vec![]);
            assert_eq!(pending[0]["n"], 0, "notes are cleared in their batch");
        }
    }
}

/// A mapping that re-roles the 100,000 members of a group (nested one level): one batch of a
/// few statements, each within D1's 100 bound parameters, and each member's event exactly once;
/// then removing the inner group from the outer re-roles them all back, once each again.
#[test]
fn a_group_of_100000_is_re_roled_in_one_batch_with_one_event_each() {
    const N: i64 = 100_000;
    let all = TestShards::new(Sqlite::migrated(), 0);
    let rt = TestRuntime::at(1_000);
    let declared: Vec<String> = ["Admin", "Writer"].map(String::from).to_vec();
    block_on(roles::declare(&all, &rt, &declared, 10_000)).expect("declare");
    let org = block_on(tenants::create(&all, &rt, "big", None, None, None)).expect("tenant");
    let db = {
        use crate::service::shards::Databases;
        all.shard("DB").expect("db")
    };
    let t = org.id.as_str();
    let run = |sql: &str| {
        block_on(db.query(Stmt::new(sql.to_string(), vec![t.into()]))).expect(sql);
    };
    // Rows straight in SQL: 100,000 users in `inner`, `inner` in `outer`.
    run(&format!(
        "INSERT INTO users (tenant_id, id, user_name, user_name_key, active, data, version, write_id, created_at, updated_at) \
         WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < {N}) \
         SELECT ?1, 'u' || value, 'u' || value, 'u' || value, 1, '{{}}', 1, 'w', 0, 0 FROM n"
    ));
    for g in ["inner", "outer"] {
        run(&format!(
            "INSERT INTO groups (tenant_id, id, display_name, display_name_key, data, version, write_id, created_at, updated_at) \
             VALUES (?1, '{g}', '{g}', '{g}', '{{}}', 1, 'w', 0, 0)"
        ));
    }
    run(&format!(
        "INSERT INTO memberships (tenant_id, group_id, member_id, member_type) \
         WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < {N}) \
         SELECT ?1, 'inner', 'u' || value, 'User' FROM n"
    ));
    run("INSERT INTO memberships (tenant_id, group_id, member_id, member_type) VALUES (?1, 'outer', 'inner', 'Group')");
    let events = |kind: &str| {
        rows(
            &db,
            &format!(
                "SELECT count(*) AS n, count(DISTINCT resource_id) AS d FROM events WHERE tenant_id = ? AND type = 'user.updated' AND data ->> '$.user.role' IS {kind}"
            ),
            vec![t.into()],
        )[0]
        .clone()
    };
    let started = std::time::Instant::now();
    let pairs = vec![("outer".to_string(), "Writer".to_string())];
    block_on(roles::set_mappings(&db, &rt, t, &pairs)).expect("mapped");
    let mapped = started.elapsed();
    assert_eq!(
        events("'Writer'"),
        json!({"n": N, "d": N}),
        "one event per member"
    );
    let writers = rows(&db, "SELECT count(*) AS n FROM users WHERE tenant_id = ? AND role = 'Writer' AND role_group = 'outer'", vec![t.into()]);
    assert_eq!(writers[0]["n"], N);
    // The inner group leaves the outer one: everybody loses the role, one event each.
    let tag = "w_out";
    let change = [MemberChange::Remove(vec!["inner".to_string()])];
    let trail = Trail::single(EventType::GroupUpdated, None);
    let started = std::time::Instant::now();
    block_on(groups::write(
        &db, t, "outer", None, None, &change, 2_000, tag, &trail,
    ))
    .expect("removed");
    let removed = started.elapsed();
    assert_eq!(
        events("NULL"),
        json!({"n": N, "d": N}),
        "one event per member, again"
    );
    println!("re-roled {N} members: by a mapping in {mapped:?}, by a member removed in {removed:?} (SQLite on this machine)");
}
