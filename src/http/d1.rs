//! The [`Executor`] on Cloudflare D1.
//!
//! `batch()` is D1's transaction: the statements run in order and roll back together.
//! Integers are bound as JS numbers (exact up to 2^53, enough for millisecond timestamps) and come
//! back as `i64` when they are safe integers.
//!
//! Results cross from JavaScript as one JSON text per call, a batch's together (`JSON.stringify`,
//! parsed by `serde_json`), rather than value by value: a row of a dozen columns is not dozens
//! of calls into the runtime, nor a batch of eight statements eight, and the wasm carries no
//! second deserializer for rows.

use serde_json::Value;
use worker::js_sys::{Array, JSON};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::types::{D1Database as Database, D1PreparedStatement as Prepared};
use worker::D1Database;

use super::meter::{Binding, Meter};
use crate::service::{Executor, Outcome, Param, Stmt, StoreError};

/// A D1 database, and the meter of the request that uses it (every call is counted there).
pub struct D1 {
    db: D1Database,
    meter: Meter,
}

/// The largest integer a JS number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

impl D1 {
    pub fn new(db: D1Database, meter: Meter) -> D1 {
        D1 { db, meter }
    }

    fn database(&self) -> &Database {
        self.db.as_ref().unchecked_ref()
    }

    fn prepare(&self, stmt: &Stmt) -> Result<Prepared, StoreError> {
        let params: Array = stmt
            .params
            .iter()
            .map(|p| match p {
                Param::Null => Ok(JsValue::NULL),
                // A larger integer would arrive as an inexact float (SQLite then refuses it
                // in LIMIT/OFFSET); callers clamp client numbers well below this.
                Param::Int(i) if i.unsigned_abs() > MAX_SAFE_INTEGER => Err(StoreError::Other(
                    format!("integer {i} is beyond what D1 binds exactly"),
                )),
                Param::Int(i) => Ok(JsValue::from_f64(*i as f64)),
                Param::Text(s) => Ok(JsValue::from_str(s)),
            })
            .collect::<Result<_, _>>()?;
        let prepared = self
            .database()
            .prepare(stmt.sql.as_ref())
            .map_err(failure)?;
        prepared.bind(params).map_err(failure)
    }
}

/// D1's result (or a batch's results) as one JSON text, parsed: one call into the runtime
/// for a whole batch, not one per statement.
fn parsed(result: &JsValue) -> Result<Value, StoreError> {
    let text: String = JSON::stringify(result).map_err(failure)?.into();
    serde_json::from_str(&text).map_err(|e| StoreError::Other(format!("D1 result: {e}")))
}

/// One statement's result: its rows (`results`), and what it changed (`meta.changes`,
/// `meta.size_after`); either may be missing.
fn outcome(result: Value) -> Result<Outcome, StoreError> {
    let Value::Object(mut result) = result else {
        return Err(StoreError::Other("D1 result: not an object".into()));
    };
    let meta = |name: &str| {
        result
            .get("meta")
            .and_then(|m| m.get(name))
            .and_then(Value::as_u64)
    };
    let (changes, size_after) = (meta("changes").unwrap_or(0), meta("size_after"));
    let rows = match result.remove("results") {
        Some(Value::Array(rows)) => rows,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(StoreError::Other("D1 result: results is not a list".into())),
    };
    Ok(Outcome {
        rows,
        changes,
        size_after,
    })
}

/// D1 reports failures as JS `Error`s whose `cause` carries SQLite's message; keep both so that
/// `UNIQUE constraint failed` is recognised and the log shows the real cause.
fn failure(e: JsValue) -> StoreError {
    let msg = js_error_text(&e);
    if is_transient(&msg) {
        StoreError::Unavailable(msg)
    } else {
        StoreError::from_message(msg)
    }
}

/// The failures D1's "Debug D1" error list says to retry: the database object restarting or
/// reset, its queue full ("D1 DB is overloaded"), the connection lost, an operation timing
/// out; SQLite's own "database is locked" (`SQLITE_BUSY`: another connection holds the file,
/// as a second local process does). Everything else (a constraint, an SQL error) is not cured by retrying.
fn is_transient(msg: &str) -> bool {
    const MARKERS: [&str; 9] = [
        "overloaded",
        "SQLITE_BUSY",
        "database is locked",
        "Network connection lost",
        "reset",
        "timed out",
        "timeout",
        "Too many requests",
        "try again",
    ];
    MARKERS.iter().any(|m| msg.contains(m)) && !msg.contains("constraint failed")
}

fn js_error_text(v: &JsValue) -> String {
    match v.dyn_ref::<worker::js_sys::Error>() {
        Some(err) => {
            let mut text: String = err.message().into();
            if let Some(cause) = err.cause().dyn_ref::<worker::js_sys::Error>() {
                text.push_str(": ");
                text.push_str(&String::from(cause.message()));
            }
            text
        }
        None => format!("{v:?}"),
    }
}

impl Executor for D1 {
    async fn query(&self, stmt: Stmt) -> Result<Outcome, StoreError> {
        let promise = self.prepare(&stmt)?.all().map_err(failure)?;
        let result = self.meter.timed(Binding::D1, JsFuture::from(promise));
        outcome(parsed(&result.await.map_err(failure)?)?)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, StoreError> {
        let prepared = stmts
            .iter()
            .map(|s| self.prepare(s).map(JsValue::from))
            .collect::<Result<Array, _>>()?;
        let promise = self.database().batch(prepared).map_err(failure)?;
        let results = self.meter.timed(Binding::D1, JsFuture::from(promise));
        match parsed(&results.await.map_err(failure)?)? {
            Value::Array(results) => results.into_iter().map(outcome).collect(),
            _ => Err(StoreError::Other(
                "D1 batch: its results are not a list".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::scim::error::Error;

    #[test]
    fn d1s_retryable_failures_become_503_and_sql_failures_do_not() {
        for msg in [
            "D1_ERROR: D1 DB is overloaded. Too many requests queued.",
            "D1_ERROR: Network connection lost.",
            "D1_ERROR: D1 DB reset because its code was updated.",
            "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset.",
            "D1_ERROR: NOSENTRY database is locked: SQLITE_BUSY: NOSENTRY database is locked: SQLITE_BUSY",
        ] {
            assert!(is_transient(msg), "{msg}");
            let e = Error::from(StoreError::Unavailable(msg.into()));
            assert_eq!(e.status, 503, "{msg}");
        }
        for msg in [
            "D1_ERROR: UNIQUE constraint failed: users.tenant_id, users.user_name_key: SQLITE_CONSTRAINT",
            "D1_ERROR: no such table: users: SQLITE_ERROR",
            "D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'",
        ] {
            assert!(!is_transient(msg), "{msg}");
        }
    }
}
