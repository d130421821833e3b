//! SQL for what only users have: their indexed columns (`user_name` and its folded key,
//! `external_id`, `active`, `manager_id`: which ones is [`super::storage`]'s map) and their
//! multi-valued values as rows of `user_values`, written on create and rewritten on update,
//! each in one batch. Reading and deleting are [`super::resources`]'s, as for groups.
//!
//! Concurrency without transactions: every update is `UPDATE … WHERE version = ?` and tags the
//! row with a fresh `write_id`; the statements batched after it (rewriting `user_values`) only
//! act `WHERE EXISTS (… write_id = ?)`, so a losing writer changes nothing and retries from a
//! fresh read. Uniqueness of `userName` is the unique index's job.

use crate::store::row::from_row;
use serde_json::{Map, Value};

use super::resources::Stored;
use super::storage::{self, Copied, Many, Storage};
use super::table::Table;
use super::trail::Trail;
use super::{Executor, Param, Result, Stmt, Written};
use scim_core::scim::fold::fold;
use scim_core::scim::patch::LeafSet;
use scim_core::scim::schema::{AttrRef, USER};

/// The indexed copies of a user's data: its row's columns and its `user_values` rows, as
/// [`storage`] maps them.
struct Columns {
    row: Copied,
    values: Vec<ValueRow>,
}

/// One row of `user_values`.
struct ValueRow {
    attr: &'static str,
    value: Option<String>,
    /// `value` folded, or as is where the attribute's value is case-exact.
    key: Option<String>,
    ty: Option<String>,
    display: Option<String>,
    primary: bool,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn columns(data: &Map<String, Value>) -> Columns {
    let mut values = Vec::new();
    for attr in USER
        .attributes
        .iter()
        .filter(|a| a.multi_valued && storage::many(Table::Users, a) == Some(Many::Values))
    {
        let case_exact = attr.sub("value").is_some_and(|v| v.case_exact);
        if let Some(Value::Array(items)) = data.get(attr.name) {
            for item in items {
                let value = text(item.get("value"));
                values.push(ValueRow {
                    attr: attr.name,
                    key: match &value {
                        Some(v) if !case_exact => Some(fold(v)),
                        other => other.clone(),
                    },
                    value,
                    ty: text(item.get("type")),
                    display: text(item.get("display")),
                    primary: item
                        .get("primary")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                });
            }
        }
    }
    Columns {
        row: storage::copied(Table::Users, data),
        values,
    }
}

/// The `INSERT INTO user_values` statement for all of a user's values, or none when it has
/// none. The rows travel as one JSON array in one bound parameter and are unpacked by
/// `json_each`, so a user with thousands of values is still one statement (D1 allows 100 bound
/// parameters per statement and counts every statement of a batch against its per-request
/// query limit). With `guard` (the write_id), rows are inserted only if that write won.
fn value_insert(tenant_id: &str, id: &str, c: &Columns, guard: Option<&str>) -> Option<Stmt> {
    if c.values.is_empty() {
        return None;
    }
    let rows: Vec<Value> = c
        .values
        .iter()
        .map(|row| {
            serde_json::json!({
                "a": row.attr, "v": row.value, "k": row.key, "t": row.ty, "d": row.display,
                "p": row.primary,
            })
        })
        .collect();
    let mut params: Vec<Param> = vec![
        tenant_id.into(),
        id.into(),
        Value::Array(rows).to_string().into(),
    ];
    let mut sql = String::from(
        "INSERT INTO user_values (tenant_id, user_id, attr, value, value_key, type, display, is_primary) \
         SELECT ?, ?, json_extract(j.value, '$.a'), json_extract(j.value, '$.v'), json_extract(j.value, '$.k'), \
         json_extract(j.value, '$.t'), json_extract(j.value, '$.d'), json_extract(j.value, '$.p') \
         FROM json_each(?) j",
    );
    if let Some(write_id) = guard {
        sql.push_str(
            " WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = ? AND id = ? AND write_id = ?)",
        );
        params.extend([tenant_id.into(), id.into(), write_id.into()]);
    }
    Some(Stmt::new(sql, params))
}

fn manager_check(tenant_id: &str, c: &Columns) -> Option<Stmt> {
    c.row.text("manager_id").map(|m| {
        Stmt::new(
            "SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = ? AND id = ?) AS e",
            vec![tenant_id.into(), m.into()],
        )
    })
}

fn manager_exists(out: Option<super::Outcome>) -> Result<bool> {
    struct E {
        e: i64,
    }
    from_row!(E { e });
    Ok(match out {
        Some(o) => o.first::<E>()?.is_some_and(|e| e.e != 0),
        None => false,
    })
}

impl Columns {
    /// The row's copied columns, then `data`.
    fn names(&self) -> String {
        format!("{}, data", self.row.names())
    }

