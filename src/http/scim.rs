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
//! routes exist. Until the Users and Groups resources are built (issues 3 and 4) a tenant has
//! no resources: lists and searches answer an empty ListResponse (never 404: Entra quarantines a
//! job whose Test Connection filter gets a 404), a GET by id answers 404, and writes answer 501
//! (RFC 7644 §3.12: "Service provider does not support the request operation").

use worker::{Method, Request};

use super::{auth, App, Reply};
use crate::scim::error::{Error, Result};
use crate::scim::list::list_response;

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
        match segments.as_slice() {
            [k] => kind(k).map_or(Route::Unknown, Route::Collection),
            [k, ".search"] => kind(k).map_or(Route::Unknown, Route::Search),
            [k, id] if !id.is_empty() => {
                kind(k).map_or(Route::Unknown, |k| Route::Resource(k, (*id).to_string()))
            }
            _ => Route::Unknown,
        }
    }
}

/// Serve `path` (which still has its [`PREFIX`]) for tenant `sub`.
pub async fn serve(app: &App, req: Request, sub: &str, path: &str) -> Result<Reply> {
    let rest = match path.strip_prefix(PREFIX) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => {
            return Err(Error::not_found(format!(
                "no route for {path}; SCIM lives under {PREFIX}"
            )))
        }
    };
    let _principal = auth::authenticate(app, &req, sub).await?;
    let method = req.method();
    match Route::parse(rest) {
        Route::Collection(_) => match method {
            Method::Get => Ok(Reply::json(200, list_response(0, 1, vec![]))),
            Method::Post => Err(not_implemented()),
            _ => Err(Error::method_not_allowed("GET, POST")),
        },
        Route::Search(_) => match method {
            Method::Post => Ok(Reply::json(200, list_response(0, 1, vec![]))),
            _ => Err(Error::method_not_allowed("POST")),
        },
        Route::Resource(kind, id) => match method {
            Method::Get => Err(Error::not_found(format!(
                "{} '{id}' not found",
                kind.name()
            ))),
            Method::Put | Method::Patch | Method::Delete => Err(not_implemented()),
            _ => Err(Error::method_not_allowed("GET, PUT, PATCH, DELETE")),
        },
        Route::Unknown => Err(Error::not_found(format!("no SCIM endpoint at {path}"))),
    }
}

fn not_implemented() -> Error {
    Error::new(501, "this operation is not supported yet")
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
        assert_eq!(Route::parse(""), Route::Unknown);
        assert_eq!(Route::parse("/"), Route::Unknown);
        assert_eq!(Route::parse("/Widgets"), Route::Unknown);
        assert_eq!(Route::parse("/Users/a/b"), Route::Unknown);
        assert_eq!(Route::parse("/Users//"), Route::Collection(Kind::User));
    }
}
