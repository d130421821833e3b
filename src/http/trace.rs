//! The operator's view: one JSON line per request through `console.log`, which Workers Logs
//! and Logpush collect (Cloudflare's "Workers Logs" reads each line logged as JSON as fields).
//! It says what was served and how: when, the request id (`cf-ray`), the organisation's id and
//! shard, the method, the route's *template* (never the path, whose ids and filters are the
//! client's), the status and `scimType`, the duration, the D1 calls, and the kind of
//! credential (with an API key's id). Never a token, a secret, a body, a userName or any
//! attribute value: each field is one of ours, not the client's text.
//!
//! The layers that learn a field fill it in ([`Trace`], in the request's `App`); [`emit`]
//! writes the line once the response is made.

use std::cell::RefCell;

use serde_json::json;

use super::meter::{Binding, Meter};
use scim_core::time::rfc3339;

/// Which credential a request presented (and was accepted or refused with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    SecretToken,
    /// An access token of the token endpoint.
    OAuthToken,
    /// A token request's client credentials (a secret or a federated assertion).
    OAuthClient,
    AdminToken,
    ApiKey,
    ConsoleSession,
}

impl Credential {
    fn name(self) -> &'static str {
        match self {
            Credential::SecretToken => "secret_token",
            Credential::OAuthToken => "oauth_token",
            Credential::OAuthClient => "oauth_client",
            Credential::AdminToken => "admin_token",
            Credential::ApiKey => "api_key",
            Credential::ConsoleSession => "console_session",
        }
    }
}

/// What the request's layers learnt of it for the line.
#[derive(Debug, Default)]
pub struct Trace {
    /// The route's template, as the surface names it (`/Users/{id}`, `/admin/v1/tenants/{sub}`).
    pub route: Option<String>,
    pub tenant: Option<String>,
    pub shard: Option<String>,
    pub credential: Option<Credential>,
    /// An API key's id (never the key).
    pub key_id: Option<String>,
    pub scim_type: Option<&'static str>,
}

impl Trace {
    /// The request is tenant `tenant`'s, on shard `shard`.
    pub fn place(&mut self, tenant: &str, shard: &str) {
        self.tenant = Some(tenant.to_string());
        self.shard = Some(shard.to_string());
    }
}

/// A request's trace, shared by the layers that serve it.
pub type Shared = RefCell<Trace>;

/// `path` as a template: each segment after one of `collections` (`tenants`, `users`, …)
/// becomes `{id}` (`{sub}` after `tenants`). Only for a path a route matched: the words of
/// another are the client's.
pub fn template(path: &str, collections: &[&str]) -> String {
    let mut out = String::new();
    let mut previous = "";
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        if previous == "tenants" {
            out.push_str("{sub}");
        } else if collections.contains(&previous) {
            out.push_str("{id}");
        } else {
            out.push_str(segment);
        }
        previous = segment;
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// What a request's line says besides its trace: when it came, its id, method and status.
pub struct Answered<'a> {
    pub at: i64,
    pub request_id: Option<&'a str>,
    pub method: &'a str,
    pub status: u16,
}

/// Write the request's line.
pub fn emit(a: &Answered<'_>, trace: &Shared, meter: &Meter) {
    let t = trace.borrow();
    let now = worker::Date::now().as_millis() as i64;
    let line = json!({
        "at": rfc3339(a.at),
        "requestId": a.request_id,
        "tenant": t.tenant,
        "shard": t.shard,
        "method": a.method,
        "route": t.route.as_deref().unwrap_or("(none)"),
        "status": a.status,
        "scimType": t.scim_type,
        "durationMs": now.saturating_sub(a.at),
        "d1Calls": meter.calls(Binding::D1),
        "credential": t.credential.map(Credential::name),
        "keyId": t.key_id,
    });
    worker::console_log!("{line}");
}

#[cfg(test)]
mod tests {
    use super::template;

    #[test]
    fn templates_keep_the_routes_words_only() {
        let c = &["users", "tokens"];
        assert_eq!(
            template("/admin/v1/tenants/acme.us/users/u-1", c),
            "/admin/v1/tenants/{sub}/users/{id}"
        );
        assert_eq!(
            template("/admin/v1/tenants/acme/tokens/tok_x", c),
            "/admin/v1/tenants/{sub}/tokens/{id}"
        );
        assert_eq!(template("/admin/v1/tenants", c), "/admin/v1/tenants");
    }
}