    /// The values of [`Columns::names`].
    fn params(&self, data: &Map<String, Value>) -> Vec<Param> {
        let mut params = self.row.params.clone();
        params.push(Value::Object(data.clone()).to_string().into());
        params
    }
}

/// What a user's write records after its values: its effective role brought up to date
/// first ([`super::roles`]), so that the write's events show it.
fn recorded(tenant_id: &str, id: &str, now: i64, write_id: &str, trail: &Trail<'_>) -> Vec<Stmt> {
    let mut stmts = vec![super::roles::of_user(tenant_id, id, write_id)];
    stmts.extend(trail.after(Table::Users, tenant_id, id, now, write_id));
    stmts
}

/// Insert a new user in one batch. A taken userName is `StoreError::Unique` on `user_name_key`.
pub async fn insert<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    data: &Map<String, Value>,
    now: i64,
    write_id: &str,
    trail: &Trail<'_>,
) -> Result<Stored> {
    let c = columns(data);
    let mut params: Vec<Param> = vec![tenant_id.into(), id.into()];
    params.extend(c.params(data));
    params.extend([write_id.into(), now.into(), now.into()]);
    let copied = vec!["?"; c.row.columns.len().saturating_add(1)].join(", ");
    let row = Stmt::new(
        format!(
            "INSERT INTO users (tenant_id, id, {}, version, write_id, created_at, updated_at) \
             VALUES (?, ?, {copied}, 1, ?, ?, ?)",
            c.names()
        ),
        params,
    );
    let recorded = recorded(tenant_id, id, now, write_id, trail);
    let (_, manager_exists) = write_rows(db, tenant_id, id, &c, vec![row], None, recorded).await?;
    Ok(Stored {
        id: id.to_string(),
        data: data.clone(),
        version: 1,
        created_at: now,
        updated_at: now,
        manager_exists,
        refs: Some(vec![]),
    })
}

/// Replace a user's data if its version is still `current.version`, in one batch.
pub async fn update<E: Executor>(
    db: &E,
    tenant_id: &str,
    current: &Stored,
    data: &Map<String, Value>,
    now: i64,
    write_id: &str,
    trail: &Trail<'_>,
) -> Result<Written<Stored>> {
    let c = columns(data);
    let id = current.id.as_str();
    let mut params = c.params(data);
    params.extend([
        write_id.into(),
        now.into(),
        tenant_id.into(),
        id.into(),
        current.version.into(),
    ]);
    let sets = c.row.assignments();
    let stmts = vec![
        Stmt::new(
            format!(
                "UPDATE users SET {sets}, data = ?, version = version + 1, write_id = ?, updated_at = ? \
                 WHERE tenant_id = ? AND id = ? AND version = ?"
            ),
            params,
        ),
        Stmt::new(
            "DELETE FROM user_values WHERE tenant_id = ? AND user_id = ? \
             AND EXISTS (SELECT 1 FROM users WHERE tenant_id = ? AND id = ? AND write_id = ?)",
            vec![
                tenant_id.into(),
                id.into(),
                tenant_id.into(),
                id.into(),
                write_id.into(),
            ],
        ),
    ];
    let recorded = recorded(tenant_id, id, now, write_id, trail);
    let (changed, manager_exists) =
        write_rows(db, tenant_id, id, &c, stmts, Some(write_id), recorded).await?;
    // D1 counts rows changed by foreign-key actions too: "changed anything" is the test.
    if changed == 0 {
        return Ok(Written::Stale);
    }
    Ok(Written::Done(Stored {
        id: id.to_string(),
        data: data.clone(),
        version: current.version.saturating_add(1),
        created_at: current.created_at,
        updated_at: now,
        manager_exists,
        refs: current.refs.clone(),
    }))
}

