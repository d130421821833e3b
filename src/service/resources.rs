//! What the `/Users` and `/Groups` operations share: reading with `If-None-Match`, the
//! conditional-write loop with `If-Match`, and deleting with 404 told from 412 (RFC 7644
//! §3.14), written once for every resource type ([`Resource`] says what differs).
//!
//! D1 has no interactive transactions: a write reads the resource, computes the new state from
//! it, and writes on the condition that its version has not moved (`UPDATE … WHERE version =
//! ?`). A writer that loses the race reads again and recomputes, so concurrent writers never
//! lose each other's changes; with `If-Match` the client asked for that version only, and a
//! moved version is `412` instead.

use super::{Runtime, Scope};
use crate::scim::error::ScimType;
use crate::scim::error::{quote, Error, Result};
use crate::scim::etag;
use crate::scim::filter::{self, Filter};
use crate::scim::query::ListParams;
use crate::scim::schema::{AttrRef, Resolved, ResourceType};
use crate::store::listing::ListQuery;
use crate::store::{Delete, Executor, Written};

/// Attempts at a conditional write before giving up under contention.
pub const MAX_ATTEMPTS: u32 = 32;

/// What differs between resource types for the shared operations.
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait Resource {
    /// The resource as stored.
    type Stored;
    /// A change computed from the stored resource, for one conditional write.
    type Change;
    /// What a successful write gives back.
    type Written;
    /// The resource type's name, for error details (`User`, `Group`).
    const NAME: &'static str;

    fn version(stored: &Self::Stored) -> i64;

    /// The resource as a write starts from.
    async fn read<E: Executor>(db: &E, tenant_id: &str, id: &str) -> Result<Option<Self::Stored>>;

    /// Write `change`, conditionally on the version of `current` where the change says so.
    async fn write<E: Executor>(
        db: &E,
        tenant_id: &str,
        current: &Self::Stored,
        change: &Self::Change,
        now: i64,
        write_id: &str,
    ) -> Result<Written<Self::Written>>;

    async fn delete<E: Executor>(
        db: &E,
        tenant_id: &str,
        id: &str,
        if_version: Option<i64>,
        now: i64,
    ) -> Result<Delete>;
}

pub fn not_found<K: Resource>(id: &str) -> Error {
    Error::not_found(format!("{} '{}' not found", K::NAME, quote(id)))
}

pub fn precondition_failed() -> Error {
    Error::new(
        412,
        "the resource has changed: its version does not match If-Match",
    )
}

/// Too many concurrent writers won the race; the client should retry shortly.
pub fn contention(name: &str) -> Error {
    Error::new(
        503,
        format!(
            "the {} is being changed by many requests at once; retry",
            name.to_ascii_lowercase()
        ),
    )
}

/// A read under `If-None-Match`.
#[derive(Debug, PartialEq)]
pub enum Fetched<T> {
    Found(T),
    /// `If-None-Match` named the current version: `304 Not Modified` (RFC 7644 §3.14).
    NotModified(i64),
}

/// The answer to a read of `stored` at `version` under `If-None-Match`.
pub fn fetched<T>(stored: T, version: i64, if_none_match: Option<&str>) -> Fetched<T> {
    match if_none_match {
        Some(h) if etag::names(h, version) => Fetched::NotModified(version),
        _ => Fetched::Found(stored),
    }
}

/// What a write loop ended with.
#[derive(Debug, PartialEq)]
pub enum Outcome<S, W> {
    /// The change was nothing: the resource as it is.
    Unchanged(S),
    Written(W),
}

/// Read, compute the change from the current state, and write it only if nothing changed in
/// between; otherwise read again and recompute. With `If-Match`, a version that does not match
/// (before or during the write) is 412. `first` is the resource if the caller has just read it
/// (saving the first read).
pub async fn write<K: Resource, E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    if_match: Option<&str>,
    first: Option<K::Stored>,
    compute: impl Fn(&K::Stored) -> Result<Option<K::Change>>,
) -> Result<Outcome<K::Stored, K::Written>> {
    let mut first = first;
    for attempt in 0..MAX_ATTEMPTS {
        let current = match first.take() {
            Some(c) => c,
            None => K::read(s.db, s.tenant_id, id)
                .await?
                .ok_or_else(|| not_found::<K>(id))?,
        };
        if !etag::if_match_allows(if_match, K::version(&current)) {
            return Err(precondition_failed());
        }
        let Some(change) = compute(&current)? else {
            return Ok(Outcome::Unchanged(current));
        };
        let write_id = s.rt.random_id("w_")?;
        match K::write(s.db, s.tenant_id, &current, &change, s.rt.now(), &write_id).await? {
            Written::Done(w) => return Ok(Outcome::Written(w)),
            Written::Stale if if_match.is_some() => return Err(precondition_failed()),
            // Another writer won, or the resource is gone: the next read tells which.
            Written::Stale => s.rt.pause(attempt).await,
        }
    }
    Err(contention(K::NAME))
}

/// Delete: 404 when there is no such resource, 412 when `If-Match` names another version.
pub async fn delete<K: Resource, E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    if_match: Option<&str>,
) -> Result<()> {
    let version = if etag::names_a_version(if_match) {
        // Only a specific version can be compared in SQL; read it to test the header.
        let current = K::read(s.db, s.tenant_id, id)
            .await?
            .ok_or_else(|| not_found::<K>(id))?;
        if !etag::if_match_allows(if_match, K::version(&current)) {
            return Err(precondition_failed());
        }
        Some(K::version(&current))
    } else {
        None
    };
    match K::delete(s.db, s.tenant_id, id, version, s.rt.now()).await? {
        Delete::Deleted => Ok(()),
        Delete::NotFound => Err(not_found::<K>(id)),
        Delete::Stale => Err(precondition_failed()),
    }
}

/// A list request's filter and `sortBy`, parsed against a resource type.
pub struct ListRequest {
    filter: Option<Filter>,
    sort_by: Option<AttrRef>,
}

impl ListRequest {
    pub fn parse(rt: &'static ResourceType, params: &ListParams) -> Result<ListRequest> {
        let filter = params
            .filter
            .as_deref()
            .map(|f| filter::parse(f, rt))
            .transpose()?;
        let sort_by = match params.sort_by.as_deref() {
            None => None,
            Some(s) => match rt.resolve(s) {
                Resolved::Attr(a) => Some(a),
                _ => {
                    return Err(Error::bad_request(
                        ScimType::InvalidValue,
                        format!("cannot sort by unknown attribute '{}'", quote(s)),
                    ))
                }
            },
        };
        Ok(ListRequest { filter, sort_by })
    }

    pub fn query<'a>(&'a self, params: &ListParams) -> ListQuery<'a> {
        ListQuery {
            filter: self.filter.as_ref(),
            sort_by: self.sort_by.as_ref(),
            descending: params.descending,
            start_index: params.start_index,
            count: params.count,
        }
    }
}
