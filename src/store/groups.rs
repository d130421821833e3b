//! SQL for what only groups have: their indexed columns (`display_name` and its folded key,
//! `external_id`, as [`super::storage`] maps them) written with their member changes
//! ([`super::memberships`]) in one batch. Each member change also bumps the group's `version` (one small row) so that `meta.version`
//! changes. Reading and deleting are [`super::resources`]'s, as for users.
//!
//! Statements that must commit together go in one batch; those after the group's own UPDATE are
//! guarded by the `write_id` it set (as for users), so a write that lost a version race changes
//! nothing.

use crate::store::row::from_row;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub use super::memberships::{Member, MemberChange, Named};
use super::resources::{self, Stored};
use super::storage::{self};
use super::table::Table;
use super::trail::Trail;
use super::{memberships, Executor, Param, Result, Stmt, Written};
use scim_core::scim::resource::RefType;

/// Insert a group with its members, and what the write records, in one batch. A taken
/// displayName is `StoreError::Unique` on `display_name_key`.
#[allow(clippy::too_many_arguments)]
pub async fn insert<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    data: &Map<String, Value>,
    members: Vec<Member>,
    now: i64,
    write_id: &str,
    trail: &Trail<'_>,
) -> Result<()> {
    let row = storage::copied(Table::Groups, data);
    let mut params: Vec<Param> = vec![tenant_id.into(), id.into()];
    params.extend(row.params.iter().cloned());
    params.extend([
        Value::Object(data.clone()).to_string().into(),
        write_id.into(),
        now.into(),
        now.into(),
    ]);
    let copied = vec!["?"; row.columns.len()].join(", ");
    let mut stmts = vec![Stmt::new(
        format!(
            "INSERT INTO groups (tenant_id, id, {}, data, version, write_id, created_at, updated_at) \
             VALUES (?, ?, {copied}, ?, 1, ?, ?, ?)",
            row.names()
        ),
        params,
    )];
    stmts.extend(trail.after(Table::Groups, tenant_id, id, now, write_id));
    if !members.is_empty() {
        stmts.extend(memberships::statements(
            tenant_id,
            id,
            write_id,
            now,
            &[MemberChange::Add(members)],
        )?);
    }
    db.batch(stmts).await.map(|_| ())
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
    trail: &Trail<'_>,
) -> Result<Written<()>> {
    let mut set = String::new();
    let mut params: Vec<Param> = Vec::new();
    let row = data.map(|data| storage::copied(Table::Groups, data));
    if let (Some(data), Some(row)) = (data, &row) {
        set = format!("{}, data = ?, ", row.assignments());
        params.extend(row.params.iter().cloned());
        params.push(Value::Object(data.clone()).to_string().into());
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
    stmts.extend(trail.after(Table::Groups, tenant_id, id, now, write_id));
    stmts.extend(memberships::statements(
        tenant_id, id, write_id, now, changes,
    )?);
    let outs = db.batch(stmts).await?;
    Ok(if outs.first().map_or(0, |o| o.changes) == 0 {
        Written::Stale
    } else {
        Written::Done(())
    })
}

/// A member change of group `id` that reads nothing first (member changes commute): the
/// group's version bumped, the members' rows, their feed events and roles, and the log entry
/// (`trail`, only when every member an [`MemberChange::AddNamed`] names resolved), with the
/// group's displayName and the named ids that are no user or group of the tenant read in the
/// same batch. `None` when there is no such group: then nothing was written, since every
/// statement is guarded by the bump's `write_id`.
pub async fn write_members<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    change: &MemberChange,
    now: i64,
    write_id: &str,
    trail: &Trail<'_>,
) -> Result<Option<(String, Vec<String>)>> {
    let added: &[Named] = match change {
        MemberChange::AddNamed(named) => named,
        _ => &[],
    };
    let bump = Stmt::new(
        "UPDATE groups SET version = version + 1, write_id = ?, updated_at = ? \
         WHERE tenant_id = ? AND id = ?",
        vec![write_id.into(), now.into(), tenant_id.into(), id.into()],
    );
    let (resolved, params) = memberships::all_resolved(tenant_id, added);
    let mut stmts = vec![bump];
    stmts.extend(trail.after_if(
        Table::Groups,
        tenant_id,
        id,
        now,
        write_id,
        &resolved,
        &params,
    ));
    stmts.extend(memberships::statements(
        tenant_id,
        id,
        write_id,
        now,
        std::slice::from_ref(change),
    )?);
    stmts.push(Stmt::new(
        "SELECT display_name FROM groups WHERE tenant_id = ? AND id = ?",
        vec![tenant_id.into(), id.into()],
    ));
    stmts.push(memberships::unresolved_stmt(tenant_id, added));
    let mut outs = db.batch(stmts).await?;
    if outs.first().map_or(0, |o| o.changes) == 0 {
        return Ok(None);
    }
    struct Id {
        id: String,
    }
    from_row!(Id { id });
    struct Name {
        display_name: String,
    }
    from_row!(Name { display_name });
    let skipped: Vec<Id> = outs
        .pop()
        .map(|o| o.decode())
        .transpose()?
        .unwrap_or_default();
    let name: Option<Name> = outs.pop().map(|o| o.first()).transpose()?.flatten();
    Ok(Some((
        name.map(|n| n.display_name).unwrap_or_default(),
        skipped.into_iter().map(|i| i.id).collect(),
    )))
}

