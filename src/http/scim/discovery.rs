//! Discovery endpoints (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes[/{name}]`,
//! `/Schemas[/{urn}]`, GET only. The documents come from [`scim_core::scim::discovery`].
//!
//! RFC 7644 §4: a `filter` on these endpoints SHOULD be refused with 403, so that a client
//! cannot believe its conditions were applied.

use serde_json::Value;

use super::render::Ctx;
use super::routes::Route;
use crate::http::reply::Reply;
use scim_core::scim::discovery::{
    all_schemas, resource_type, schema, service_provider_config, RESOURCE_TYPES,
};
use scim_core::scim::error::{quote, Error, Result};
use scim_core::scim::list::list_response;
use scim_core::scim::query::ListParams;

/// Path where the Worker serves its documentation page (the `documentationUri`).
pub const DOCS_PATH: &str = "/docs";

pub fn serve(ctx: &Ctx<'_>, route: &Route, params: &ListParams, docs: &str) -> Result<Reply> {
    if params.filter.is_some() && !matches!(route, Route::ServiceProviderConfig) {
        return Err(Error::forbidden(
            "filtering is not supported on discovery endpoints (RFC 7644 §4)",
        ));
    }
    let base = ctx.base.as_str();
    let list = |items: Vec<Value>| Reply::json(200, list_response(items.len() as u64, 1, items));
    Ok(match route {
        Route::ServiceProviderConfig => Reply::json(200, service_provider_config(base, docs)),
        Route::ResourceTypes(None) => list(
            RESOURCE_TYPES
                .iter()
                .map(|rt| resource_type(base, rt))
                .collect(),
        ),
        Route::ResourceTypes(Some(name)) => match RESOURCE_TYPES
            .iter()
            .find(|rt| rt.name.eq_ignore_ascii_case(name))
        {
            Some(rt) => Reply::json(200, resource_type(base, rt)),
            None => {
                return Err(Error::not_found(format!(
                    "no resource type '{}'",
                    quote(name)
                )))
            }
        },
        Route::Schemas(None) => list(all_schemas().into_iter().map(|s| schema(base, s)).collect()),
        Route::Schemas(Some(urn)) => match all_schemas()
            .into_iter()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
        {
            Some(s) => Reply::json(200, schema(base, s)),
            None => return Err(Error::not_found(format!("no schema '{}'", quote(urn)))),
        },
        _ => return Err(Error::not_found("no such discovery endpoint")),
    })
}
