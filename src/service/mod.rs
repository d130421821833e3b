//! The request logic: what a SCIM or admin request does, between the edge (which parses the
//! request and renders the reply) and the store (which owns every SQL statement).
//!
//! Nothing here imports `worker`. Every function is generic over the store's [`Executor`] and
//! over a [`Runtime`] (the clock, random ids, and the pause between retries), so the whole logic
//! of a request runs in host tests on SQLite exactly as it runs on D1:
//!
//! | module | owns |
//! |---|---|
//! | [`operations`] | the `/Users` and `/Groups` operations as the edge calls them: what each tells the log, the 204 of a group PATCH, the paging anchors |
//! | [`resources`] | what Users and Groups share: the conditional-write loop with its retries, `If-Match` and `If-None-Match`, 404 against 412 |
//! | [`users`], [`groups`] | what differs between the two resource types: creation, replacement, PATCH, the events a change records, a taken name; for groups, member resolution |
//! | [`search`] | `POST /.search` across both resource types |
//! | [`auth`] | authenticating a SCIM request inside its own D1 calls: how a request behind the gate settles, and why a refused one was refused |
//! | [`moves`] | moving a tenant to another shard online: copy, catch up, switch, clean up |
//! | [`shards`] | tenants over several D1 databases: the catalog, placement, the shard a request uses, the feed's cursor |
//! | [`tenants`] | the admin API: tenants and their Secret Tokens |
//! | [`keys`] | the admin API's keys: scopes, a tenant they may be bound to, authenticating a request |
//! | [`roles`] | roles from groups: the app's declared roles, each tenant's mappings and default role |
//! | [`oauth`] | OAuth 2.0 client credentials: a tenant's client, secrets and federated credential, and the token endpoint's grant |
//! | [`console`] | the tenant admin's console: one-time links, sessions, CSRF |
//! | [`log`] | the provisioning-log entry of a SCIM request, and what it may hold |
//! | [`host_app`] | the host app's reads: the change feed, the directory, the log and its summary |
//! | [`isolate`] | the bounded maps an isolate remembers between requests |
//! | [`upkeep`] | the scheduled work: retention, and purging deleted tenants in chunks |
//!
//! [`Executor`]: crate::store::Executor

pub mod auth;
pub mod console;
pub mod groups;
pub mod host_app;
/// The host app's keys and roles, by their names here too.
pub use host_app::{keys, roles, webhooks};
pub mod isolate;
pub mod log;
pub mod moves;
pub mod oauth;
pub mod operations;
pub mod resources;
pub mod search;
#[cfg(test)]
mod shard_tests;
pub mod shards;
pub mod tenants;
#[cfg(any(test, feature = "host-sqlite"))]
pub mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod trail_tests;
pub mod upkeep;
pub mod users;

/// The seam the edge plugs a database into (D1 on the Worker), re-exported so that the edge
/// names nothing of the store itself.
pub use crate::store::{Executor, Outcome, Param, Stmt, StoreError};

use crate::store::listing::MAX_PARAMS;
use crate::store::log::LogEntry;
use crate::store::table::Table;
use log::RequestLog;
use scim_core::scim::error::{Error, Result, ScimType};
use scim_core::scim::resource::Data;

/// The store's outcomes as SCIM errors, where a caller did not map one itself: a uniqueness
/// refusal is still a 409 and never a 500 (a caller that knows which name was taken says so), a
/// database briefly unavailable a 503 with `Retry-After`, which identity providers retry where
/// a 500 counts towards Entra's quarantine of the application.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unique { index } => Error {
                cause: Some(index),
                ..Error::conflict("a resource with the same unique attribute already exists")
            },
            StoreError::Unavailable(m) => Error {
                cause: Some(m),
                ..Error::new(
                    503,
                    "the directory's database was briefly unavailable; retry the request",
                )
            },
            StoreError::TooManyParameters { needed } => Error {
                cause: Some(format!("{needed} bound values")),
                ..Error::bad_request(
                    ScimType::InvalidFilter,
                    format!("the filter needs more than {MAX_PARAMS} bound values; simplify it"),
                )
            },
            StoreError::Filter(why) => Error::bad_request(ScimType::InvalidFilter, why),
            StoreError::Sort(why) => Error::bad_request(ScimType::InvalidValue, why),
            StoreError::Gone(what) => Error::not_found(what),
            StoreError::Other(m) => Error::internal(m),
        }
    }
}

/// Run `futures` at once (one D1 call to each shard, say) and give their outputs in order:
/// `futures::join_all`'s job, without the weight it adds to the wasm.
pub(crate) async fn all_at_once<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    use std::task::Poll;
    let mut slots: Vec<_> = futures.into_iter().map(|f| (Box::pin(f), None)).collect();
    std::future::poll_fn(move |cx| {
        let mut waiting = false;
        for (future, out) in slots.iter_mut().filter(|(_, out)| out.is_none()) {
            match future.as_mut().poll(cx) {
                Poll::Ready(v) => *out = Some(v),
                Poll::Pending => waiting = true,
            }
        }
        if waiting {
            return Poll::Pending;
        }
        Poll::Ready(slots.iter_mut().filter_map(|(_, out)| out.take()).collect())
    })
    .await
}

/// A new secret (`prefix` and 32 random bytes from getrandom): shown once, stored as its hash.
pub fn new_secret(prefix: &str) -> Result<String> {
    scim_core::tenancy::token::secret(prefix)
        .map_err(|e| Error::internal(format!("getrandom: {}", e.0)))
}

/// What a request needs of the platform besides the store: time, randomness, and waiting.
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait Runtime {
    /// The request's time, Unix milliseconds (one value for the whole request).
    fn now(&self) -> i64;
    /// The time now, which moves during the request (for durations).
    fn clock(&self) -> i64 {
        self.now()
    }
    /// A random identifier with a prefix (`w_…` write tags, `tok_…`, `ten_…`).
    fn random_id(&self, prefix: &str) -> Result<String>;
    /// A random (version 4) UUID: a new resource's id.
    fn random_uuid(&self) -> Result<String>;
    /// A short pause before retrying a conditional write that lost a race; it grows with the
    /// attempt, so that racing writers spread out.
    async fn pause(&self, attempt: u32);
    /// Wait `ms` milliseconds (a move waiting out its grace before the cleanup).
    async fn sleep(&self, ms: i64);
}

/// One SCIM request's reach: its store, its runtime, the tenant it acts for, and its
/// provisioning-log entry (none where nothing is logged, as in most tests).
pub struct Scope<'a, E, R> {
    pub db: &'a E,
    pub rt: &'a R,
    pub tenant_id: &'a str,
    pub log: Option<&'a RequestLog>,
}

impl<E, R: Runtime> Scope<'_, E, R> {
    /// The log entry a write's batch carries, with its summary (`{}`: the resource's name).
    pub fn log_entry(&self, summary: &str) -> Option<LogEntry> {
        Some(self.log?.entry(summary.to_string(), self.rt.clock()))
    }

    /// The batch that carried [`Scope::log_entry`] committed.
    pub fn committed(&self) {
        if let Some(a) = self.log {
            a.committed();
        }
    }

    /// Name the resource in the request's log entry, from its data (its userName or
    /// displayName).
    pub fn name(&self, table: Table, data: &Data) {
        if let Some(a) = self.log {
            a.name(data.get(table.name_attribute()).and_then(|v| v.as_str()));
        }
    }

    /// A warning for the request's log entry.
    pub fn warn(&self, warning: String) {
        if let Some(a) = self.log {
            a.warn(warning);
        }
    }
}