/// Set user `id`'s `active` to `active` in one batch that also reads it back with its
/// groups: the UPDATE changes the row only if `active` differs (so it commutes with any other
/// write: there is nothing to read first, and no lost update), what the write records
/// (`trail`, its role) is guarded by `write_id` as after any write, and the read shows the
/// result. Returns whether it changed, and the user (`None`: there is no such user).
pub async fn set_active<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    active: bool,
    now: i64,
    write_id: &str,
    trail: &Trail<'_>,
) -> Result<(bool, Option<Stored>)> {
    let update = Stmt::new(
        "UPDATE users SET active = ?1, data = json_set(data, '$.active', \
         json(CASE ?1 WHEN 1 THEN 'true' ELSE 'false' END)), version = version + 1, \
         write_id = ?2, updated_at = ?3 WHERE tenant_id = ?4 AND id = ?5 AND active != ?1",
        vec![
            active.into(),
            write_id.into(),
            now.into(),
            tenant_id.into(),
            id.into(),
        ],
    );
    let recorded = recorded(tenant_id, id, now, write_id, trail);
    written_and_read(db, tenant_id, id, update, recorded).await
}

/// One batch: a conditional `update` that read nothing first, what it records, and the user
/// read back. Returns whether the update changed the row, and the user (`None`: none).
async fn written_and_read<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    update: Stmt,
    recorded: Vec<Stmt>,
) -> Result<(bool, Option<Stored>)> {
    let mut before = vec![update];
    before.extend(recorded);
    let (outs, user) = super::resources::get_after(db, Table::Users, tenant_id, id, before).await?;
    let changed = outs.first().is_some_and(|o| o.changes > 0);
    Ok((changed, user))
}

/// One leaf of a user's `data` set by [`set_leaves`]: its SQLite JSON path, the name its
/// change has in the feed (`changed`), and its value. An extension's leaf has its change named
/// inside the extension only if the user had the extension: else the extension is new, and
/// it is the extension that changed (as [`crate::service::resources::changed_attributes`]
/// names changes).
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub path: String,
    pub name: String,
    /// The extension's URN, for an extension's leaf.
    pub extension: Option<&'static str>,
    pub value: Value,
}

/// The leaves of `sets` as [`set_leaves`] writes them, if every one is stored in `data`
/// alone (not `userName`, `externalId` or `active`, which have columns) and there are at most
/// [`MAX_LEAVES`]. A change's name is its attribute's, as the feed names changes
/// (`name` for `name.givenName`, `urn:…:User:department` inside an extension).
pub fn leaves(sets: &[LeafSet]) -> Option<Vec<Leaf>> {
    if sets.len() > MAX_LEAVES {
        return None;
    }
    sets.iter()
        .map(|set| {
            let a = &set.attr;
            if storage::storage(Table::Users, a) != Storage::Json {
                return None;
            }
            let extension = a.extension.then_some(a.schema.id);
            let mut path = extension.map_or("$".to_string(), json_key);
            path.push_str(&format!(".\"{}\"", a.attr.name));
            if let Some(sub) = a.sub {
                path.push_str(&format!(".\"{}\"", sub.name));
            }
            Some(Leaf {
                path,
                // The feed names the attribute, not the sub-attribute.
                name: AttrRef { sub: None, ..*a }.display(),
                extension,
                value: set.value.clone(),
            })
        })
        .collect()
}

/// The SQLite JSON path of a top-level key: `$."urn:…:User"`.
fn json_key(key: &str) -> String {
    format!("$.\"{key}\"")
}

/// Most leaves [`set_leaves`] sets at once: two bound parameters each, within D1's 100 per
/// statement.
pub const MAX_LEAVES: usize = 40;

