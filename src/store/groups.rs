//! SQL for SCIM Groups and their memberships.
//!
//! A membership is a row of `memberships (tenant_id, group_id, member_id, member_type)`. Adding
//! members is `INSERT … ON CONFLICT DO NOTHING`, removing them `DELETE … WHERE`: no statement
//! reads or rewrites a member list, so concurrent member changes cannot undo each other, and one
//! member costs the same in a group of 10 or 100,000. Each member PATCH also bumps the group's
//! `version` (`version = version + 1`, one small row) so that `meta.version` changes.
//!
//! Statements that must commit together go in one batch; those after the group's own UPDATE are
//! guarded by the `write_id` it set (as for users), so a write that lost a version race changes
//! nothing.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

use super::filter_sql::Table;
use super::listing::{list_page, ListQuery};
pub use super::memberships::{Member, MemberChange};
use super::refs::{self, Refs};
use super::{memberships, Delete, Executor, Param, Stmt, StoreError, Written};
use crate::scim::error::{quote, Error, Result};
use crate::scim::fold::fold;
use crate::scim::resource::{MemberRef, RefType};

/// A group as stored; `members` is `None` when the query did not ask for them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGroup {
    pub id: String,
    pub data: Map<String, Value>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub members: Option<Vec<MemberRef>>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    data: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    /// The group's member count, when the query asked for it (a list page with members).
    #[serde(default)]
    ref_count: i64,
}

impl Row {
    fn into_group(self) -> Result<StoredGroup> {
        let data = super::parse_data("group", &self.id, &self.data)?;
        Ok(StoredGroup {
            id: self.id,
            data,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            members: None,
        })
    }
}

const SELECT: &str = "SELECT g.id, g.data, g.version, g.created_at, g.updated_at FROM groups g";

/// One page of groups and the total that match; with members, each group's members, the page
/// cut short once their members pass [`refs::PAGE_BUDGET`] rows.
pub async fn list<E: Executor>(
    db: &E,
    tenant_id: &str,
    q: &ListQuery<'_>,
    with_members: bool,
) -> Result<(u64, Vec<StoredGroup>)> {
    if !with_members {
        let (n, rows) = list_page::<_, Row>(db, Table::Groups, SELECT, tenant_id, q).await?;
        let groups = rows
            .into_iter()
            .map(Row::into_group)
            .collect::<Result<_>>()?;
        return Ok((n, groups));
    }
    let select = format!(
        "SELECT g.id, g.data, g.version, g.created_at, g.updated_at, {} FROM groups g",
        Refs::Members.count_column("g")
    );
    let (n, mut rows) = list_page::<_, Row>(db, Table::Groups, &select, tenant_id, q).await?;
    rows.truncate(refs::within_budget(rows.iter().map(|r| r.ref_count)));
    let counts: Vec<i64> = rows.iter().map(|r| r.ref_count).collect();
    let mut groups = rows
        .into_iter()
        .map(Row::into_group)
        .collect::<Result<Vec<_>>>()?;
    // Groups without members need no second read (Entra's groups are usually read with
    // `excludedAttributes=members`, and then none of this runs).
    let ids: Vec<String> = groups
        .iter()
        .zip(&counts)
        .filter(|(_, n)| **n > 0)
        .map(|(g, _)| g.id.clone())
        .collect();
    let mut members = refs::read_all(db, Refs::Members, tenant_id, &ids).await?;
    for g in &mut groups {
        g.members = Some(members.remove(&g.id).unwrap_or_default());
    }
    Ok((n, groups))
}

/// One group; with members, their first page comes in the same batch as the group's row, and
/// every member is read however many there are.
pub async fn get<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    with_members: bool,
) -> Result<Option<StoredGroup>> {
    let row = row_stmt(tenant_id, id);
    if !with_members {
        return db
            .query(row)
            .await?
            .first::<Row>()?
            .map(Row::into_group)
            .transpose();
    }
    let Some((row, members)) =
        refs::row_with_refs::<_, Row>(db, row, Refs::Members, tenant_id, id).await?
    else {
        return Ok(None);
    };
    let mut group = row.into_group()?;
    group.members = Some(members);
    Ok(Some(group))
}

fn row_stmt(tenant_id: &str, id: &str) -> Stmt {
    Stmt::new(
        format!("{SELECT} WHERE g.tenant_id = ? AND g.id = ?"),
        vec![tenant_id.into(), id.into()],
    )
}

fn columns(data: &Map<String, Value>) -> (String, Option<String>) {
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    (text("displayName").unwrap_or_default(), text("externalId"))
}

