//! One resource service for `/Users` and `/Groups`: listing, reading with `If-None-Match`, the
//! conditional-write loop with `If-Match`, and deleting with 404 told from 412 (RFC 7644
//! §3.14), written once for every resource type; [`Kind`] says what differs.
//!
//! D1 has no interactive transactions: a write reads the resource, computes the new state from
//! it, and writes on the condition that its version has not moved (`UPDATE … WHERE version =
//! ?`). A writer that loses the race reads again and recomputes, so concurrent writers never
//! lose each other's changes; with `If-Match` the client asked for that version only, and a
//! moved version is `412` instead.

use serde_json::Value;

use super::{Runtime, Scope};
use crate::store::listing::ListQuery;
use crate::store::resources;
use scim_core::scim::error::{quote, Error, Result, ScimType};
use scim_core::scim::etag;
use scim_core::scim::filter::{self, Filter};
use scim_core::scim::query::ListParams;
use scim_core::scim::resource::Data;
use scim_core::scim::schema::{AttrRef, Resolved, ResourceType};

/// The store's types this module's API hands to the edge: a stored resource, its table, and
/// the references it carries.
pub use crate::store::refs::Refs;
pub use crate::store::resources::Stored;
pub use crate::store::table::Table;
use crate::store::trail::{Event, EventType, Trail};
use crate::store::{Delete, Executor, Written};

/// Attempts at a conditional write before giving up under contention.
pub const MAX_ATTEMPTS: u32 = 32;

/// What differs between resource types: where they live, how a request creates, replaces and
/// patches one, and how a computed change is written.
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait Kind {
    /// The table of the resources (and so their resource type, and the references read
    /// beside them).
    const TABLE: Table;
    /// Whether a write starts from the resource with its references (a user's reply after a
    /// write shows its groups; a group's PATCH reply shows nothing).
    const REFS_ON_WRITE: bool;
    /// A change computed from the stored resource, for one conditional write.
    type Change;

    /// What a change records: the resource's change-feed events and the log summary.
    fn describe(current: &Stored, change: &Self::Change) -> Described;

    /// Write `w.change`, conditionally on the version of `w.current` where the change says
    /// so; the resource as written when that is known without another read.
    async fn write<E: Executor>(w: Write<'_, E, Self::Change>) -> Result<Written<Option<Stored>>>;

    /// `POST`: the new resource.
    async fn create<E: Executor, R: Runtime>(s: &Scope<'_, E, R>, body: &Value) -> Result<Stored>;

    /// `PUT` (RFC 7644 §3.5.1): the resource as it is then.
    async fn replace<E: Executor, R: Runtime>(
        s: &Scope<'_, E, R>,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Stored>;

    /// `PATCH` (RFC 7644 §3.5.2): the resource as it is then, or `None` where the type
    /// answers `204 No Content` (groups, as Entra prefers).
    async fn patch<E: Executor, R: Runtime>(
        s: &Scope<'_, E, R>,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Option<Stored>>;
}

/// One conditional write: where, when, under which tag, from what, the change, and what it
/// records in the same batch.
pub struct Write<'a, E, C> {
    pub db: &'a E,
    pub tenant_id: &'a str,
    pub now: i64,
    pub write_id: &'a str,
    pub current: &'a Stored,
    pub change: &'a C,
    pub trail: &'a Trail<'a>,
}

/// A change in words: its events, and the log's one-line summary (`{}` for the name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub events: Vec<Event>,
    pub summary: String,
}

/// The names of the attributes whose values differ, in name order; an extension's by their
/// names inside it (`urn:…:User:department`).
pub fn changed_attributes(old: &Data, new: &Data) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for key in old
        .keys()
        .chain(new.keys().filter(|k| !old.contains_key(*k)))
    {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) if key.starts_with("urn:") => {
                for sub in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    if x.get(sub) != y.get(sub) {
                        names.push(format!("{key}:{sub}"));
                    }
                }
            }
            _ => names.push(key.clone()),
        }
    }
    names.sort();
    names
}

pub fn not_found<K: Kind>(id: &str) -> Error {
    not_found_in(K::TABLE, id)
}

/// 404 for resource `id` of `table`.
pub fn not_found_in(table: Table, id: &str) -> Error {
    Error::not_found(format!(
        "{} '{}' not found",
        table.resource_type().name,
        quote(id)
    ))
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

/// Where the previous page of a list ended, in the default order: the next page can seek past
/// it (see `store::listing::ListQuery::after`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub created_at: i64,
    pub id: String,
}

