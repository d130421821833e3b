//! The [`Executor`] on SQLite through rusqlite, for host tests: the same SQL and migrations that
//! D1 runs, executed by a real SQLite engine.
//!
//! Compiled only for unit tests and with the `host-sqlite` feature (the fuzzer), never into the
//! Worker; its set-up helpers may therefore stop the test with a panic.
#![allow(clippy::expect_used, clippy::panic)] // test support: a broken fixture database ends the test

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

use super::{Executor, Outcome, Param, Stmt, StoreError};

/// A connection; its clones share it (several handles to one database, as D1's are).
#[derive(Clone)]
pub struct Sqlite(Arc<Mutex<Connection>>);

impl Sqlite {
    /// An in-memory database with every migration in `migrations/` applied, in name order.
    pub fn migrated() -> Self {
        Self::migrated_before("~")
    }

    /// An in-memory database with the migrations whose file names sort before `stop` applied
    /// (to test a later migration on data written by an earlier schema).
    pub fn migrated_before(stop: &str) -> Self {
        let conn = Connection::open_in_memory().expect("open sqlite");
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .expect("pragma");
        let db = Sqlite(Arc::new(Mutex::new(conn)));
        for f in Self::migration_files() {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name < stop {
                db.execute_file(&f);
            }
        }
        db
    }

    /// Every migration file, in name order.
    pub fn migration_files() -> Vec<std::path::PathBuf> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("migrations dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        files
    }

    /// Run a migration file.
    pub fn execute_file(&self, file: &std::path::Path) {
        let sql = std::fs::read_to_string(file).expect("read migration");
        self.execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }

    /// Run statements without parameters (set-up and clean-up in tests).
    pub fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        let conn = self.0.lock().expect("sqlite lock");
        conn.execute_batch(sql)
    }

    fn run(conn: &Connection, stmt: &Stmt) -> Result<Outcome, StoreError> {
        let err = |e: rusqlite::Error| StoreError::from_message(e.to_string());
        let mut prepared = conn.prepare(&stmt.sql).map_err(err)?;
        let names: Vec<String> = prepared
            .column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let readonly = prepared.readonly();
        let params: Vec<rusqlite::types::Value> = stmt
            .params
            .iter()
            .map(|p| match p {
                Param::Null => Ok(rusqlite::types::Value::Null),
                // As D1 does (see `d1.rs`): a larger integer is not bound exactly there.
                Param::Int(i) if i.unsigned_abs() > (1 << 53) - 1 => Err(StoreError::Other(
                    format!("integer {i} is beyond what D1 binds exactly"),
                )),
                Param::Int(i) => Ok(rusqlite::types::Value::Integer(*i)),
                Param::Text(s) => Ok(rusqlite::types::Value::Text(s.clone())),
            })
            .collect::<Result<_, _>>()?;
        let mut rows = prepared
            .query(rusqlite::params_from_iter(params))
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mut obj = Map::new();
            for (i, name) in names.iter().enumerate() {
                let v = match row.get_ref(i).map_err(err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::from(n),
                    ValueRef::Real(f) => Value::from(f),
                    ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => Value::Null,
                };
                obj.insert(name.clone(), v);
            }
            out.push(Value::Object(obj));
        }
        drop(rows);
        let changes = if readonly { 0 } else { conn.changes() };
        Ok(Outcome {
            rows: out,
            changes,
            size_after: None,
        })
    }
}

impl Sqlite {
    /// `EXPLAIN QUERY PLAN` of a statement, one line per step.
    pub fn plan(&self, sql: &str, params: &[Param]) -> String {
        let out = pollster::block_on(self.query(Stmt::new(
            format!("EXPLAIN QUERY PLAN {sql}"),
            params.to_vec(),
        )))
        .expect("explain");
        out.rows
            .iter()
            .map(|r| r["detail"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The names of a table's columns.
    pub fn columns(&self, table: &str) -> Vec<String> {
        let out = pollster::block_on(self.query(Stmt::new(
            format!("SELECT name FROM pragma_table_info('{table}')"),
            vec![],
        )))
        .expect("table_info");
        out.rows
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect()
    }

    /// The columns of each index of `table`, in index order.
    pub fn indexes(&self, table: &str) -> Vec<Vec<String>> {
        let names = |sql: String| -> Vec<String> {
            pollster::block_on(self.query(Stmt::new(sql, vec![])))
                .expect("pragma")
                .rows
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .collect()
        };
        names(format!("SELECT name FROM pragma_index_list('{table}')"))
            .into_iter()
            .map(|index| names(format!("SELECT name FROM pragma_index_info('{index}')")))
            .collect()
    }

    /// The single integer a `SELECT COUNT(*) …` returns.
    pub fn count(&self, sql: &str) -> i64 {
        let conn = self.0.lock().expect("sqlite lock");
        conn.query_row(sql, [], |r| r.get(0)).expect("count")
    }
}

impl Executor for Sqlite {
    async fn query(&self, stmt: Stmt) -> Result<Outcome, StoreError> {
        let conn = self.0.lock().expect("sqlite lock");
        Self::run(&conn, &stmt)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, StoreError> {
        let mut conn = self.0.lock().expect("sqlite lock");
        let tx = conn
            .transaction()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let mut outs = Vec::with_capacity(stmts.len());
        for s in &stmts {
            outs.push(Self::run(&tx, s)?); // dropping `tx` on error rolls back
        }
        tx.commit().map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(outs)
    }
}
