//! Tenant routing by Host header and by path prefix, and the rules for a valid subdomain.
//!
//! A customer's Tenant URL is `https://<subdomain>.<BASE_DOMAIN>/api/scim/v2`; the subdomain may
//! have dots (`piedpiper.us`, as in the Ardoq tutorial). Where wildcard DNS is not available (a
//! `workers.dev` deployment, local tools that cannot set `Host`), the same tenant is reached at
//! `/tenants/<subdomain>/api/scim/v2` on any non-tenant host.

/// Names no customer may take: they collide with our own hosts or paths, or look official.
pub static RESERVED: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "cdn",
    "console",
    "dashboard",
    "docs",
    "help",
    "login",
    "mail",
    "scim",
    "sso",
    "static",
    "status",
    "support",
    "tenants",
    "www",
];

/// Longest subdomain accepted: leaves room for a base domain within DNS's 253 characters.
pub const MAX_SUBDOMAIN_LEN: usize = 190;

/// What the Host header says about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKind {
    /// `<sub>.<base>`: a tenant host. The subdomain is lower-cased but not yet validated.
    Tenant(String),
    /// The bare base domain, the `workers.dev` host, an IP: the operator's side.
    Operator,
}

/// Classify a Host header (any case, optional port, IPv6 literals in brackets) against the base
/// domain. Multi-label subdomains are one tenant: `piedpiper.us.example.com` is `piedpiper.us`.
pub fn classify(host: &str, base_domain: &str) -> HostKind {
    let host = strip_port(host.trim())
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let base = base_domain
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if base.is_empty() {
        return HostKind::Operator;
    }
    match host
        .strip_suffix(&base)
        .and_then(|rest| rest.strip_suffix('.'))
    {
        Some(sub) if !sub.is_empty() => HostKind::Tenant(sub.to_string()),
        _ => HostKind::Operator,
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // `[::1]:8787` -> `[::1]`
        return match host.split_once(']') {
            Some((inside, _port)) => host.get(..=inside.len()).unwrap_or(host),
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Check a subdomain against the rules of the admin API: lower-case DNS labels (`a-z`, `0-9`,
/// inner `-`) of 1–63 characters joined by dots, none of them reserved.
pub fn validate_subdomain(sub: &str) -> Result<(), String> {
    if sub.is_empty() {
        return Err("subdomain must not be empty".into());
    }
    if sub.len() > MAX_SUBDOMAIN_LEN {
        return Err(format!(
            "subdomain is longer than {MAX_SUBDOMAIN_LEN} characters"
        ));
    }
    for label in sub.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "subdomain label '{label}' must be 1 to 63 characters (labels are separated by dots)"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "subdomain label '{label}' may contain only lower-case letters, digits and '-'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "subdomain label '{label}' must not start or end with '-'"
            ));
        }
        if RESERVED.contains(&label) {
            return Err(format!("subdomain label '{label}' is reserved"));
        }
    }
    Ok(())
}

/// Split `/tenants/<sub>/<rest>` into the subdomain and the rest of the path (with its leading
/// `/`). The subdomain is lower-cased, like a Host header would be.
pub fn split_tenant_path(path: &str) -> Option<(String, &str)> {
    let rest = path.strip_prefix("/tenants/")?;
    let (sub, tail) = match rest.find('/') {
        Some(i) => rest.split_at_checked(i)?,
        None => (rest, ""),
    };
    if sub.is_empty() {
        return None;
    }
    Some((sub.to_ascii_lowercase(), tail))
}

/// Where the operator's side was reached: the scheme and port a Tenant URL should reuse, and the
/// host that serves the path form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    /// `None` for the scheme's default port.
    pub port: Option<u16>,
}

impl Origin {
    /// `<scheme>://<host>[:<port>]`: where URLs on the operator's host start.
    pub fn base(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{}{port}", self.scheme, self.host)
    }
}

