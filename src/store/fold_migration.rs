//! Tests of migration `0005_case_fold_keys.sql`: its table of single-character foldings is
//! exactly what [`scim_core::scim::fold`] computes, and the keys it fills for rows written before
//! it existed are the keys the Worker computes for new rows.

use std::path::PathBuf;

use super::sqlite::Sqlite;
use super::{Executor, Stmt};
use pollster::block_on;
use scim_core::scim::fold::fold;

const MIGRATION: &str = "0005_case_fold_keys.sql";
const BEGIN: &str = "-- BEGIN case_fold (generated; see store::fold_migration tests)\n";
const END: &str = "-- END case_fold\n";

fn migration_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(MIGRATION)
}

/// Every character whose case folding is not itself, with its folding.
fn foldings() -> Vec<(char, String)> {
    (0..=0x10FFFFu32)
        .filter_map(char::from_u32)
        .map(|c| (c, fold(&c.to_string())))
        .filter(|(c, f)| f.chars().ne(std::iter::once(*c)))
        .collect()
}

/// The generated block: INSERT statements of 250 rows (well under D1's 100 KB statement).
fn table_sql() -> String {
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut out = String::new();
    for chunk in foldings().chunks(250) {
        out.push_str("INSERT INTO case_fold (ch, folded) VALUES\n");
        let rows: Vec<String> = chunk
            .iter()
            .map(|(c, f)| format!("({}, {})", lit(&c.to_string()), lit(f)))
            .collect();
        out.push_str(&rows.join(",\n"));
        out.push_str(";\n");
    }
    out
}

/// The migration's table is generated from the folding the Worker uses. After a `unicase`
/// upgrade that changes folding this fails: existing keys then need a new migration, and this
/// one must stay as it was applied. `SCIM_EDGE_WRITE_FOLD_TABLE=1` (re)writes the block, for
/// the commit that creates the migration only.
#[test]
fn the_migration_table_is_the_folding_the_worker_uses() {
    let path = migration_path();
    let text = std::fs::read_to_string(&path).expect("migration");
    let (head, rest) = text.split_once(BEGIN).expect("BEGIN marker");
    let (block, tail) = rest.split_once(END).expect("END marker");
    let expected = table_sql();
    if std::env::var_os("SCIM_EDGE_WRITE_FOLD_TABLE").is_some() {
        std::fs::write(&path, format!("{head}{BEGIN}{expected}{END}{tail}")).expect("write");
        return;
    }
    assert!(
        block == expected,
        "{MIGRATION}'s case_fold table differs from scim::fold ({} foldings expected)",
        foldings().len()
    );
}

fn run(db: &Sqlite, sql: &str) {
    block_on(db.query(Stmt::new(sql.to_string(), vec![]))).expect(sql);
}

fn strings(db: &Sqlite, sql: &str) -> Vec<(String, String)> {
    block_on(db.query(Stmt::new(sql.to_string(), vec![])))
        .expect(sql)
        .rows
        .iter()
        .map(|r| {
            (
                r["a"].as_str().unwrap_or_default().to_string(),
                r["b"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Rows written under the old schema get the keys new rows get: every folding character
/// (in names of 100 characters), a few plain ones, and two userNames that differ only in
/// non-ASCII case.
#[test]
fn the_migration_fills_the_keys_the_worker_computes() {
    let db = Sqlite::migrated_before(MIGRATION);
    run(&db, "INSERT INTO tenants (id, subdomain, name, provisioning_enabled, created_at, updated_at) VALUES ('t', 't', 't', 1, 0, 0)");
    let all: String = foldings().iter().map(|(c, _)| *c).collect();
    let chars: Vec<char> = all.chars().collect();
    let mut names: Vec<String> = chars.chunks(100).map(|c| c.iter().collect()).collect();
    names.extend(
        [
            "Plain.ASCII@Example.COM",
            "ÄLICE@x.de",
            "Straße",
            "ΣΊΣΥΦΟΣ",
            "",
            "x'y",
        ]
        .map(String::from),
    );
    let insert_user = |id: &str, name: &str, at: i64| {
        block_on(db.query(Stmt::new(
            "INSERT INTO users (tenant_id, id, user_name, active, data, version, write_id, created_at, updated_at) \
             VALUES ('t', ?, ?, 1, '{}', 1, 'w', ?, ?)",
            vec![id.into(), name.into(), at.into(), at.into()],
        )))
        .expect("user");
    };
    for (i, name) in names.iter().enumerate() {
        insert_user(&format!("u{i}"), name, 10);
        block_on(db.query(Stmt::new(
            "INSERT INTO groups (tenant_id, id, display_name, data, version, write_id, created_at, updated_at) \
             VALUES ('t', ?, ?, '{}', 1, 'w', 10, 10)",
            vec![format!("g{i}").into(), name.as_str().into()],
        )))
        .expect("group");
        for attr in ["emails", "photos"] {
            block_on(db.query(Stmt::new(
                "INSERT INTO user_values (tenant_id, user_id, attr, value) VALUES ('t', ?, ?, ?)",
                vec![format!("u{i}").into(), attr.into(), name.as_str().into()],
            )))
            .expect("value");
        }
    }
    // Colliding under Unicode folding only: both existed; the older keeps the key.
    insert_user("old", "BJÖRN@x.de", 1);
    insert_user("new", "björn@x.de", 2);
    db.execute_file(&migration_path());

    for (name, key) in strings(
        &db,
        "SELECT user_name AS a, user_name_key AS b FROM users WHERE id NOT IN ('old', 'new')",
    ) {
        assert_eq!(key, fold(&name), "userName {name:?}");
    }
    for (name, key) in strings(
        &db,
        "SELECT display_name AS a, display_name_key AS b FROM groups",
    ) {
        assert_eq!(key, fold(&name), "displayName {name:?}");
    }
    for (value, key) in strings(
        &db,
        "SELECT value AS a, value_key AS b FROM user_values WHERE attr = 'emails'",
    ) {
        assert_eq!(key, fold(&value), "email {value:?}");
    }
    for (value, key) in strings(
        &db,
        "SELECT value AS a, value_key AS b FROM user_values WHERE attr = 'photos'",
    ) {
        assert_eq!(key, value, "photos are case-exact");
    }
    let pair = strings(
        &db,
        "SELECT id AS a, user_name_key AS b FROM users WHERE id IN ('old', 'new') ORDER BY id",
    );
    assert_eq!(
        pair,
        vec![
            ("new".to_string(), format!("{}\u{1}new", fold("björn@x.de"))),
            ("old".to_string(), fold("björn@x.de")),
        ]
    );
    // The keys are now unique per tenant.
    let dup = block_on(db.query(Stmt::new(
        "INSERT INTO users (tenant_id, id, user_name, user_name_key, active, data, version, write_id, created_at, updated_at) \
         VALUES ('t', 'x', 'Björn@X.DE', ?, 1, '{}', 1, 'w', 3, 3)",
        vec![fold("Björn@X.DE").into()],
    )));
    assert!(dup.is_err(), "the folded userName is unique");
}