impl Anchor {
    /// The key of the last resource of a page.
    pub fn after(page: &[Stored]) -> Option<Anchor> {
        page.last().map(|r| Anchor {
            created_at: r.created_at,
            id: r.id.clone(),
        })
    }
}

/// One page of resources and the total that match (RFC 7644 §3.4.2); references are read
/// only when the response keeps them. `after` is the end of the page before this one, when
/// known.
///
/// Of a table, not a [`Kind`]: what does not differ between users and groups is compiled
/// once (the wasm's size), as are [`read`], [`get`] and [`delete`].
pub async fn list<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    params: &ListParams,
    with_refs: bool,
    after: Option<&Anchor>,
) -> Result<(u64, Vec<Stored>)> {
    let request = ListRequest::parse(table.resource_type(), params)?;
    Ok(resources::list(
        s.db,
        table,
        s.tenant_id,
        &request.query(params, after),
        with_refs,
    )
    .await?)
}

/// One resource, with all its references when asked.
pub async fn read<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    id: &str,
    with_refs: bool,
) -> Result<Stored> {
    resources::get(s.db, table, s.tenant_id, id, with_refs)
        .await?
        .ok_or_else(|| not_found_in(table, id))
}

/// `GET /…/{id}` under `If-None-Match`.
pub async fn get<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    id: &str,
    with_refs: bool,
    if_none_match: Option<&str>,
) -> Result<Fetched<Stored>> {
    let found = read(s, table, id, with_refs).await?;
    let version = found.version;
    Ok(fetched(found, version, if_none_match))
}

/// Read, compute the change from the current state, and write it only if nothing changed in
/// between; otherwise read again and recompute. With `If-Match`, a version that does not match
/// (before or during the write) is 412. `first` is the resource if the caller has just read it
/// (saving the first read).
pub async fn write<K: Kind, E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    id: &str,
    if_match: Option<&str>,
    first: Option<Stored>,
    compute: impl Fn(&Stored) -> Result<Option<K::Change>>,
) -> Result<Outcome<Stored, Option<Stored>>> {
    let mut first = first;
    for attempt in 0..MAX_ATTEMPTS {
        let current = match first.take() {
            Some(c) => c,
            None => read(s, K::TABLE, id, K::REFS_ON_WRITE).await?,
        };
        if !etag::if_match_allows(if_match, current.version) {
            return Err(precondition_failed());
        }
        let Some(change) = compute(&current)? else {
            if let Some(a) = s.log {
                a.summary("{}: no change".into());
            }
            return Ok(Outcome::Unchanged(current));
        };
        let write_id = s.rt.random_id("w_")?;
        let described = K::describe(&current, &change);
        let entry = s.log_entry(&described.summary);
        let trail = Trail {
            events: described.events,
            log: entry.as_ref(),
        };
        let w = Write {
            db: s.db,
            tenant_id: s.tenant_id,
            now: s.rt.now(),
            write_id: &write_id,
            current: &current,
            change: &change,
            trail: &trail,
        };
        match K::write(w).await? {
            Written::Done(w) => {
                s.committed();
                return Ok(Outcome::Written(w));
            }
            Written::Stale if if_match.is_some() => return Err(precondition_failed()),
            // Another writer won, or the resource is gone: the next read tells which.
            Written::Stale => s.rt.pause(attempt).await,
        }
    }
    Err(contention(K::TABLE.resource_type().name))
}

/// Delete: 404 when there is no such resource, 412 when `If-Match` names another version.
pub async fn delete<E: Executor, R: Runtime>(
    s: &Scope<'_, E, R>,
    table: Table,
    id: &str,
    if_match: Option<&str>,
) -> Result<()> {
    let version = if etag::names_a_version(if_match) {
        // Only a specific version can be compared in SQL; read it to test the header.
        let current = read(s, table, id, false).await?;
        if !etag::if_match_allows(if_match, current.version) {
            return Err(precondition_failed());
        }
        Some(current.version)
    } else {
        None
    };
    let entry = s.log_entry("{} deleted");
    let trail = Trail::single(EventType::deleted(table), entry.as_ref());
    let now = s.rt.now();
    match resources::delete(s.db, table, s.tenant_id, id, version, now, &trail).await? {
        Delete::Deleted => {
            s.committed();
            Ok(())
        }
        Delete::NotFound => Err(not_found_in(table, id)),
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

    pub fn query<'a>(&'a self, params: &ListParams, after: Option<&'a Anchor>) -> ListQuery<'a> {
        ListQuery {
            filter: self.filter.as_ref(),
            sort_by: self.sort_by.as_ref(),
            descending: params.descending,
            start_index: params.start_index,
            count: params.count,
            after: after.map(|a| (a.created_at, a.id.as_str())),
        }
    }
}
