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

pub mod catalog;
/// The host app's modules, by their names here too: every layer reaches them as `store::trail`, …
pub use host_app::{alerts, directory, feed, keys, log, roles, trail, webhooks};
pub mod console;
pub mod filter_sql;
#[cfg(any(test, feature = "host-sqlite"))]
pub mod fixture;
#[cfg(test)]
mod fold_migration;
pub mod gate;
pub mod groups;
pub mod host_app;
pub mod listing;
pub mod memberships;
pub mod moves;
pub mod oauth;
pub mod refs;
pub mod resources;
pub mod row;
#[cfg(any(test, feature = "host-sqlite"))]
pub mod sqlite;
pub mod storage;
pub mod table;
pub mod tenants;
pub mod upkeep;
pub mod users;

use serde_json::Value;
use std::borrow::Cow;

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
/// does, in every result's `meta.size_after`: what placing tenants by size reads).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub rows: Vec<Value>,
    pub changes: u64,
    pub size_after: Option<u64>,
}

impl Outcome {
    /// Every row read into `T`.
    pub fn decode<T: row::FromRow>(self) -> Result<Vec<T>> {
        self.rows
            .into_iter()
            .map(|r| T::from_row(&mut row::Row::new(r)?))
            .collect()
    }

    /// The first row read into `T`, if any.
    pub fn first<T: row::FromRow>(self) -> Result<Option<T>> {
        match self.rows.into_iter().next() {
            Some(r) => T::from_row(&mut row::Row::new(r)?).map(Some),
            None => Ok(None),
        }
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

/// What a store function answers: its value, or a [`StoreError`].
pub type Result<T> = std::result::Result<T, StoreError>;

/// Why a store function did not give its value: outcomes in the database's own terms, never an
/// HTTP status. The services map each to the error of their surface (SCIM, admin API, OAuth):
/// the store cannot know whether a taken name is a SCIM `uniqueness` 409 or an admin API's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A UNIQUE index refused the write; `index` names its columns as SQLite and D1 report
    /// them (`users.tenant_id, users.user_name_key`).
    Unique { index: String },
    /// The database could not run the statement this time (overloaded, restarting, the
    /// connection lost): nothing was applied, and the same request can succeed shortly.
    Unavailable(String),
    /// The statement would bind more values than D1 allows ([`listing::MAX_PARAMS`]).
    TooManyParameters { needed: usize },
    /// A filter the store cannot run as SQL (RFC 7644 §3.4.2.2's operators on an attribute
    /// they do not apply to, say): the reason, in words that quote the client briefly.
    Filter(String),
    /// A `sortBy` the store cannot order by, and why.
    Sort(String),
    /// What the statement needed is not there (a tenant no longer on its shard).
    Gone(String),
    /// Anything else: a bug or a schema out of step; the detail is for the log only.
    Other(String),
}

impl StoreError {
    /// Classify a driver message: SQLite and D1 both say `UNIQUE constraint failed: table.col`.
    pub fn from_message(msg: String) -> Self {
        const UNIQUE: &str = "UNIQUE constraint failed: ";
        match msg.split_once(UNIQUE) {
            Some((_, rest)) => StoreError::Unique {
                // D1 appends `: SQLITE_CONSTRAINT` (and may repeat the message after it).
                index: rest
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            },
            None => StoreError::Other(msg),
        }
    }

    /// The outcome in words (a filter's or sort's reason keeps its quoted parts marked, as
    /// [`scim_core::scim::error::quote`] made them).
    pub fn detail(&self) -> String {
        match self {
            StoreError::Unique { index } => format!("UNIQUE constraint failed: {index}"),
            StoreError::TooManyParameters { needed } => format!("{needed} bound values"),
            StoreError::Unavailable(m)
            | StoreError::Filter(m)
            | StoreError::Sort(m)
            | StoreError::Gone(m)
            | StoreError::Other(m) => m.clone(),
        }
    }

    /// Whether a UNIQUE refusal came from the index on `column` (`user_name_key`).
    pub fn is_unique_on(&self, column: &str) -> bool {
        matches!(self, StoreError::Unique { index } if index.split(", ").any(|c| c.ends_with(&format!(".{column}"))))
    }
}

/// The seam between the store and a SQL engine.
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait Executor {
    /// Run one statement and return its rows (if any) and change count.
    async fn query(&self, stmt: Stmt) -> Result<Outcome>;

    /// Run statements in order as one transaction: all commit or none do.
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>>;
}
