//! The request logic on SQLite, as the Worker runs it on D1: every request fixture through the
//! real service, the retry after a lost race, `If-Match`, `If-None-Match`, 404 against 412, and
//! authentication by the gate.

use pollster::block_on;
use serde_json::{json, Value};
use std::cell::Cell;
use std::path::Path;

use super::auth::{self, Verdict};
use super::groups::Groups;
use super::resources::{self, Fetched, Kind};
use super::testing::TestRuntime;
use super::users::Users;
use super::{tenants, Scope};
use crate::store::fixture::{group_state, seeded, two_tenants, T};
use crate::store::gate::Gated;
use crate::store::sqlite::Sqlite;
use crate::store::table::Table;
use crate::store::trail::Trail;
use crate::store::{self, Executor, Outcome, Stmt, StoreError};
use scim_core::scim::error::Error;

fn scope<'a, E>(db: &'a E, rt: &'a TestRuntime) -> Scope<'a, E, TestRuntime> {
    Scope {
        db,
        rt,
        tenant_id: T,
        log: None,
    }
}

fn read_fixture(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

/// Every fixture file of a source folder whose operation starts (or not) with `group`.
fn fixtures(groups: bool) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    for source in ["entra", "okta", "rfc7644"] {
        let Ok(dir) = std::fs::read_dir(root.join(source)) else {
            continue;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            let is_group = read_fixture(&path)["operation"]
                .as_str()
                .is_some_and(|o| o.starts_with("group_"));
            if is_group == groups {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The outcome a fixture expects: its `error` (status and scimType) or success.
fn check_outcome<T>(f: &Value, result: &Result<T, Error>) -> Result<(), String> {
    match (result, f.get("error")) {
        (Err(e), Some(err)) => {
            let ok = u64::from(e.status) == err["status"].as_u64().unwrap_or(0)
                && e.scim_type.map(|t| t.as_str()) == err["scimType"].as_str();
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "expected error {err}, got {} {:?}: {}",
                    e.status, e.scim_type, e.detail
                ))
            }
        }
        (Err(e), None) => Err(format!(
            "unexpected error {} {:?}: {}",
            e.status, e.scim_type, e.detail
        )),
        (Ok(_), Some(err)) => Err(format!("expected error {err}, but it succeeded")),
        (Ok(_), None) => Ok(()),
    }
}

/// A user fixture: `create` through `POST`, `patch` through `PATCH` on the `before` resource.
/// The stored resource must be `expect` (after an error: `before`, unchanged).
fn replay_user(path: &Path) -> Result<(), String> {
    let f = read_fixture(path);
    let db = two_tenants();
    let rt = TestRuntime::at(10);
    let s = scope(&db, &rt);
    let (result, id) = match f["operation"].as_str() {
        Some("create") => {
            let r = block_on(Users::create(&s, &f["request"]));
            let id = r.as_ref().map(|u| u.id.clone()).unwrap_or_default();
            (r.map(|_| ()), id)
        }
        Some("patch") => {
            let before = f["before"].as_object().cloned().ok_or("no 'before'")?;
            block_on(store::users::insert(
                &db,
                T,
                "u1",
                &before,
                1,
                "w0",
                &Trail::default(),
            ))
            .map_err(|e| e.detail())?;
            let r = block_on(Users::patch(&s, "u1", &f["request"], None));
            (r.map(|_| ()), "u1".to_string())
        }
        other => return Err(format!("unknown operation {other:?}")),
    };
    check_outcome(&f, &result)?;
    let stored = block_on(store::resources::get(&db, Table::Users, T, &id, false))
        .map_err(|e| e.detail())?;
    let want = match (f.get("error"), stored) {
        (Some(_), None) => return Ok(()),
        (Some(_), Some(u)) => (Value::Object(u.data), f["before"].clone()),
        (None, Some(u)) => (Value::Object(u.data), f["expect"].clone()),
        (None, None) => return Err("the user is not stored".into()),
    };
    if want.0 == want.1 {
        Ok(())
    } else {
        Err(format!("expected {}\n   stored   {}", want.1, want.0))
    }
}

#[test]
fn user_fixtures_through_the_service_store_their_resource() {
    let files = fixtures(false);
    assert!(files.len() >= 50, "only {} user fixtures", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|p| {
            replay_user(p)
                .err()
                .map(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn replay_group(path: &Path) -> Result<(), String> {
    let f = read_fixture(path);
    let before = f
        .get("before")
        .cloned()
        .unwrap_or(json!({"displayName": "Sales", "members": []}));
    let db = seeded(&before);
    let rt = TestRuntime::at(20);
    let s = scope(&db, &rt);
    let (result, id) = match f["operation"].as_str() {
        Some("group_create") => {
            let r = block_on(Groups::create(&s, &f["request"]));
            let id = r.as_ref().map(|g| g.id.clone()).unwrap_or_default();
            (r.map(|_| ()), id)
        }
        Some("group_patch") => (
            block_on(Groups::patch(&s, "g1", &f["request"], None)).map(|_| ()),
            "g1".to_string(),
        ),
        other => return Err(format!("unknown operation {other:?}")),
    };
    check_outcome(&f, &result)?;
    if id.is_empty() {
        return Ok(());
    }
    let got = group_state(&db, &id);
    if got == f["expect"] {
        Ok(())
    } else {
        Err(format!("expected {}\n   got      {got}", f["expect"]))
    }
}

#[test]
fn group_fixtures_through_the_service_leave_the_expected_membership() {
    let files = fixtures(true);
    assert!(files.len() >= 20, "only {} group fixtures", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|p| {
            replay_group(p)
                .err()
                .map(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An executor that lets another writer win the first conditional write: just before the
/// first batch that starts with an `UPDATE`, it bumps that row's version itself.
struct LosesFirstRace<'a> {
    db: &'a Sqlite,
    table: &'static str,
    armed: Cell<bool>,
}

impl Executor for LosesFirstRace<'_> {
    async fn query(&self, stmt: Stmt) -> Result<Outcome, StoreError> {
        self.db.query(stmt).await
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, StoreError> {
        if self.armed.get() && stmts.first().is_some_and(|s| s.sql.starts_with("UPDATE")) {
            self.armed.set(false);
            self.db
                .query(Stmt::new(
                    format!("UPDATE {} SET version = version + 1", self.table),
                    vec![],
                ))
                .await?;
        }
        self.db.batch(stmts).await
    }
}

#[test]
fn a_write_that_loses_the_race_is_retried_and_nothing_is_lost() {
    let db = seeded(&json!({"displayName": "Sales", "members": ["u1"]}));
    let rt = TestRuntime::at(30);
    for table in ["users", "groups"] {
        let racing = LosesFirstRace {
            db: &db,
            table,
            armed: Cell::new(true),
        };
        let s = scope(&racing, &rt);
        let rename =
            json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Renamed"}]});
        if table == "users" {
            // With a removal, not only leaves set: read first, then the conditional write.
            let rename = json!({"Operations": [
                {"op": "replace", "path": "displayName", "value": "Renamed"},
                {"op": "remove", "path": "title"}]});
            let u = block_on(Users::patch(&s, "u2", &rename, None))
                .expect("patch")
                .expect("a user PATCH answers with the user");
            assert_eq!(
                (u.data["displayName"].clone(), u.version),
                (json!("Renamed"), 3)
            );
            // With If-Match the client asked for the version it saw: a lost race is 412.
            racing.armed.set(true);
            let e = block_on(Users::patch(&s, "u3", &rename, Some("W/\"1\""))).expect_err("412");
            assert_eq!(e.status, 412);
        } else {
            block_on(Groups::patch(&s, "g1", &rename, None)).expect("patch");
            let g = block_on(store::resources::get(&db, Table::Groups, T, "g1", true))
                .expect("get")
                .expect("g1");
            assert_eq!(
                (g.data["displayName"].clone(), g.version),
                (json!("Renamed"), 3)
            );
            assert_eq!(g.refs.map(|m| m.len()), Some(1), "members untouched");
        }
    }
    assert_eq!(rt.pauses.get(), 2, "one pause before each retry");
}

#[test]
fn preconditions_and_not_found() {
    let db = seeded(&json!({"displayName": "Sales", "members": []}));
    let rt = TestRuntime::at(40);
    let s = scope(&db, &rt);
    let replace = json!({"Operations": [{"op": "replace", "path": "displayName", "value": "X"}]});
    // If-None-Match: 304 at the current version, the resource otherwise.
    assert_eq!(
        block_on(resources::get(
            &s,
            Table::Users,
            "u1",
            true,
            Some("W/\"1\"")
        ))
        .expect("get"),
        Fetched::NotModified(1)
    );
    assert!(matches!(
        block_on(resources::get(
            &s,
            Table::Users,
            "u1",
            true,
            Some("W/\"9\"")
        ))
        .expect("get"),
        Fetched::Found(_)
    ));
    assert!(matches!(
        block_on(resources::get(&s, Table::Groups, "g1", false, Some("*"))).expect("get"),
        Fetched::NotModified(1)
    ));
    // If-Match: another version is 412 and changes nothing; the current one writes.
    let e = block_on(Users::patch(&s, "u1", &replace, Some("W/\"2\""))).expect_err("412");
    assert_eq!(e.status, 412);
    let u = block_on(Users::patch(&s, "u1", &replace, Some("W/\"1\"")))
        .expect("patch")
        .expect("a user PATCH answers with the user");
    assert_eq!(u.version, 2);
    let e = block_on(Groups::patch(&s, "g1", &replace, Some("W/\"7\""))).expect_err("412");
    assert_eq!(e.status, 412);
    // Deletes: 412 at another version, 204 at this one, then 404; `*` matches any version.
    for (id, is_user) in [("u1", true), ("g1", false)] {
        let delete = |if_match| {
            if is_user {
                block_on(resources::delete(&s, Table::Users, id, if_match))
            } else {
                block_on(resources::delete(&s, Table::Groups, id, if_match))
            }
        };
        assert_eq!(delete(Some("W/\"99\"")).map_err(|e| e.status), Err(412));
        delete(Some("*")).expect("deleted");
        assert_eq!(delete(None).map_err(|e| e.status), Err(404));
        assert_eq!(delete(Some("W/\"1\"")).map_err(|e| e.status), Err(404));
    }
    // A missing group is 404 before its members are judged; a missing user likewise. An
    // unknown member of an existing group is skipped.
    let bad_members =
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "nope"}]}]});
    assert_eq!(
        block_on(Groups::patch(&s, "g1", &bad_members, None)).map_err(|e| e.status),
        Err(404)
    );
    assert_eq!(
        block_on(Groups::patch(&s, "g2", &bad_members, None)).map_err(|e| e.status),
        Ok(None)
    );
    assert_eq!(
        block_on(Users::patch(&s, "u1", &replace, None)).map_err(|e| e.status),
        Err(404)
    );
}

#[test]
fn the_gate_opens_for_the_organisations_token_and_the_verdict_says_why_not() {
    let db = two_tenants();
    let rt = TestRuntime::at(50);
    let created = block_on(tenants::create_token(&db, &rt, "a", false)).expect("token");
    let bearer = format!("Bearer {}", created.token.plaintext);
    let hash = auth::presented(Some(&bearer)).expect("a bearer token");
    assert_eq!(
        block_on(super::host_app::tenant_id(&db, "a")).map_err(|e| e.status),
        Ok(T.into())
    );
    assert_eq!(
        block_on(super::host_app::tenant_id(&db, "nosuch")).map_err(|e| e.status),
        Err(404)
    );
    let opens = || block_on(Gated::new(&db, T, &hash, 0).open()).is_ok();
    let status =
        |sub: &str, hash: &str, id: &str| match block_on(auth::verdict(&db, sub, hash, id, 0))
            .expect("verdict")
        {
            Verdict::Refused(r) => Err(r.error.status),
            Verdict::Moved(id) => Ok(id),
            Verdict::Open => Ok("open".into()),
            Verdict::Frozen => Ok("frozen".into()),
        };
    assert!(opens());
    assert_eq!(status("a", &hash, T), Ok("open".into()));
    // Another tenant's token, an unknown token, an unknown tenant, and a subdomain
    // that names another tenant than the one the request was scoped to.
    assert_eq!(status("b", &hash, "ten_b"), Err(401));
    assert_eq!(status("a", "not-a-token-hash", T), Err(401));
    assert_eq!(status("nosuch", &hash, ""), Err(404));
    assert_eq!(status("a", &hash, "ten_old"), Ok(T.into()));
    // Disabling provisioning shuts the gate at once: 403.
    let all = super::testing::TestShards::new(db.clone(), 0);
    block_on(tenants::update(&all, &rt, "a", None, Some(false))).expect("update");
    assert!(!opens());
    assert_eq!(status("a", &hash, T), Err(403));
    block_on(tenants::update(&all, &rt, "a", None, Some(true))).expect("update");
    assert!(opens());
    // Settling a request: a read through the gate gives its caller; nothing through it (no
    // call made) runs the gate alone; a failed write names no refusal but keeps the caller.
    let settle = |gated: &Gated<'_, _>| block_on(auth::settle(gated, "a")).expect("settle");
    let read = Gated::new(&db, T, &hash, 0);
    block_on(read.query(Stmt::new("SELECT 1 AS x", vec![]))).expect("read");
    let s = settle(&read);
    assert!(s.shut.is_none());
    assert_eq!(s.principal.map(|p| p.token_id), Some(created.id.clone()));
    let idle = Gated::new(&db, T, &hash, 0);
    assert!(settle(&idle).principal.is_some(), "the gate ran alone");
    let failing = Gated::new(&db, T, &hash, 0);
    block_on(failing.query(Stmt::new("SELECT 1 AS x", vec![]))).expect("read");
    assert!(block_on(failing.query(Stmt::new("SELECT nope", vec![]))).is_err());
    let s = settle(&failing);
    assert!(matches!(s.shut, Some(Verdict::Open)), "{:?}", s.shut);
    assert!(s.principal.is_some());
    // Revoking the token: 401 at once.
    block_on(tenants::revoke_token(&db, "a", &created.id, 0)).expect("revoke");
    assert!(!opens());
    assert_eq!(status("a", &hash, T), Err(401));
    let s = settle(&Gated::new(&db, T, &hash, 0));
    assert!(matches!(s.shut, Some(Verdict::Refused(_))) && s.principal.is_none());
}