/// An absolute `http`/`https` URL as the runtime serialises a request's (the WHATWG URL
/// Standard: scheme and host in lower case, the default port left out, `?` and `#` inside the
/// path percent-encoded), cut into its origin, its path and its query, without a URL parser's
/// tables: a serialised URL needs none. `None` for anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUrl<'a> {
    pub origin: Origin,
    /// From the first `/` after the host (`/` when there is none), up to `?` or `#`.
    pub path: &'a str,
    /// After the `?`, up to any `#`; empty when there is none.
    pub query: &'a str,
}

impl<'a> RequestUrl<'a> {
    pub fn parse(url: &'a str) -> Option<RequestUrl<'a>> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https") {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at_checked(end)?;
        let (host, port) = host_and_port(authority)?;
        let rest = rest.split('#').next().unwrap_or_default();
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let default = if scheme == "https" { 443 } else { 80 };
        Some(RequestUrl {
            origin: Origin {
                scheme,
                host: host.to_ascii_lowercase(),
                port: port.filter(|p| *p != default),
            },
            path: if path.is_empty() { "/" } else { path },
            query,
        })
    }
}

/// `host[:port]`, or `[v6][:port]`: a host, or an IPv6 literal, and a port of digits up to
/// 65535. No credentials (`@`), no empty host.
fn host_and_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let close = v6.find(']')?;
            let (inside, after) = v6.split_at_checked(close)?;
            if inside.is_empty()
                || !inside
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b".:".contains(&b))
            {
                return None;
            }
            let host = authority.get(..close.checked_add(2)?)?;
            (host, after.get(1..)?)
        }
        None => {
            let host = authority.split(':').next().unwrap_or_default();
            // What the URL Standard lets through a host (`a!b` is one) the runtime has already
            // let through; refused is only what cannot be a host at all: credentials, spaces,
            // controls, brackets outside a literal.
            let hostile = |b: u8| b <= b' ' || b == 0x7f || b"@[]\\%".contains(&b);
            if host.is_empty() || host.bytes().any(hostile) {
                return None;
            }
            (host, authority.get(host.len()..)?)
        }
    };
    let port = match port {
        "" | ":" => None,
        p => {
            let digits = p
                .strip_prefix(':')
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
            Some(digits.parse().ok()?)
        }
    };
    Some((host, port))
}