/// Set leaves of user `id`'s `data` (none of them copied to a column or to `user_values`) in
/// one batch that reads nothing first and reads the user back: the UPDATE changes the row only
/// if some leaf's value differs (a repeated PATCH is no write, and no event), and works out
/// against the row as it was which attributes did differ, into `write_changes`, for the
/// events and the log entry of `trail` ([`Trail::after_computed`]), guarded by `write_id` as
/// after any write. Setting leaves commutes with every other write but one of the same leaf,
/// where the later wins as it would after a read: there is no lost update. Returns whether it
/// changed, and the user (`None`: there is no such user).
pub async fn set_leaves<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    leaves: &[Leaf],
    now: i64,
    write_id: &str,
    trail: &Trail<'_>,
) -> Result<(bool, Option<Stored>)> {
    let list: Vec<Value> = leaves
        .iter()
        .map(|l| {
            let e = l.extension.map(json_key);
            serde_json::json!({"p": l.path, "n": l.name, "e": e, "w": l.extension, "v": l.value})
        })
        .collect();
    let mut params: Vec<Param> = Vec::new();
    for leaf in leaves {
        params.push(leaf.path.as_str().into());
        params.push(leaf.value.to_string().into());
    }
    // Numbered after the leaves' pairs: the list of leaves is bound once and read twice.
    let n = params.len();
    let at = |k: usize| n.saturating_add(k);
    params.extend([
        Value::Array(list).to_string().into(),
        write_id.into(),
        now.into(),
        tenant_id.into(),
        id.into(),
    ]);
    let sets = vec!["?, json(?)"; leaves.len()].join(", ");
    let differs = format!(
        "FROM json_each(?{}) j WHERE json_extract(users.data, json_extract(j.value, '$.p')) \
         IS NOT json_extract(j.value, '$.v')",
        at(1)
    );
    let update = Stmt::new(
        format!(
            "UPDATE users SET data = json_set(data, {sets}), write_changes = (SELECT \
             json_group_array(n) FROM (SELECT DISTINCT CASE WHEN json_extract(j.value, '$.e') IS NULL \
             OR json_type(users.data, json_extract(j.value, '$.e')) = 'object' THEN \
             json_extract(j.value, '$.n') ELSE json_extract(j.value, '$.w') END AS n {differs} \
             ORDER BY n)), version = version + 1, write_id = ?{}, updated_at = ?{} \
             WHERE tenant_id = ?{} AND id = ?{} AND EXISTS (SELECT 1 {differs})",
            at(2),
            at(3),
            at(4),
            at(5),
        ),
        params,
    );
    let mut recorded = vec![super::roles::of_user(tenant_id, id, write_id)];
    recorded.extend(trail.after_computed(tenant_id, id, now, write_id));
    written_and_read(db, tenant_id, id, update, recorded).await
}