/// A group (without its members) and which of `ids` are users or groups of the tenant, in one
/// batch: what a member PATCH needs before it can write.
pub async fn get_with_kinds<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    ids: &[&str],
) -> Result<(Option<Stored>, HashMap<String, RefType>)> {
    let mut stmts = vec![resources::row_stmt(Table::Groups, tenant_id, id)];
    if !ids.is_empty() {
        stmts.push(memberships::kinds_stmt(tenant_id, ids));
    }
    let mut outs = db.batch(stmts).await?.into_iter();
    let group = match outs.next() {
        Some(o) => resources::decode_row(o)?,
        None => None,
    };
    let kinds = match outs.next() {
        Some(o) => memberships::decode_kinds(o)?,
        None => HashMap::new(),
    };
    Ok((group, kinds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixture::{self, group_state, seeded, T};
    use crate::store::listing::ListQuery;
    use crate::store::refs;
    use crate::store::sqlite::Sqlite;
    use crate::store::trail::Trail;
    use crate::store::Delete;
    use pollster::block_on;
    use scim_core::scim::filter::parse;
    use scim_core::scim::resource::MemberRef;
    use scim_core::scim::schema::USER_TYPE;
    use serde_json::json;

    fn ids(db: &Sqlite, filter: &str) -> Vec<String> {
        fixture::ids(db, Table::Groups, filter)
    }

    #[test]
    fn entra_group_queries() {
        let db = seeded(&json!({"displayName": "Sales", "members": ["u1", "u2"]}));
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
            after: None,
        };
        let (_, us) = block_on(resources::list(&db, Table::Users, T, &q, true)).expect("list");
        assert_eq!(
            us.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            ["u1", "u2"]
        );
        assert_eq!(
            us[0].refs,
            Some(vec![MemberRef {
                id: "g1".into(),
                kind: RefType::Direct,
                display: Some("Sales".into())
            }])
        );
        fixture::assert_index_seeks(
            &db,
            Table::Groups,
            &[
                (r#"displayName eq "Sales""#, "groups_by_display_name_key"),
                (r#"externalId eq "x""#, "groups_by_external_id"),
                (
                    r#"id eq "g1" and members eq "u1""#,
                    "(tenant_id=? AND id=?)",
                ),
                (r#"members[value eq "u1"]"#, "memberships_by_member"),
            ],
        );
    }

    #[test]
    fn deleting_users_and_groups_removes_their_memberships() {
        let db = seeded(&json!({"displayName": "Sales", "members": ["u1", "u2"]}));
        let delete = |table, id, if_version, now| {
            block_on(resources::delete(
                &db,
                table,
                T,
                id,
                if_version,
                now,
                &Trail::default(),
            ))
            .expect("delete")
        };
        let changes = vec![MemberChange::Add(vec![Member {
            id: "g2".into(),
            kind: RefType::Group,
            display: None,
        }])];
        block_on(write(
            &db,
            T,
            "g1",
            None,
            None,
            &changes,
            40,
            "w5",
            &Trail::default(),
        ))
        .expect("nest");
        assert_eq!(
            block_on(resources::get(&db, Table::Groups, T, "g1", false))
                .expect("get")
                .expect("g1")
                .version,
            2
        );
        assert_eq!(delete(Table::Users, "u1", None, 50), Delete::Deleted);
        assert_eq!(group_state(&db, "g1")["members"], json!(["g2", "u2"]));
        assert_eq!(
            block_on(resources::get(&db, Table::Groups, T, "g1", false))
                .expect("get")
                .expect("g1")
                .version,
            3,
            "member removal bumps the version"
        );
        assert_eq!(delete(Table::Groups, "g2", None, 60), Delete::Deleted);
        assert_eq!(group_state(&db, "g1")["members"], json!(["u2"]));
        assert_eq!(
            delete(Table::Groups, "g1", Some(1), 70),
            Delete::Stale,
            "If-Match with another version"
        );
        assert_eq!(delete(Table::Groups, "g1", None, 70), Delete::Deleted);
        assert_eq!(db.count("SELECT COUNT(*) FROM memberships"), 0);
        assert_eq!(delete(Table::Groups, "g1", None, 70), Delete::NotFound);
    }

    #[test]
    fn display_names_compare_with_unicode_case_folding() {
        let db = seeded(&json!({"displayName": "Équipe Straße", "members": []}));
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
            &Trail::default(),
        ))
        .expect_err("taken");
        assert!(e.is_unique_on("display_name_key"), "{e:?}");
    }

    #[test]
    fn renaming_onto_a_taken_display_name_is_409() {
        let db = seeded(&json!({"displayName": "Sales", "members": []}));
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
            &Trail::default(),
        ))
        .expect_err("taken");
        assert!(e.is_unique_on("display_name_key"), "{e:?}");
        let e = block_on(insert(
            &db,
            T,
            "g3",
            data.as_object().expect("object"),
            vec![],
            80,
            "w7",
            &Trail::default(),
        ))
        .expect_err("taken");
        assert!(e.is_unique_on("display_name_key"), "{e:?}");
    }

    #[test]
    fn a_group_larger_than_a_page_is_read_whole() {
        let db = seeded(&json!({"displayName": "Sales", "members": []}));
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
        let g = block_on(resources::get(&db, Table::Groups, T, "g1", true))
            .expect("get")
            .expect("g1");
        let members = g.refs.expect("members");
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
                after: None,
            };
            let (total, listed) =
                block_on(resources::list(&db, Table::Groups, T, &q, true)).expect("list");
            let sizes: Vec<usize> = listed
                .iter()
                .map(|g| g.refs.as_ref().map_or(0, Vec::len))
                .collect();
            (total, sizes)
        };
        assert_eq!(page(1), (2, vec![n]));
        assert_eq!(page(2), (2, vec![0]));
        let (total, without) = block_on(resources::list(
            &db,
            Table::Groups,
            T,
            &ListQuery {
                filter: None,
                sort_by: None,
                descending: false,
                start_index: 1,
                count: 10,
                after: None,
            },
            false,
        ))
        .expect("list");
        assert_eq!((total, without.len()), (2, 2), "no budget without members");
    }

    #[test]
    fn a_page_of_groups_stops_at_the_member_budget() {
        let db = seeded(&json!({"displayName": "Sales", "members": []}));
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
            after: None,
        };
        let (total, listed) =
            block_on(resources::list(&db, Table::Groups, T, &q, true)).expect("list");
        let ids: Vec<&str> = listed.iter().map(|g| g.id.as_str()).collect();
        assert_eq!((total, ids), (5, vec!["g3", "g4"]));
        assert!(listed
            .iter()
            .all(|g| g.refs.as_ref().map(Vec::len) == Some(4000)));
    }

    #[test]
    fn a_large_member_list_is_chunked_under_the_parameter_limit() {
        let db = seeded(&json!({"displayName": "Sales", "members": []}));
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
            &Trail::default(),
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
            &Trail::default(),
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
    use crate::store::refs::Refs;
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