/// The Tenant URL an admin pastes into the identity provider: `<scheme>://<sub>.<base>/api/scim/v2`,
/// or `<origin>/tenants/<sub>/api/scim/v2` where the deployment has no wildcard DNS.
pub fn tenant_url(sub: &str, base_domain: &str, origin: &Origin, path_form: bool) -> String {
    let port = origin.port.map(|p| format!(":{p}")).unwrap_or_default();
    let scheme = &origin.scheme;
    if path_form {
        format!("{}/tenants/{sub}/api/scim/v2", origin.base())
    } else {
        format!("{scheme}://{sub}.{base_domain}{port}/api/scim/v2")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_tenant_hosts() {
        let t = |s: &str| HostKind::Tenant(s.to_string());
        assert_eq!(classify("acme.example.com", "example.com"), t("acme"));
        assert_eq!(classify("ACME.Example.COM:443", "example.com"), t("acme"));
        assert_eq!(
            classify("piedpiper.us.example.com", "example.com"),
            t("piedpiper.us")
        );
        assert_eq!(classify("acme.localhost:8787", "localhost"), t("acme"));
        assert_eq!(classify("acme.example.com.", "example.com"), t("acme"));
    }

    #[test]
    fn classifies_operator_hosts() {
        assert_eq!(classify("example.com", "example.com"), HostKind::Operator);
        assert_eq!(classify("127.0.0.1:8787", "localhost"), HostKind::Operator);
        assert_eq!(classify("localhost:8787", "localhost"), HostKind::Operator);
        assert_eq!(classify("[::1]:8787", "localhost"), HostKind::Operator);
        assert_eq!(
            classify("scim.acct.workers.dev", "example.com"),
            HostKind::Operator
        );
        // A suffix match must be on a label boundary.
        assert_eq!(
            classify("notexample.com", "example.com"),
            HostKind::Operator
        );
        assert_eq!(classify(".example.com", "example.com"), HostKind::Operator);
        assert_eq!(classify("acme.example.com", ""), HostKind::Operator);
    }

    #[test]
    fn subdomain_rules() {
        for ok in ["acme", "piedpiper.us", "a", "a-b.c1", &"x".repeat(63)] {
            assert_eq!(validate_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "-acme",
            "acme-",
            "ac_me",
            "a..b",
            ".acme",
            "acme.",
            "admin",
            "www.acme",
            "acme.api",
            &"x".repeat(64),
            &["abc"; 60].join("."),
        ] {
            assert!(
                validate_subdomain(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn splits_path_prefix() {
        assert_eq!(
            split_tenant_path("/tenants/Acme/api/scim/v2/Users"),
            Some(("acme".to_string(), "/api/scim/v2/Users"))
        );
        assert_eq!(
            split_tenant_path("/tenants/piedpiper.us"),
            Some(("piedpiper.us".to_string(), ""))
        );
        assert_eq!(split_tenant_path("/tenants//api"), None);
        assert_eq!(split_tenant_path("/api/scim/v2"), None);
    }

    #[test]
    fn tenant_urls() {
        let prod = Origin {
            scheme: "https".into(),
            host: "example.com".into(),
            port: None,
        };
        assert_eq!(
            tenant_url("piedpiper.us", "example.com", &prod, false),
            "https://piedpiper.us.example.com/api/scim/v2"
        );
        let dev = Origin {
            scheme: "http".into(),
            host: "127.0.0.1".into(),
            port: Some(8787),
        };
        assert_eq!(
            tenant_url("acme", "localhost", &dev, false),
            "http://acme.localhost:8787/api/scim/v2"
        );
        let wd = Origin {
            scheme: "https".into(),
            host: "scim.acct.workers.dev".into(),
            port: None,
        };
        assert_eq!(
            tenant_url("acme", "example.com", &wd, true),
            "https://scim.acct.workers.dev/tenants/acme/api/scim/v2"
        );
    }
    #[test]
    fn request_urls_cut_as_a_url_parser_cuts_them() {
        let u = RequestUrl::parse(
            "https://acme.example.com/api/scim/v2/Users?filter=userName%20eq%20%22a%22&count=2",
        )
        .unwrap();
        assert_eq!(
            u.origin,
            Origin {
                scheme: "https".into(),
                host: "acme.example.com".into(),
                port: None
            }
        );
        assert_eq!(u.path, "/api/scim/v2/Users");
        assert_eq!(u.query, "filter=userName%20eq%20%22a%22&count=2");
        let u = RequestUrl::parse("http://localhost:8787").unwrap();
        assert_eq!((u.origin.port, u.path, u.query), (Some(8787), "/", ""));
        let u = RequestUrl::parse("HTTPS://Example.COM:443/a%3Fb?x#frag?y").unwrap();
        assert_eq!(u.origin.base(), "https://example.com");
        assert_eq!((u.path, u.query), ("/a%3Fb", "x"));
        let u = RequestUrl::parse("http://a!b.localhost/x").unwrap();
        assert_eq!(
            u.origin.host, "a!b.localhost",
            "a host the URL Standard allows"
        );
        let u = RequestUrl::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(
            (u.origin.host.as_str(), u.origin.port),
            ("[::1]", Some(8080))
        );
        for bad in [
            "ftp://example.com/",
            "https://",
            "https://user@example.com/",
            "https://example.com:99999/",
            "https://example.com:8a/",
            "https://exa mple.com/",
            "https://[::1/",
            "https://[zz]/",
            "/relative",
        ] {
            assert_eq!(RequestUrl::parse(bad), None, "{bad}");
        }
    }
}