fn taken(display_name: &str) -> Error {
    Error::conflict(format!(
        "a group named '{}' already exists in this organisation",
        quote(display_name)
    ))
}

/// Insert a group with its members in one batch. A taken displayName is 409 `uniqueness`.
pub async fn insert<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    data: &Map<String, Value>,
    members: Vec<Member>,
    now: i64,
    write_id: &str,
) -> Result<()> {
    let (display_name, external_id) = columns(data);
    let mut stmts = vec![Stmt::new(
        "INSERT INTO groups (tenant_id, id, display_name, display_name_key, external_id, data, version, write_id, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        vec![
            tenant_id.into(),
            id.into(),
            display_name.as_str().into(),
            fold(&display_name).into(),
            external_id.into(),
            Value::Object(data.clone()).to_string().into(),
            write_id.into(),
            now.into(),
            now.into(),
        ],
    )];
    if !members.is_empty() {
        stmts.extend(memberships::statements(
            tenant_id,
            id,
            write_id,
            &[MemberChange::Add(members)],
        )?);
    }
    match db.batch(stmts).await {
        Ok(_) => Ok(()),
        Err(StoreError::Unique(_)) => Err(taken(&display_name)),
        Err(e) => Err(e.into()),
    }
}

/// Write a group's attributes (`data`, if given) and its member changes in one batch, on the
/// condition that its version is still `if_version` when that is given. Without a condition
/// the version is bumped whatever it is: member changes commute, so they never need to retry;
/// `Stale` then means the group is gone.
#[allow(clippy::too_many_arguments)]
pub async fn write<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    if_version: Option<i64>,
    data: Option<&Map<String, Value>>,
    changes: &[MemberChange],
    now: i64,
    write_id: &str,
) -> Result<Written<()>> {
    let mut set = String::new();
    let mut params: Vec<Param> = Vec::new();
    if let Some(data) = data {
        let (display_name, external_id) = columns(data);
        set.push_str("display_name = ?, display_name_key = ?, external_id = ?, data = ?, ");
        params.extend([
            display_name.as_str().into(),
            fold(&display_name).into(),
            external_id.into(),
            Value::Object(data.clone()).to_string().into(),
        ]);
    }
    params.extend([write_id.into(), now.into(), tenant_id.into(), id.into()]);
    let condition = match if_version {
        Some(v) => {
            params.push(v.into());
            " AND version = ?"
        }
        None => "",
    };
    let mut stmts = vec![Stmt::new(
        format!(
            "UPDATE groups SET {set}version = version + 1, write_id = ?, updated_at = ? \
             WHERE tenant_id = ? AND id = ?{condition}"
        ),
        params,
    )];
    stmts.extend(memberships::statements(tenant_id, id, write_id, changes)?);
    let outs = match db.batch(stmts).await {
        Ok(outs) => outs,
        Err(StoreError::Unique(_)) => {
            let name = data.map(columns).map(|c| c.0).unwrap_or_default();
            return Err(taken(&name));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(if outs.first().map_or(0, |o| o.changes) == 0 {
        Written::Stale
    } else {
        Written::Done(())
    })
}

/// Delete a group: its row, its members, and its membership in other groups, in one batch.
pub async fn delete<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    if_version: Option<i64>,
    now: i64,
) -> Result<Delete> {
    let mut also = vec![Stmt::new(
        "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ? \
         AND NOT EXISTS (SELECT 1 FROM groups WHERE tenant_id = ? AND id = ?)",
        vec![tenant_id.into(), id.into(), tenant_id.into(), id.into()],
    )];
    also.extend(memberships::forget_member(tenant_id, id, "groups", now));
    super::delete_resource(db, "groups", tenant_id, id, if_version, also).await
}

/// A group (without its members) and which of `ids` are users or groups of the tenant, in one
/// batch: what a member PATCH needs before it can write.
pub async fn get_with_kinds<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    ids: &[&str],
) -> Result<(Option<StoredGroup>, HashMap<String, RefType>)> {
    let mut stmts = vec![row_stmt(tenant_id, id)];
    if !ids.is_empty() {
        stmts.push(memberships::kinds_stmt(tenant_id, ids));
    }
    let mut outs = db.batch(stmts).await?.into_iter();
    let group = outs
        .next()
        .map(|o| o.first::<Row>())
        .transpose()?
        .flatten()
        .map(Row::into_group)
        .transpose()?;
    let kinds = match outs.next() {
        Some(o) => memberships::decode_kinds(o)?,
        None => HashMap::new(),
    };
    Ok((group, kinds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::filter::parse;
    use crate::scim::resource::from_request;
    use crate::scim::schema::{GROUP_TYPE, USER_TYPE};
    use crate::store::listing::list_where;
    use crate::store::sqlite::Sqlite;
    use crate::store::tenants::{create_tenant, NewTenant};
    use crate::store::users;
    use pollster::block_on;
    use serde_json::json;

    const T: &str = "ten_a";

    /// Tenant A with users u1..u5 and groups g1 ("Sales", members from `before`) and g2;
    /// tenant B with one user.
    fn db(before: &Value) -> Sqlite {
        let db = Sqlite::migrated();
        for (id, sub) in [(T, "a"), ("ten_b", "b")] {
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
        for i in 1..=5 {
            let data = from_request(&USER_TYPE, &json!({"userName": format!("user{i}@x.org")}))
                .expect("user");
            block_on(users::insert(&db, T, &format!("u{i}"), &data, i, "w")).expect("insert");
        }
        let other = from_request(&USER_TYPE, &json!({"userName": "b@x.org"})).expect("user");
        block_on(users::insert(
            &db,
            "ten_b",
            "other-tenant-user",
            &other,
            1,
            "w",
        ))
        .expect("insert");
        let members: Vec<Member> = before["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .map(|s| Member {
                        id: s.to_string(),
                        kind: RefType::User,
                        display: Some(format!("{s} display")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sales = json!({"displayName": before["displayName"].as_str().unwrap_or("Sales")});
        block_on(insert(
            &db,
            T,
            "g1",
            sales.as_object().expect("object"),
            members,
            10,
            "w1",
        ))
        .expect("g1");
        block_on(insert(
            &db,
            T,
            "g2",
            json!({"displayName": "Marketing"})
                .as_object()
                .expect("object"),
            vec![],
            11,
            "w2",
        ))
        .expect("g2");
        db
    }

    fn state(db: &Sqlite, id: &str) -> Value {
        let g = block_on(get(db, T, id, true))
            .expect("get")
            .expect("exists");
        let mut members: Vec<String> = g
            .members
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.id)
            .collect();
        members.sort();
        let mut s = g.data.clone();
        s.insert("members".into(), json!(members));
        Value::Object(s)
    }

    fn ids(db: &Sqlite, filter: &str) -> Vec<String> {
        let f = parse(filter, &GROUP_TYPE).unwrap_or_else(|e| panic!("{filter}: {}", e.detail));
        let q = ListQuery {
            filter: Some(&f),
            sort_by: None,
            descending: false,
            start_index: 1,
            count: 100,
        };
        let (n, groups) = block_on(list(db, T, &q, false)).expect("list");
        assert_eq!(n as usize, groups.len());
        assert!(
            groups.iter().all(|g| g.members.is_none()),
            "members not read when not asked for"
        );
        groups.into_iter().map(|g| g.id).collect()
    }

    #[test]
    fn entra_group_queries() {
        let db = db(&json!({"displayName": "Sales", "members": ["u1", "u2"]}));
        assert_eq!(ids(&db, r#"displayName eq "sales""#), ["g1"]);
        assert_eq!(
            ids(&db, r#"displayName eq "7d420df3""#),
            Vec::<String>::new()
        );
        assert_eq!(ids(&db, r#"id eq "g1" and members eq "u1""#), ["g1"]);
        assert_eq!(
            ids(&db, r#"id eq "g1" and members eq "u3""#),
            Vec::<String>::new()
        );
        assert_eq!(ids(&db, r#"members[value eq "u2"]"#), ["g1"]);
        assert_eq!(ids(&db, r#"id eq "g1" and members[value eq "u2"]"#), ["g1"]);
        assert_eq!(ids(&db, r#"members[display eq "U1 DISPLAY"]"#), ["g1"]);
        assert_eq!(ids(&db, r#"members pr"#), ["g1"]);
        assert_eq!(ids(&db, r#"not (members pr)"#), ["g2"]);
        // The user side: groups[value eq …] and groups.value.
        let f = parse(r#"groups[value eq "g1"]"#, &USER_TYPE).expect("parse");
        let q = ListQuery {
            filter: Some(&f),
            sort_by: None,
            descending: false,
            start_index: 1,
            count: 10,
        };
        let (_, us) = block_on(users::list(&db, T, &q, true)).expect("list");
        assert_eq!(
            us.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            ["u1", "u2"]
        );
        assert_eq!(
            us[0].groups,
            vec![MemberRef {
                id: "g1".into(),
                kind: RefType::Direct,
                display: Some("Sales".into())
            }]
        );
        for (filter, must_use) in [
            (r#"displayName eq "Sales""#, "groups_by_display_name_key"),
            (r#"externalId eq "x""#, "groups_by_external_id"),
            (
                r#"id eq "g1" and members eq "u1""#,
                "(tenant_id=? AND id=?)",
            ),
            (r#"members[value eq "u1"]"#, "memberships_by_member"),
        ] {
            let f = parse(filter, &GROUP_TYPE).expect("parse");
            let w = list_where(Table::Groups, T, Some(&f)).expect("where");
            let plan = db.plan(
                &format!("SELECT g.id FROM groups g WHERE {}", w.sql),
                &w.params,
            );
            assert!(
                plan.contains(must_use),
                "{filter}: plan does not use {must_use}:\n{plan}"
            );
            assert!(!plan.contains("SCAN g"), "{filter}: scans groups:\n{plan}");
            println!("{filter}\n{plan}");
        }
    }

    #[test]
    fn deleting_users_and_groups_removes_their_memberships() {
        let db = db(&json!({"displayName": "Sales", "members": ["u1", "u2"]}));
        let changes = vec![MemberChange::Add(vec![Member {
            id: "g2".into(),
            kind: RefType::Group,
            display: None,
        }])];
        block_on(write(&db, T, "g1", None, None, &changes, 40, "w5")).expect("nest");
        assert_eq!(
            block_on(get(&db, T, "g1", false))
                .expect("get")
                .expect("g1")
                .version,
            2
        );
        assert_eq!(
            block_on(users::delete(&db, T, "u1", None, 50)).expect("delete"),
            Delete::Deleted
        );
        assert_eq!(state(&db, "g1")["members"], json!(["g2", "u2"]));
        assert_eq!(
            block_on(get(&db, T, "g1", false))
                .expect("get")
                .expect("g1")
                .version,
            3,
            "member removal bumps the version"
        );
        assert_eq!(
            block_on(delete(&db, T, "g2", None, 60)).expect("delete"),
            Delete::Deleted
        );
        assert_eq!(state(&db, "g1")["members"], json!(["u2"]));
        assert_eq!(
            block_on(delete(&db, T, "g1", Some(1), 70)).expect("delete"),
            Delete::Stale,
            "If-Match with another version"
        );
        assert_eq!(
            block_on(delete(&db, T, "g1", None, 70)).expect("delete"),
            Delete::Deleted
        );
        assert_eq!(db.count("SELECT COUNT(*) FROM memberships"), 0);
        assert_eq!(
            block_on(delete(&db, T, "g1", None, 70)).expect("second delete"),
            Delete::NotFound
        );
    }

    #[test]
    fn display_names_compare_with_unicode_case_folding() {
        let db = db(&json!({"displayName": "Équipe Straße", "members": []}));
        assert_eq!(ids(&db, r#"displayName eq "ÉQUIPE STRASSE""#), ["g1"]);
        assert_eq!(ids(&db, r#"displayName sw "équipe""#), ["g1"]);
        let e = block_on(insert(
            &db,
            T,
            "g3",
            json!({"displayName": "équipe strasse"})
                .as_object()
                .expect("object"),
            vec![],
            80,
            "w7",
        ))
        .expect_err("taken");
        assert_eq!((e.status, e.scim_type), (409, Some(ScimType::Uniqueness)));
    }

    #[test]
    fn renaming_onto_a_taken_display_name_is_409() {
        let db = db(&json!({"displayName": "Sales", "members": []}));
        let data = json!({"displayName": "MARKETING"});
        let e = block_on(write(
            &db,
            T,
            "g1",
            Some(1),
            data.as_object(),
            &[],
            80,
            "w6",
        ))
        .expect_err("taken");
        assert_eq!((e.status, e.scim_type), (409, Some(ScimType::Uniqueness)));
        let e = block_on(insert(
            &db,
            T,
            "g3",
            data.as_object().expect("object"),
            vec![],
            80,
            "w7",
        ))
        .expect_err("taken");
        assert_eq!(e.status, 409);
    }

    #[test]
    fn a_group_larger_than_a_page_is_read_whole() {
        let db = db(&json!({"displayName": "Sales", "members": []}));
        let n = 2 * refs::PAGE + 1234;
        pollster::block_on(db.query(Stmt::new(
            format!(
                "INSERT INTO memberships (tenant_id, group_id, member_id, member_type) \
                 SELECT 'ten_a', 'g1', printf('m%06d', i), 'User' FROM \
                 (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) SELECT i FROM n)"
            ),
            vec![],
        )))
        .expect("seed");
        let g = block_on(get(&db, T, "g1", true)).expect("get").expect("g1");
        let members = g.members.expect("members");
        assert_eq!(members.len(), n);
        let distinct: std::collections::HashSet<&str> =
            members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(distinct.len(), n, "no member twice across pages");
        // A list page stops after the group that passes the budget (the page is short, and
        // says so by its length); the next page goes on from there.
        let page = |start_index| {
            let q = ListQuery {
                filter: None,
                sort_by: None,
                descending: false,
                start_index,
                count: 10,
            };
            let (total, listed) = block_on(list(&db, T, &q, true)).expect("list");
            let sizes: Vec<usize> = listed
                .iter()
                .map(|g| g.members.as_ref().map_or(0, Vec::len))
                .collect();
            (total, sizes)
        };
        assert_eq!(page(1), (2, vec![n]));
        assert_eq!(page(2), (2, vec![0]));
        let (total, without) = block_on(list(
            &db,
            T,
            &ListQuery {
                filter: None,
                sort_by: None,
                descending: false,
                start_index: 1,
                count: 10,
            },
            false,
        ))
        .expect("list");
        assert_eq!((total, without.len()), (2, 2), "no budget without members");
    }

    #[test]
    fn a_page_of_groups_stops_at_the_member_budget() {
        let db = db(&json!({"displayName": "Sales", "members": []}));
        // Three more groups of 4,000 members each: 12,000 > 10,000, so a page holds two.
        for g in ["g3", "g4", "g5"] {
            block_on(db.query(Stmt::new(
                format!(
                    "INSERT INTO groups (tenant_id, id, display_name, display_name_key, data, version, write_id, created_at, updated_at) \
                     VALUES ('ten_a', '{g}', '{g}', '{g}', '{{}}', 1, 'w', 100, 100)"
                ),
                vec![],
            )))
            .expect("group");
            block_on(db.query(Stmt::new(
                format!(
                    "INSERT INTO memberships (tenant_id, group_id, member_id, member_type) \
                     SELECT 'ten_a', '{g}', printf('m%06d', i), 'User' FROM \
                     (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) SELECT i FROM n)"
                ),
                vec![],
            )))
            .expect("members");
        }
        let q = ListQuery {
            filter: None,
            sort_by: None,
            descending: false,
            start_index: 3,
            count: 10,
        };
        let (total, listed) = block_on(list(&db, T, &q, true)).expect("list");
        let ids: Vec<&str> = listed.iter().map(|g| g.id.as_str()).collect();
        assert_eq!((total, ids), (5, vec!["g3", "g4"]));
        assert!(listed
            .iter()
            .all(|g| g.members.as_ref().map(Vec::len) == Some(4000)));
    }

    #[test]
    fn a_large_member_list_is_chunked_under_the_parameter_limit() {
        let db = db(&json!({"displayName": "Sales", "members": []}));
        let many: Vec<Member> = (0..500)
            .map(|i| Member {
                id: format!("x{i}"),
                kind: RefType::User,
                display: None,
            })
            .collect();
        block_on(write(
            &db,
            T,
            "g1",
            None,
            None,
            &[MemberChange::Add(many)],
            90,
            "w8",
        ))
        .expect("add");
        assert_eq!(
            db.count("SELECT COUNT(*) FROM memberships WHERE group_id = 'g1'"),
            500
        );
        let remove: Vec<String> = (0..250).map(|i| format!("x{i}")).collect();
        block_on(write(
            &db,
            T,
            "g1",
            None,
            None,
            &[MemberChange::Remove(remove)],
            91,
            "w9",
        ))
        .expect("remove");
        assert_eq!(
            db.count("SELECT COUNT(*) FROM memberships WHERE group_id = 'g1'"),
            250
        );
    }
}
#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::store::sqlite::Sqlite;

    /// Resolving members and reading references are index seeks per id, not scans, however
    /// many ids travel in the JSON array.
    #[test]
    fn member_resolution_and_reference_pages_are_index_seeks() {
        let db = Sqlite::migrated();
        let kinds = memberships::kinds_stmt("t", &["a", "b"]);
        let plan = db.plan(&kinds.sql, &kinds.params);
        println!("{plan}");
        assert!(
            !plan.contains("SCAN users") && !plan.contains("SCAN groups"),
            "{plan}"
        );
        for refs in [Refs::Members, Refs::Groups] {
            let page = refs.page("t", &["a".into()], Some(&("a".into(), "b".into())));
            let plan = db.plan(&page.sql, &page.params);
            println!("{refs:?}\n{plan}");
            assert!(!plan.contains("SCAN m"), "{refs:?}: {plan}");
        }
    }
}
