//! The SCIM routes of one tenant, below `/api/scim/v2` (RFC 7644 §3.2):
//!
//! ```text
//! /Users              GET (list/filter)   POST (create)
//! /Users/{id}         GET  PUT  PATCH  DELETE
//! /Users/.search      POST
//! /Groups…            the same as /Users
//! /.search            POST (every resource type)
//! /ServiceProviderConfig, /ResourceTypes[/{name}], /Schemas[/{urn}]   GET
//! ```

/// The SCIM endpoint prefix under a tenant.
pub const PREFIX: &str = "/api/scim/v2";

/// The resource endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Users,
    Groups,
}

/// A parsed path below [`PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Collection(Endpoint),
    Search(Endpoint),
    Resource(Endpoint, String),
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
        let endpoint = |s: &str| {
            if s.eq_ignore_ascii_case("Users") {
                Some(Endpoint::Users)
            } else if s.eq_ignore_ascii_case("Groups") {
                Some(Endpoint::Groups)
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
            [k] => endpoint(k).map_or(Route::Unknown, Route::Collection),
            [k, ".search"] => endpoint(k).map_or(Route::Unknown, Route::Search),
            [k, id] if !id.is_empty() => {
                endpoint(k).map_or(Route::Unknown, |e| Route::Resource(e, (*id).to_string()))
            }
            _ => Route::Unknown,
        }
    }
}

impl Route {
    /// The route as a template, with no text of the request in it (`/Users/{id}`): what a
    /// refusal's log entry shows, since a stranger chose the path.
    pub fn template(&self) -> &'static str {
        let pick = |e: &Endpoint, users: &'static str, groups: &'static str| match e {
            Endpoint::Users => users,
            Endpoint::Groups => groups,
        };
        match self {
            Route::Collection(e) => pick(e, "/Users", "/Groups"),
            Route::Search(e) => pick(e, "/Users/.search", "/Groups/.search"),
            Route::Resource(e, _) => pick(e, "/Users/{id}", "/Groups/{id}"),
            Route::RootSearch => "/.search",
            Route::ServiceProviderConfig => "/ServiceProviderConfig",
            Route::ResourceTypes(None) => "/ResourceTypes",
            Route::ResourceTypes(Some(_)) => "/ResourceTypes/{name}",
            Route::Schemas(None) => "/Schemas",
            Route::Schemas(Some(_)) => "/Schemas/{urn}",
            Route::Unknown => "/{unknown}",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_hold_no_request_text() {
        for (path, template) in [
            ("/Users/URGENT:rotate-at-https:/evil.example", "/{unknown}"),
            ("/Users/2819c223", "/Users/{id}"),
            ("/groups", "/Groups"),
            ("/Schemas/urn:x", "/Schemas/{urn}"),
            ("/", "/{unknown}"),
        ] {
            assert_eq!(Route::parse(path).template(), template, "{path}");
        }
    }

    #[test]
    fn parses_routes() {
        use Endpoint::{Groups, Users};
        assert_eq!(Route::parse("/Users"), Route::Collection(Users));
        assert_eq!(Route::parse("/Users/"), Route::Collection(Users));
        assert_eq!(Route::parse("/users"), Route::Collection(Users));
        assert_eq!(Route::parse("/Groups"), Route::Collection(Groups));
        assert_eq!(Route::parse("/Users/.search"), Route::Search(Users));
        assert_eq!(
            Route::parse("/Groups/abc/"),
            Route::Resource(Groups, "abc".into())
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
        assert_eq!(Route::parse("/Users//"), Route::Collection(Users));
    }
}