/// One batch: `head` (the row's INSERT or UPDATE, and what goes before its values), the
/// user's values (guarded by `write_id` when given), what the write records (`recorded`: its
/// events see the new values), and the manager check. Returns the rows
/// the first statement changed, and whether the manager exists.
async fn write_rows<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    c: &Columns,
    mut head: Vec<Stmt>,
    guard: Option<&str>,
    recorded: Vec<Stmt>,
) -> Result<(u64, bool)> {
    head.extend(value_insert(tenant_id, id, c, guard));
    head.extend(recorded);
    let check = manager_check(tenant_id, c);
    let has_check = check.is_some();
    head.extend(check);
    let outs = db.batch(head).await?;
    let changed = outs.first().map_or(0, |o| o.changes);
    let manager = has_check && manager_exists(outs.into_iter().last())?;
    Ok((changed, manager))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixture::{self, two_tenants, T};
    use crate::store::listing::ListQuery;
    use crate::store::listing::MAX_PARAMS;
    use crate::store::resources;
    use crate::store::sqlite::Sqlite;
    use crate::store::trail::Trail;
    use crate::store::Delete;
    use crate::store::StoreError;
    use pollster::block_on;
    use scim_core::scim::filter::parse;
    use scim_core::scim::schema::{Resolved, USER_TYPE};
    use serde_json::json;

    fn add(db: &Sqlite, tenant: &str, id: &str, data: Value, now: i64) -> Stored {
        let Value::Object(m) = data else {
            panic!("object")
        };
        block_on(insert(
            db,
            tenant,
            id,
            &m,
            now,
            &format!("w_{id}"),
            &Trail::default(),
        ))
        .expect("insert")
    }

    /// A small directory with every shape the filters must handle.
    fn seeded() -> Sqlite {
        let db = two_tenants();
        add(
            &db,
            T,
            "u1",
            json!({
                "userName": "Alice@Example.com", "externalId": "ext-1", "active": true,
                "displayName": "Alice", "title": "Engineer",
                "name": {"givenName": "Alice", "familyName": "Smith"},
                "emails": [{"value": "alice@example.com", "type": "work", "primary": true},
                           {"value": "alice@home.org", "type": "home"}],
                "roles": [{"value": "Admin", "primary": true, "type": "WindowsAzureActiveDirectoryRole"}],
                "addresses": [{"locality": "Oslo", "type": "work"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7", "department": "R&D"}
            }),
            1_000,
        );
        add(
            &db,
            T,
            "u2",
            json!({
                "userName": "bob", "externalId": "EXT-2", "active": false, "displayName": "Bob",
                "emails": [{"value": "bob@example.org", "type": "work"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "u1"}}
            }),
            2_000,
        );
        add(
            &db,
            T,
            "u3",
            json!({"userName": "carol", "active": true}),
            3_000,
        );
        // Another tenant with colliding values: must never leak into tenant A's results.
        add(
            &db,
            "ten_b",
            "u9",
            json!({
                "userName": "alice@example.com", "externalId": "ext-1", "active": true,
                "emails": [{"value": "alice@example.com", "type": "work"}]
            }),
            500,
        );
        db
    }

    fn ids(db: &Sqlite, filter: &str) -> Vec<String> {
        fixture::ids(db, Table::Users, filter)
    }

    #[test]
    fn entra_lookups_find_exactly_the_match() {
        let db = seeded();
        assert_eq!(
            ids(&db, r#"userName eq "alice@example.com""#),
            ["u1"],
            "userName is case-insensitive"
        );
        assert_eq!(
            ids(&db, r#"userName eq "7d420df3-9f3a-4c5c-9a5f-2b1a3c4d5e6f""#),
            Vec::<String>::new()
        );
        assert_eq!(ids(&db, r#"externalId eq "ext-1""#), ["u1"]);
        assert_eq!(
            ids(&db, r#"externalId eq "EXT-1""#),
            Vec::<String>::new(),
            "externalId is case-exact"
        );
        assert_eq!(ids(&db, r#"id eq "u2""#), ["u2"]);
        assert_eq!(
            ids(
                &db,
                r#"emails[type eq "work"].value eq "ALICE@example.com""#
            ),
            ["u1"]
        );
        assert_eq!(
            ids(&db, r#"emails[type eq "home"].value eq "bob@example.org""#),
            Vec::<String>::new()
        );
        assert_eq!(ids(&db, r#"id eq "u2" and manager eq "u1""#), ["u2"]);
        assert_eq!(
            ids(&db, r#"id eq "u2" and manager eq "u3""#),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&db, r#"roles[primary eq "True"].value eq "Admin""#),
            ["u1"]
        );
    }

    #[test]
    fn operators_and_logic() {
        let db = seeded();
        assert_eq!(ids(&db, r#"userName sw "AL""#), ["u1"]);
        assert_eq!(ids(&db, r#"userName ew "COM""#), ["u1"]);
        assert_eq!(ids(&db, r#"userName co "o""#), ["u1", "u2", "u3"]);
        assert_eq!(ids(&db, r#"userName ne "bob""#), ["u1", "u3"]);
        assert_eq!(ids(&db, r#"title pr"#), ["u1"]);
        assert_eq!(ids(&db, r#"emails pr"#), ["u1", "u2"]);
        assert_eq!(ids(&db, r#"addresses[locality eq "oslo"]"#), ["u1"]);
        assert_eq!(ids(&db, r#"active eq false"#), ["u2"]);
        assert_eq!(ids(&db, r#"active eq "True""#), ["u1", "u3"]);
        assert_eq!(ids(&db, r#"not (active eq true)"#), ["u2"]);
        assert_eq!(
            ids(&db, r#"not (title eq "Engineer")"#),
            ["u2", "u3"],
            "absent counts as not equal"
        );
        assert_eq!(
            ids(&db, r#"name.givenName eq "alice" or displayName eq "Bob""#),
            ["u1", "u2"]
        );
        assert_eq!(
            ids(
                &db,
                r#"(userName eq "bob" or userName eq "carol") and active eq true"#
            ),
            ["u3"]
        );
        assert_eq!(
            ids(&db, r#"emails[type eq "work" and value co "example.org"]"#),
            ["u2"]
        );
        assert_eq!(ids(&db, r#"emails.value ew ".org""#), ["u1", "u2"]);
        assert_eq!(
            ids(
                &db,
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#
            ),
            ["u1"]
        );
        assert_eq!(
            ids(
                &db,
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq 7"#
            ),
            ["u1"]
        );
        assert_eq!(
            ids(&db, r#"meta.created gt "1970-01-01T00:00:01.500Z""#),
            ["u2", "u3"]
        );
        assert_eq!(
            ids(&db, r#"meta.lastModified le "1970-01-01T00:00:02Z""#),
            ["u1", "u2"]
        );
        assert_eq!(
            ids(
                &db,
                r#"meta.resourceType eq "User" and userName eq "carol""#
            ),
            ["u3"]
        );
        assert_eq!(ids(&db, r#"groups pr"#), Vec::<String>::new());
        assert_eq!(ids(&db, r#"userName gt "bob""#), ["u3"]);
    }

    #[test]
    fn bad_comparisons_are_invalid_filter() {
        let db = seeded();
        for f in [
            r#"active eq "maybe""#,
            r#"active gt true"#,
            r#"name eq "x""#,
            r#"meta.created gt "yesterday""#,
            r#"meta.created co "2026""#,
            r#"password eq "x""#,
            r#"userName eq true"#,
        ] {
            let parsed = parse(f, &USER_TYPE).expect("parses");
            let q = fixture::first_page(Some(&parsed));
            let e = block_on(resources::list(&db, Table::Users, T, &q, true)).expect_err(f);
            assert!(matches!(e, StoreError::Filter(_)), "{f}: {e:?}");
        }
    }

    #[test]
    fn too_many_bound_values_is_a_400_not_a_500() {
        let db = seeded();
        // 30 comparisons (under the parser's 40) that bind 4 values each.
        let f = vec![r#"emails.value sw "x""#; 30].join(" or ");
        let parsed = parse(&f, &USER_TYPE).expect("parses");
        let q = fixture::first_page(Some(&parsed));
        let e =
            block_on(resources::list(&db, Table::Users, T, &q, true)).expect_err("too many params");
        assert!(
            matches!(e, StoreError::TooManyParameters { needed } if needed > MAX_PARAMS),
            "{e:?}"
        );
    }

    /// Sequential paging that seeks past the previous page's last user returns what stepping
    /// over the rows returns, page for page, with the same totals; and after a user before
    /// the page is deleted, the seek still continues where the client was, losing no one.
    #[test]
    fn seeking_past_the_previous_page_equals_stepping_over_it() {
        let db = two_tenants();
        for i in 0..23 {
            // Two users share each instant: the order's tie-break on id is part of the key.
            add(
                &db,
                T,
                &format!("p{i:02}"),
                json!({ "userName": format!("p{i}@x.org") }),
                i / 2,
            );
        }
        let list = |start: u64, after: Option<(i64, &str)>| {
            let q = ListQuery {
                filter: None,
                sort_by: None,
                descending: false,
                start_index: start,
                count: 5,
                after,
            };
            block_on(resources::list(&db, Table::Users, T, &q, true)).expect("list")
        };
        let mut after: Option<(i64, String)> = None;
        let mut start = 1;
        let mut seen = Vec::new();
        loop {
            let (total, stepped) = list(start, None);
            let (total_sought, sought) = list(start, after.as_ref().map(|(c, i)| (*c, i.as_str())));
            assert_eq!(total, 23);
            assert_eq!(total_sought, 23);
            let ids = |p: &[Stored]| p.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&sought), ids(&stepped), "page at {start}");
            let Some(last) = sought.last() else { break };
            after = Some((last.created_at, last.id.clone()));
            start += sought.len() as u64;
            seen.extend(ids(&sought));
        }
        assert_eq!(seen.len(), 23);
        // The client has read p00..p09; p03 is deleted; the next page by seek is p10..p14,
        // where stepping over 10 rows would now skip p10.
        let trail = Trail::default();
        block_on(resources::delete(
            &db,
            Table::Users,
            T,
            "p03",
            None,
            99,
            &trail,
        ))
        .expect("delete");
        let (_, sought) = list(11, Some((4, "p09")));
        assert_eq!(sought.first().map(|u| u.id.as_str()), Some("p10"));
        let (_, stepped) = list(11, None);
        assert_eq!(stepped.first().map(|u| u.id.as_str()), Some("p11"));
        // The seek is a range of users_by_created, not a walk from the tenant's start.
        let r = fixture::Recorder::new(&db);
        let q = ListQuery {
            after: Some((4, "p09")),
            ..fixture::first_page(None)
        };
        block_on(resources::list(&r, Table::Users, T, &q, false)).expect("list");
        let seen = r.seen.take();
        let page = seen.last().expect("the page");
        let plan = db.plan(&page.sql, &page.params);
        assert!(
            plan.contains("users_by_created (tenant_id=? AND (created_at,id)>(?,?))"),
            "{plan}"
        );
    }

    #[test]
    fn paging_and_sorting_are_stable_and_counted_before_paging() {
        let db = seeded();
        let page = |start, count, sort: Option<&str>, desc| {
            let attr = sort.map(|s| match USER_TYPE.resolve(s) {
                Resolved::Attr(a) => a,
                _ => panic!("{s}"),
            });
            let q = ListQuery {
                filter: None,
                sort_by: attr.as_ref(),
                descending: desc,
                start_index: start,
                count,
                after: None,
            };
            let (total, users) =
                block_on(resources::list(&db, Table::Users, T, &q, true)).expect("list");
            (total, users.into_iter().map(|u| u.id).collect::<Vec<_>>())
        };
        assert_eq!(page(1, 2, None, false), (3, vec!["u1".into(), "u2".into()]));
        assert_eq!(page(3, 2, None, false), (3, vec!["u3".into()]));
        assert_eq!(page(4, 2, None, false), (3, vec![]));
        assert_eq!(page(1, 0, None, false), (3, vec![]));
        assert_eq!(page(1, 10, Some("userName"), true).1, ["u3", "u2", "u1"]);
        assert_eq!(
            page(1, 10, Some("title"), false).1,
            ["u1", "u2", "u3"],
            "unassigned sorts last"
        );
        // By primary email, descending: bob@… > alice@…; carol has none and sorts last.
        assert_eq!(page(1, 10, Some("emails"), true).1, ["u2", "u1", "u3"]);
        assert_eq!(
            page(1, 10, Some("meta.created"), true).1,
            ["u3", "u2", "u1"]
        );
    }

    /// Entra's lookups must be index seeks, not scans of the tenant's users.
    #[test]
    fn entra_lookups_are_index_seeks() {
        fixture::assert_index_seeks(
            &seeded(),
            Table::Users,
            &[
                (
                    r#"userName eq "alice@example.com""#,
                    "users_by_user_name_key",
                ),
                (r#"externalId eq "ext-1""#, "users_by_external_id"),
                (r#"id eq "u1""#, "(tenant_id=? AND id=?)"),
                (
                    r#"emails[type eq "work"].value eq "alice@example.com""#,
                    "user_values_by_value_key",
                ),
            ],
        );
    }

    #[test]
    fn writes_keep_indexes_in_step_and_are_tenant_scoped() {
        let db = seeded();
        let u1 = block_on(resources::get(&db, Table::Users, T, "u1", true))
            .expect("get")
            .expect("exists");
        assert_eq!(
            block_on(resources::get(&db, Table::Users, "ten_b", "u1", true)).expect("get"),
            None
        );
        let mut data = u1.data.clone();
        data.insert("userName".into(), json!("alice2"));
        data.insert(
            "emails".into(),
            json!([{"value": "new@example.com", "type": "work"}]),
        );
        let Written::Done(updated) =
            block_on(update(&db, T, &u1, &data, 9_000, "w2", &Trail::default())).expect("update")
        else {
            panic!("expected the update to win");
        };
        assert_eq!(updated.version, 2);
        assert_eq!(
            ids(&db, r#"emails[type eq "work"].value eq "new@example.com""#),
            ["u1"]
        );
        assert_eq!(
            ids(&db, r#"emails.value eq "alice@example.com""#),
            Vec::<String>::new()
        );
        assert_eq!(ids(&db, r#"userName eq "ALICE2""#), ["u1"]);
        // A writer holding the old version loses and changes nothing.
        let mut stale = u1.data.clone();
        stale.insert("emails".into(), json!([{"value": "stale@example.com"}]));
        assert_eq!(
            block_on(update(&db, T, &u1, &stale, 9_500, "w3", &Trail::default())).expect("update"),
            Written::Stale
        );
        assert_eq!(
            ids(&db, r#"emails.value eq "stale@example.com""#),
            Vec::<String>::new()
        );
        assert_eq!(ids(&db, r#"emails.value eq "new@example.com""#), ["u1"]);
        // Uniqueness is per tenant and case-insensitive.
        let e = block_on(insert(
            &db,
            T,
            "u4",
            json!({"userName": "BOB"}).as_object().unwrap(),
            1,
            "w4",
            &Trail::default(),
        ))
        .expect_err("dup");
        assert!(e.is_unique_on("user_name_key"), "{e:?}");
        block_on(insert(
            &db,
            "ten_b",
            "u4",
            json!({"userName": "BOB"}).as_object().unwrap(),
            1,
            "w4",
            &Trail::default(),
        ))
        .expect("other tenant");
        // Delete: if-match, then for real, then gone; values go with it.
        assert_eq!(
            block_on(resources::delete(
                &db,
                Table::Users,
                T,
                "u1",
                Some(1),
                10_000,
                &Trail::default()
            ))
            .expect("delete"),
            Delete::Stale
        );
        assert_eq!(
            block_on(resources::delete(
                &db,
                Table::Users,
                T,
                "u1",
                Some(2),
                10_000,
                &Trail::default()
            ))
            .expect("delete"),
            Delete::Deleted
        );
        assert_eq!(
            block_on(resources::delete(
                &db,
                Table::Users,
                T,
                "u1",
                None,
                10_000,
                &Trail::default()
            ))
            .expect("delete"),
            Delete::NotFound
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM user_values WHERE user_id = 'u1'"),
            0
        );
        // The manager link of u2 now points at nobody.
        assert!(
            !block_on(resources::get(&db, Table::Users, T, "u2", true))
                .expect("get")
                .expect("u2")
                .manager_exists
        );
    }

    /// Unicode case folding: one userName however its non-ASCII letters are cased, found by
    /// every case-insensitive operator, and an email likewise.
    #[test]
    fn user_names_and_emails_compare_with_unicode_case_folding() {
        let db = two_tenants();
        add(
            &db,
            T,
            "a",
            json!({"userName": "ÄLICE@x.de", "emails": [{"value": "STRAẞE@Example.de", "type": "work"}]}),
            1,
        );
        let e = block_on(insert(
            &db,
            T,
            "b",
            json!({"userName": "älice@X.DE"})
                .as_object()
                .expect("object"),
            2,
            "w",
            &Trail::default(),
        ))
        .expect_err("the same userName");
        assert!(e.is_unique_on("user_name_key"), "{e:?}");
        for f in [
            r#"userName eq "älice@x.de""#,
            r#"userName eq "ÄLICE@X.DE""#,
            r#"userName sw "äl""#,
            r#"userName co "LICE@""#,
            r#"userName ew "X.DE""#,
            r#"userName gt "äa""#,
            r#"emails[type eq "work"].value eq "strasse@example.DE""#,
            r#"emails.value sw "straß""#,
        ] {
            assert_eq!(ids(&db, f), ["a"], "{f}");
        }
        assert_eq!(
            ids(&db, r#"userName eq "alice@x.de""#),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&db, r#"userName ne "ÄLICE@x.de""#),
            Vec::<String>::new()
        );
    }

    #[test]
    fn deleting_a_tenant_removes_its_users() {
        let db = seeded();
        block_on(crate::store::tenants::delete_tenant(&db, "a", 5))
            .expect("delete")
            .expect("existed");
        while block_on(crate::store::upkeep::purge_round(&db, "ten_a")).expect("purge") > 0 {}
        assert_eq!(
            db.count("SELECT COUNT(*) FROM users WHERE tenant_id = 'ten_a'"),
            0
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM user_values WHERE tenant_id = 'ten_a'"),
            0
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM users WHERE tenant_id = 'ten_b'"),
            1
        );
    }

    #[test]
    fn many_values_are_chunked_under_the_parameter_limit() {
        let db = two_tenants();
        let emails: Vec<Value> = (0..40)
            .map(|i| json!({"value": format!("a{i}@x.org"), "type": "other"}))
            .collect();
        let u = add(
            &db,
            T,
            "big",
            json!({"userName": "big", "emails": emails}),
            1,
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM user_values WHERE user_id = 'big'"),
            40
        );
        let Written::Done(_) =
            block_on(update(&db, T, &u, &u.data, 2, "w9", &Trail::default())).expect("update")
        else {
            panic!("stale")
        };
        assert_eq!(
            db.count("SELECT COUNT(*) FROM user_values WHERE user_id = 'big'"),
            40
        );
        assert_eq!(ids(&db, r#"emails.value eq "a39@x.org""#), ["big"]);
    }
}
