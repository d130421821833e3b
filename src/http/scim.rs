//! SCIM routes of one tenant, under `/api/scim/v2` (RFC 7644 §3.2).
//!
//! ```text
//! /Users              GET (list/filter)   POST (create)
//! /Users/{id}         GET  PUT  PATCH  DELETE
//! /Users/.search      POST
//! /Groups…            the same as /Users
//! ```
//!
//! Authentication comes before routing, so an unauthenticated caller learns nothing about which
//! routes exist. `/Users` is served by [`super::users`], `/Groups` by [`super::groups`].

use serde_json::Value;
use worker::{Method, Request};

use super::resources::Ctx;
use super::{auth, discovery, groups, limit, search, users, App, Reply};
use crate::scim::error::{quote, Error, Result, ScimType};
use crate::scim::query::ListParams;

/// The SCIM endpoint prefix under a tenant.
pub const PREFIX: &str = "/api/scim/v2";

/// SCIM resource types served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
}

/// A parsed path below [`PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Collection(Kind),
    Search(Kind),
    Resource(Kind, String),
    /// `/.search` at the root: every resource type (RFC 7644 §3.4.3).
    RootSearch,
    ServiceProviderConfig,
    /// `/ResourceTypes` or `/ResourceTypes/{name}`.
    ResourceTypes(Option<String>),
    /// `/Schemas` or `/Schemas/{urn}`.
    Schemas(Option<String>),
    Unknown,
}

impl Route {
    /// Parse the path after [`PREFIX`]. A trailing slash is tolerated; endpoint names match
    /// case-insensitively (RFC 7643 §2.1 makes names case-insensitive; clients differ in case).
    pub fn parse(rest: &str) -> Route {
        let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let kind = |s: &str| {
            if s.eq_ignore_ascii_case("Users") {
                Some(Kind::User)
            } else if s.eq_ignore_ascii_case("Groups") {
                Some(Kind::Group)
            } else {
                None
            }
        };
        let is = |s: &str, name: &str| s.eq_ignore_ascii_case(name);
        match segments.as_slice() {
            [".search"] => Route::RootSearch,
            [k] if is(k, "ServiceProviderConfig") => Route::ServiceProviderConfig,
            [k] if is(k, "ResourceTypes") => Route::ResourceTypes(None),
            [k, name] if is(k, "ResourceTypes") => Route::ResourceTypes(Some((*name).to_string())),
            [k] if is(k, "Schemas") => Route::Schemas(None),
            [k, urn] if is(k, "Schemas") => Route::Schemas(Some((*urn).to_string())),
            [k] => kind(k).map_or(Route::Unknown, Route::Collection),
            [k, ".search"] => kind(k).map_or(Route::Unknown, Route::Search),
            [k, id] if !id.is_empty() => {
                kind(k).map_or(Route::Unknown, |k| Route::Resource(k, (*id).to_string()))
            }
            _ => Route::Unknown,
        }
    }
}

