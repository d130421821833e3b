//! The request logic: what a SCIM or admin request does, between the edge (which parses the
//! request and renders the reply) and the store (which owns every SQL statement).
//!
//! Nothing here imports `worker`. Every function is generic over the store's [`Executor`] and
//! over a [`Runtime`] (the clock, random ids, and the pause between retries), so the whole logic
//! of a request runs in host tests on SQLite exactly as it runs on D1:
//!
//! | module | owns |
//! |---|---|
//! | [`resources`] | what Users and Groups share: the conditional-write loop with its retries, `If-Match` and `If-None-Match`, 404 against 412 |
//! | [`users`], [`groups`] | the `/Users` and `/Groups` operations; for groups, member resolution |
//! | [`search`] | `POST /.search` across both resource types |
//! | [`auth`] | authenticating a SCIM request: token to organisation, through an auth cache |
//! | [`tenants`] | the admin API: organisations and their Secret Tokens |
//!
//! [`Executor`]: crate::store::Executor

pub mod auth;
pub mod groups;
pub mod resources;
pub mod search;
pub mod tenants;
#[cfg(any(test, feature = "host-sqlite"))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod users;

use crate::scim::error::Result;

/// What a request needs of the platform besides the store: time, randomness, and waiting.
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait Runtime {
    /// The request's time, Unix milliseconds (one value for the whole request).
    fn now(&self) -> i64;
    /// A random identifier with a prefix (`w_…` write tags, `tok_…`, `ten_…`).
    fn random_id(&self, prefix: &str) -> Result<String>;
    /// A random (version 4) UUID: a new resource's id.
    fn random_uuid(&self) -> Result<String>;
    /// A short pause before retrying a conditional write that lost a race; it grows with the
    /// attempt, so that racing writers spread out.
    async fn pause(&self, attempt: u32);
}

/// One SCIM request's reach: its store, its runtime, and the organisation it acts for.
pub struct Scope<'a, E, R> {
    pub db: &'a E,
    pub rt: &'a R,
    pub tenant_id: &'a str,
}
