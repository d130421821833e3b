//! What the `/Users` and `/Groups` handlers share: the request context, `attributes` /
//! `excludedAttributes`, ETag preconditions, and the back-off between conditional-write retries.

use serde_json::{Map, Value};
use std::time::Duration;
use worker::Delay;

use super::{App, Reply};
use crate::scim::error::{quote, Error, Result, ScimType};
use crate::scim::filter::{self, Filter};
use crate::scim::query::{etag_matches, ListParams};
use crate::scim::resource::{self, etag, selectors, Selector};
use crate::scim::schema::{AttrRef, Resolved, ResourceType, Returned};
use crate::store::listing::ListQuery;
use crate::tenancy::token;

/// Attempts at a conditional write before giving up under contention.
pub const MAX_ATTEMPTS: u32 = 32;

/// What every handler needs: the app, whose data, and the tenant's SCIM root URL.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub tenant_id: &'a str,
    /// `https://acme.example.com/api/scim/v2` (or the path form).
    pub base: &'a str,
}

impl Ctx<'_> {
    pub fn location(&self, rt: &ResourceType, id: &str) -> String {
        format!("{}{}/{id}", self.base, rt.endpoint)
    }
}

/// `attributes` / `excludedAttributes` of a request (RFC 7644 §3.4.2.5, §3.9).
pub struct Selection {
    rt: &'static ResourceType,
    /// `None` without an `attributes` parameter; with one, what its names select (possibly
    /// nothing: unknown names select nothing, and then only `id` is returned).
    attributes: Option<Vec<Selector>>,
    excluded: Vec<Selector>,
}

impl Selection {
    pub fn of(rt: &'static ResourceType, p: &ListParams) -> Selection {
        let attributes = p
            .attributes
            .as_deref()
            .filter(|s| s.split(',').any(|name| !name.trim().is_empty()))
            .map(|s| selectors(rt, s));
        Selection {
            rt,
            attributes,
            excluded: p
                .excluded_attributes
                .as_deref()
                .map(|s| selectors(rt, s))
                .unwrap_or_default(),
        }
    }

    /// Whether the request asked to shape the response at all.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_none() && self.excluded.is_empty()
    }

    /// Whether the response will contain this core attribute (so the store can skip reading
    /// it: `excludedAttributes=members`).
    pub fn wants(&self, name: &str) -> bool {
        let names = |sels: &[Selector], whole: bool| {
            sels.iter().any(|s| matches!(s, Selector::Attr(a) if !a.extension && a.attr.name == name && (!whole || a.sub.is_none())))
        };
        if names(&self.excluded, true) {
            return false;
        }
        let always = self
            .rt
            .schema
            .attr(name)
            .is_some_and(|a| a.returned == Returned::Always);
        match &self.attributes {
            None => true,
            Some(attributes) => always || names(attributes, false),
        }
    }

    pub fn apply(&self, r: &mut Map<String, Value>) {
        resource::project(self.rt, r, self.attributes.as_deref(), &self.excluded);
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

/// `304 Not Modified` when `If-None-Match` names the current version (RFC 7644 §3.14).
pub fn not_modified(if_none_match: Option<&str>, version: i64) -> Option<Reply> {
    if_none_match
        .filter(|h| etag_matches(h, &etag(version)))
        .map(|_| Reply {
            status: 304,
            body: None,
            headers: vec![("etag", etag(version))],
        })
}

pub fn precondition_failed() -> Error {
    Error::new(
        412,
        "the resource has changed: its version does not match If-Match",
    )
}

/// Check `If-Match` against the current version (RFC 7644 §3.14).
pub fn check_if_match(if_match: Option<&str>, version: i64) -> Result<()> {
    match if_match {
        Some(h) if !etag_matches(h, &etag(version)) => Err(precondition_failed()),
        _ => Ok(()),
    }
}

/// Too many concurrent writers won the race; the client should retry shortly.
pub fn contention(kind: &str) -> Error {
    Error::new(
        503,
        format!("the {kind} is being changed by many requests at once; retry"),
    )
}

/// A short random pause that grows with the attempt, so racing writers spread out.
pub async fn backoff(attempt: u32) {
    let spread = u64::from(attempt).saturating_mul(3).saturating_add(2);
    let jitter = u64::from(getrandom::u32().unwrap_or(0))
        .checked_rem(spread)
        .unwrap_or(0);
    Delay::from(Duration::from_millis(jitter)).await;
}

pub fn new_id(prefix: &str) -> Result<String> {
    token::random_id(prefix).map_err(|e| Error::internal(format!("getrandom: {}", e.0)))
}

pub fn new_uuid() -> Result<String> {
    token::random_uuid().map_err(|e| Error::internal(format!("getrandom: {}", e.0)))
}