/// Largest request body accepted: far above any real user or PATCH, and under D1's statement size.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Serve `path` (which still has its [`PREFIX`]) for tenant `sub`. `mount` is what precedes the
/// prefix in the URL (`""` on a tenant host, `/tenants/<sub>` in the path form).
pub async fn serve(
    app: &App,
    mut req: Request,
    sub: &str,
    mount: &str,
    path: &str,
) -> Result<Reply> {
    let rest = match path.strip_prefix(PREFIX) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => {
            return Err(Error::not_found(format!(
                "no route for {}; SCIM lives under {PREFIX}",
                quote(path)
            )))
        }
    };
    let principal = auth::authenticate(app, &req, sub).await?;
    limit::check(app, &principal.tenant_id).await?;
    let host = header(&req, "host").unwrap_or_else(|| app.origin.host.clone());
    let base = format!("{}://{host}{mount}{PREFIX}", app.origin.scheme);
    let ctx = Ctx {
        app,
        tenant_id: &principal.tenant_id,
        base: &base,
    };
    let method = req.method();
    let route = Route::parse(rest);
    let query = || -> Result<ListParams> {
        let url = req
            .url()
            .map_err(|e| Error::internal(format!("request url: {e}")))?;
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        ListParams::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    };
    match route.clone() {
        Route::Collection(kind) => match method {
            Method::Get => {
                let params = query()?;
                match kind {
                    Kind::User => users::list(&ctx, &params).await,
                    Kind::Group => groups::list(&ctx, &params).await,
                }
            }
            Method::Post => {
                let params = query()?;
                let body = json_body(&mut req).await?;
                match kind {
                    Kind::User => users::create(&ctx, &body, &params).await,
                    Kind::Group => groups::create(&ctx, &body, &params).await,
                }
            }
            _ => Err(Error::method_not_allowed("GET, POST")),
        },
        Route::Search(kind) => match method {
            Method::Post => {
                let params = ListParams::from_search(&json_body(&mut req).await?)?;
                match kind {
                    Kind::User => users::list(&ctx, &params).await,
                    Kind::Group => groups::list(&ctx, &params).await,
                }
            }
            _ => Err(Error::method_not_allowed("POST")),
        },
        Route::Resource(kind, id) => {
            let params = query()?;
            let if_match = header(&req, "if-match");
            let if_match = if_match.as_deref();
            match method {
                Method::Get => {
                    let inm = header(&req, "if-none-match");
                    match kind {
                        Kind::User => users::get(&ctx, &id, &params, inm.as_deref()).await,
                        Kind::Group => groups::get(&ctx, &id, &params, inm.as_deref()).await,
                    }
                }
                Method::Put => {
                    let body = json_body(&mut req).await?;
                    match kind {
                        Kind::User => users::replace(&ctx, &id, &body, &params, if_match).await,
                        Kind::Group => groups::replace(&ctx, &id, &body, &params, if_match).await,
                    }
                }
                Method::Patch => {
                    let body = json_body(&mut req).await?;
                    match kind {
                        Kind::User => users::patch(&ctx, &id, &body, &params, if_match).await,
                        Kind::Group => groups::patch(&ctx, &id, &body, &params, if_match).await,
                    }
                }
                Method::Delete => match kind {
                    Kind::User => users::delete(&ctx, &id, if_match).await,
                    Kind::Group => groups::delete(&ctx, &id, if_match).await,
                },
                _ => Err(Error::method_not_allowed("GET, PUT, PATCH, DELETE")),
            }
        }
        Route::RootSearch => match method {
            Method::Post => {
                let params = ListParams::from_search(&json_body(&mut req).await?)?;
                search::search_all(&ctx, &params).await
            }
            _ => Err(Error::method_not_allowed("POST")),
        },
        Route::ServiceProviderConfig | Route::ResourceTypes(_) | Route::Schemas(_) => {
            match method {
                Method::Get => discovery::serve(&ctx, &route, &query()?, &app.origin.scheme, &host),
                _ => Err(Error::method_not_allowed("GET")),
            }
        }
        Route::Unknown => Err(Error::not_found(format!(
            "no SCIM endpoint at {}",
            quote(path)
        ))),
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Read a JSON request body: `application/scim+json` or `application/json` (any parameters,
/// such as Entra's `charset=utf-8`), or no Content-Type at all; others are 415.
async fn json_body(req: &mut Request) -> Result<Value> {
    if let Some(ct) = header(req, "content-type") {
        let media = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !media.is_empty() && media != "application/scim+json" && media != "application/json" {
            return Err(Error::unsupported_media_type(format!(
                "Content-Type '{media}' is not supported; send application/scim+json or application/json"
            )));
        }
    }
    let bytes = super::read_body(req, MAX_BODY_BYTES).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request(
            ScimType::InvalidSyntax,
            "the request body is empty",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::bad_request(
            ScimType::InvalidSyntax,
            format!("the request body is not valid JSON: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes() {
        assert_eq!(Route::parse("/Users"), Route::Collection(Kind::User));
        assert_eq!(Route::parse("/Users/"), Route::Collection(Kind::User));
        assert_eq!(Route::parse("/users"), Route::Collection(Kind::User));
        assert_eq!(Route::parse("/Groups"), Route::Collection(Kind::Group));
        assert_eq!(Route::parse("/Users/.search"), Route::Search(Kind::User));
        assert_eq!(
            Route::parse("/Groups/abc/"),
            Route::Resource(Kind::Group, "abc".into())
        );
        assert_eq!(
            Route::parse("/ServiceProviderConfig"),
            Route::ServiceProviderConfig
        );
        assert_eq!(Route::parse("/.search"), Route::RootSearch);
        assert_eq!(
            Route::parse("/resourcetypes/User"),
            Route::ResourceTypes(Some("User".into()))
        );
        assert_eq!(
            Route::parse("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"),
            Route::Schemas(Some("urn:ietf:params:scim:schemas:core:2.0:User".into()))
        );
        assert_eq!(Route::parse(""), Route::Unknown);
        assert_eq!(Route::parse("/"), Route::Unknown);
        assert_eq!(Route::parse("/Widgets"), Route::Unknown);
        assert_eq!(Route::parse("/Users/a/b"), Route::Unknown);
        assert_eq!(Route::parse("/Users//"), Route::Collection(Kind::User));
    }
}
