//! The store: every SQL statement the service runs lives below this module.
//!
//! Statements go through a small executor seam ([`Executor`]: one statement, or a batch that
//! commits atomically). On the Worker it is D1 (the edge's `http::d1`); in host tests it is SQLite through
//! rusqlite (`sqlite::Sqlite`), so the exact SQL that D1 runs is exercised on real SQLite.
//!
//! Rules every statement here follows:
//! - values are bound parameters, never spliced into SQL text;
//! - every statement is scoped to one tenant (by `tenant_id`, or by the tenant's subdomain
//!   through a sub-select), except the token-hash lookup that *finds* the tenant;
//! - D1 has no interactive transactions, so invariants are single statements (a conditional
//!   `INSERT … SELECT … WHERE`, unique indexes) or one `batch()`.

pub mod console;
pub mod directory;
pub mod feed;
pub mod filter_sql;
#[cfg(any(test, feature = "host-sqlite"))]
pub mod fixture;
#[cfg(test)]
mod fold_migration;
pub mod gate;
pub mod groups;
pub mod listing;
pub mod logs;
pub mod memberships;
pub mod moves;
pub mod organisations;
pub mod refs;
pub mod resources;
#[cfg(any(test, feature = "host-sqlite"))]
pub mod sqlite;
pub mod storage;
pub mod table;
pub mod tenants;
pub mod trail;
pub mod upkeep;
pub mod users;
#[cfg(test)]
mod vendor_plans;

use serde_json::Value;
use std::borrow::Cow;

use scim_core::scim::error::Error;

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Int(i64),
    Text(String),
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Text(s.to_string())
    }
}
impl From<String> for Param {
    fn from(s: String) -> Self {
        Param::Text(s)
    }
}
impl From<i64> for Param {
    fn from(i: i64) -> Self {
        Param::Int(i)
    }
}
impl From<bool> for Param {
    fn from(b: bool) -> Self {
        Param::Int(i64::from(b))
    }
}
impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// One SQL statement and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub sql: Cow<'static, str>,
    pub params: Vec<Param>,
}

impl Stmt {
    pub fn new(sql: impl Into<Cow<'static, str>>, params: Vec<Param>) -> Self {
        Stmt {
            sql: sql.into(),
            params,
        }
    }
}

/// What a statement returned: its rows as JSON objects (column name -> value), the number of
/// rows it changed, and the database's size in bytes after it, when the engine reports it (D1
/// does, in every result's `meta.size_after`: what placing organisations by size reads).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub rows: Vec<Value>,
    pub changes: u64,
    pub size_after: Option<u64>,
}

impl Outcome {
    /// Deserialize every row into `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(self) -> Result<Vec<T>, Error> {
        self.rows
            .into_iter()
            .map(|r| {
                serde_json::from_value(r).map_err(|e| Error::internal(format!("row decode: {e}")))
            })
            .collect()
    }

    /// Deserialize the first row, if any.
    pub fn first<T: serde::de::DeserializeOwned>(self) -> Result<Option<T>, Error> {
        Ok(self.decode()?.into_iter().next())
    }
}

/// The result of a conditional write (`UPDATE … WHERE version = ?`).
#[derive(Debug, PartialEq)]
pub enum Written<T> {
    Done(T),
    /// The stored version was no longer the one read, or the resource is gone.
    Stale,
}

impl<T> Written<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Written<U> {
        match self {
            Written::Done(t) => Written::Done(f(t)),
            Written::Stale => Written::Stale,
        }
    }
}

/// The result of a delete.
#[derive(Debug, PartialEq, Eq)]
pub enum Delete {
    Deleted,
    NotFound,
    /// `If-Match` named another version.
    Stale,
}

/// A database failure, classified so that constraint violations can become 4xx answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A UNIQUE constraint refused the write (the message names the index columns).
    Unique(String),
    /// The database could not run the statement this time (overloaded, restarting, the
    /// connection lost): nothing was applied, and the same request can succeed shortly.
    Unavailable(String),
    Other(String),
}

impl StoreError {
    /// Classify a driver message: SQLite and D1 both say `UNIQUE constraint failed: table.col`.
    pub fn from_message(msg: String) -> Self {
        if msg.contains("UNIQUE constraint failed") {
            StoreError::Unique(msg)
        } else {
            StoreError::Other(msg)
        }
    }
}

impl From<StoreError> for Error {
    /// A uniqueness failure that a caller did not map itself is still a 409, never a 500.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unique(m) => Error {
                cause: Some(m),
                ..Error::conflict("a resource with the same unique attribute already exists")
            },
            // 503 carries `Retry-After`: identity providers retry it, where a 500 counts
            // towards Entra's quarantine of the application.
            StoreError::Unavailable(m) => Error {
                cause: Some(m),
                ..Error::new(
                    503,
                    "the directory's database was briefly unavailable; retry the request",
                )
            },
            StoreError::Other(m) => Error::internal(m),
        }
    }
}

/// The seam between the store and a SQL engine.
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait Executor {
    /// Run one statement and return its rows (if any) and change count.
    async fn query(&self, stmt: Stmt) -> Result<Outcome, StoreError>;

    /// Run statements in order as one transaction: all commit or none do.
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, StoreError>;
}
