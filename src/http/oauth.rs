//! The token endpoint of each tenant, `<origin of the Tenant URL>/oauth/token`, and its
//! metadata (RFC 8414) at `<origin>/.well-known/oauth-authorization-server`; in the path form
//! both are under `/tenants/<sub>`. The tenant is the host or the path, as for SCIM.
//!
//! What Entra does with it ("OAuth2 client credentials grant" in its provisioning settings,
//! or "Workload Identity Federation"): it POSTs `grant_type=client_credentials` with the
//! client id and secret in `Authorization: Basic` (or a client assertion), expects RFC 6749
//! §5.1's `{access_token, token_type, expires_in}`, and asks again when the token nears its
//! end. Answers are never cached (`Cache-Control: no-store`, §5.1). Refusals are RFC 6749
//! §5.2 errors that never say which part was wrong; they count against the same refusal
//! budget as SCIM's (`super::limit`) and are logged aggregated; an issued token is a
//! provisioning-log entry, never with a secret or an assertion in it. The endpoint has a rate
//! limit of its own per tenant and credential (`OAUTH_RATE_LIMIT`).
//!
//! What the admin API and the console show of a tenant's client, and the federated credential
//! they take, are here too ([`oauth_json`], [`FederationBody`]); the RFC 6749 error bodies are
//! rendered by [`super::reply`], like every other answer.

use crate::http::body::from_body;
use serde_json::{json, Value};
use worker::{Method, Request};

use super::app::App;
use super::credentials;
use super::jwks::EdgeKeys;
use super::limit;
use super::log_buffer;
use super::reply::{header, oauth_error, oauth_reply, read_body, Reply};
use super::shards::{located, relocate, remembered, Place};
use crate::service::log::{LogEntry, Refusal};
use crate::service::oauth::{self, Granted};
use crate::service::Runtime;
use scim_core::oauth::{parse, Client, Code, OAuthError, MAX_FORM_BYTES};
use scim_core::scim::error::{Error, Result};
use scim_core::tenancy::token;
use scim_core::time::rfc3339;

/// The token endpoint's path below the tenant's origin.
pub const TOKEN_PATH: &str = "/oauth/token";

/// The metadata document's path (RFC 8414 §3).
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// The token endpoint's own rate limit binding in `wrangler.toml`.
pub const BINDING: &str = "OAUTH_RATE_LIMIT";

/// Whether `path` (below the tenant's mount) is one of this module's.
pub fn serves(path: &str) -> bool {
    path == TOKEN_PATH || path == METADATA_PATH
}

/// The tenant's issuer: the origin of its Tenant URL, with `/tenants/<sub>` in the path form.
fn issuer(app: &App, sub: &str, mount: &str) -> String {
    let base = app.scim_base(sub, !mount.is_empty());
    let scim = format!("{mount}{}", super::scim::routes::PREFIX);
    let origin = base.strip_suffix(&scim).unwrap_or(&base);
    format!("{origin}{mount}")
}

/// Tenant `sub`'s token endpoint, in the deployment's form, from the configuration.
pub fn token_endpoint(app: &App, sub: &str) -> String {
    let mount = if app.config.path_form_urls {
        format!("/tenants/{sub}")
    } else {
        String::new()
    };
    format!("{}{TOKEN_PATH}", issuer(app, sub, &mount))
}

/// Serve `path` of tenant `sub` (`mount`: `""` on its host, `/tenants/<sub>` in the path form).
pub async fn serve(app: &App, req: Request, sub: &str, mount: &str, path: &str) -> Result<Reply> {
    // One of the two paths `serves` knows: ours, not the client's.
    app.trace.borrow_mut().route = Some(path.to_string());
    if path == METADATA_PATH {
        if !matches!(req.method(), Method::Get | Method::Head) {
            return Err(Error::method_not_allowed("GET, HEAD"));
        }
        if located(&app.databases(), sub).await?.is_none() {
            return Err(Error::not_found(
                "no organisation is served here; check the URL",
            ));
        }
        return Ok(metadata(&issuer(app, sub, mount)));
    }
    if req.method() != Method::Post {
        return Err(Error::method_not_allowed("POST"));
    }
    let mut asking = Asking {
        app,
        sub,
        address: limit::client_address(&req),
        secret_hash: None,
        refusal: None,
    };
    let answer = asking.token(req).await;
    if let Some((place, why)) = asking.refusal {
        let mut entry = why.entry(app.now, &asking.address, "POST".into(), TOKEN_PATH);
        entry.presented.extend(asking.secret_hash);
        log_buffer::refused(app, &place.shard, &place.id, entry);
    }
    answer
}

/// RFC 8414 §2: what a client needs to find and use the token endpoint.
fn metadata(issuer: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported":
                scim_core::oauth::jwt::ALGORITHMS,
            "response_types_supported": [],
        }),
    )
    .with_header("cache-control", "public, max-age=3600")
}

/// One token request at the edge: who asks, for which tenant, and what its log learns.
struct Asking<'a> {
    app: &'a App,
    sub: &'a str,
    address: String,
    /// The presented client secret's hash, when a secret was presented.
    secret_hash: Option<String>,
    /// A refusal to log aggregated: the tenant's place and why.
    refusal: Option<(Place, Refusal)>,
}

impl Asking<'_> {
    /// The grant: the refusal budget, the tenant, the rate limit, the request, then the
    /// credential checked and the token issued (`service::oauth::grant`).
    async fn token(&mut self, mut req: Request) -> Result<Reply> {
        let app = self.app;
        let authorization = header(&req, "authorization");
        let content_type = header(&req, "content-type");
        let body = read_body(&mut req, MAX_FORM_BYTES).await?;
        let parsed = parse(content_type.as_deref(), authorization.as_deref(), &body);
        if let Ok(Client::Secret { secret, .. }) = &parsed {
            self.secret_hash = Some(token::hash(secret));
        }
        let cached = remembered(self.sub);
        let address = self.address.clone();
        if limit::over_budget(app.now, &address, cached.as_ref().map(|p| p.id.as_str())) {
            let valid = match (&parsed, &self.secret_hash, &cached) {
                (_, Some(h), Some(p)) => {
                    credentials::known(app, &app.shard(&p.shard)?, self.sub, h).await?
                }
                (Ok(Client::Assertion { jwt, .. }), _, Some(_)) => {
                    credentials::assertion_known(app, self.sub, jwt).await
                }
                _ => false,
            };
            if !valid {
                self.refusal = cached.map(|p| (p, Refusal::OverBudget));
                return Ok(oauth_reply(&oauth_error(&limit::budget_spent())));
            }
        }
        let Some(place) = located(&app.databases(), self.sub).await? else {
            limit::count_refusal(app, &address, None).await;
            let basic = parsed.as_ref().is_ok_and(Client::basic);
            return Ok(oauth_reply(&OAuthError::invalid_client(basic)));
        };
        {
            let mut t = app.trace.borrow_mut();
            t.place(&place.id, &place.shard);
            t.credential = Some(super::trace::Credential::OAuthClient);
        }
        // Keyed by tenant and credential, as SCIM's valve: a stranger's requests spend its
        // own count (and the refusal budget), never the one of the tenant's real client.
        let credential = match (&self.secret_hash, &parsed) {
            (Some(h), _) => h.clone(),
            (None, Ok(Client::Assertion { jwt, .. })) => scim_core::oauth::jwt::decode(jwt)
                .map(|a| token::hash(&format!("{}|{}", a.claims.iss, a.claims.sub)))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let key = format!("oauth:{}:{}", place.id, credential.get(..16).unwrap_or(""));
        if let Err(e) = limit::check_with(app, BINDING, &key).await {
            return Ok(oauth_reply(&oauth_error(&e)));
        }
        match parsed {
            Ok(client) => self.issue(place, &client).await,
            Err(e) => Ok(self.refused(e, place, "a malformed token request").await),
        }
    }

    /// Issue a token to `client` of the tenant at `place`, asking the catalog once more should
    /// the tenant have moved since this isolate learnt its place.
    async fn issue(&mut self, mut place: Place, client: &Client) -> Result<Reply> {
        let app = self.app;
        let lifetime = oauth::token_lifetime_ms(
            app.config.oauth_token_minutes.as_deref(),
            app.config.dev_token_seconds,
        )?;
        let keys = EdgeKeys { app };
        let mut again = true;
        loop {
            let db = app.shard(&place.shard)?;
            match oauth::grant(&db, &app.rt, &keys, &place.id, client, lifetime).await {
                Ok(granted) => {
                    // Both are valid now: while a refusal budget is spent they still pass.
                    if let Some(h) = &self.secret_hash {
                        credentials::learn(self.sub, h);
                    }
                    credentials::learn(self.sub, &token::hash(&granted.access_token));
                    if let Some(f) = &granted.federation {
                        credentials::learn_federation(self.sub, f.clone());
                    }
                    log_issued(app, &place, &granted, lifetime);
                    return Ok(Reply::json(
                        200,
                        json!({
                            "access_token": granted.access_token,
                            "token_type": "Bearer",
                            "expires_in": granted.expires_in_seconds,
                        }),
                    ));
                }
                Err(r) if r.gone && again => {
                    again = false;
                    match relocate(&app.databases(), self.sub).await? {
                        Some(p) if p != place => place = p,
                        _ => return Ok(self.refused(r.error, place, r.why).await),
                    }
                }
                Err(r) => return Ok(self.refused(r.error, place, r.why).await),
            }
        }
    }

    /// A refused grant's reply; a refusal (not a moment's unavailability) counts against the
    /// refusal budgets and is logged aggregated.
    async fn refused(&mut self, e: OAuthError, place: Place, why: &'static str) -> Reply {
        if e.code != Code::TemporarilyUnavailable {
            if let Some(h) = &self.secret_hash {
                // Revoked or expired since this isolate saw it work.
                credentials::forget(self.sub, h);
            }
            limit::count_refusal(self.app, &self.address, Some(&place.id)).await;
            self.refusal = Some((place, Refusal::InvalidClient(why)));
        }
        oauth_reply(&e)
    }
}

/// The log entry of an issued token: what it was issued for and for how long, never the
/// token, the secret or the assertion.
fn log_issued(app: &App, place: &Place, granted: &Granted, lifetime_ms: i64) {
    let minutes = lifetime_ms / 60_000;
    let lasting = if minutes > 0 {
        format!("{minutes} minutes")
    } else {
        format!("{} seconds", lifetime_ms / 1000)
    };
    let entry = LogEntry {
        at: app.now,
        method: "POST".into(),
        route: TOKEN_PATH.into(),
        status: 200,
        summary: Some(format!(
            "access token issued for {}, valid {lasting}",
            granted.via
        )),
        duration_ms: app.rt.clock().saturating_sub(app.now),
        ..LogEntry::default()
    };
    log_buffer::add(app, &place.shard, &place.id, entry);
}

/// A federated credential as the admin API and the console take it (Entra's four fields).
pub struct FederationBody {
    issuer: String,
    subject: String,
    audience: String,
    jwks_uri: String,
}
from_body!(FederationBody { issuer, subject, audience, jwks_uri = "jwksUri" });

impl From<FederationBody> for oauth::Federation {
    fn from(f: FederationBody) -> oauth::Federation {
        oauth::Federation {
            issuer: f.issuer,
            subject: f.subject,
            audience: f.audience,
            jwks_uri: f.jwks_uri,
        }
    }
}

/// A tenant's OAuth set-up as the admin API and the console show it (never a secret).
pub fn oauth_json(app: &App, sub: &str, s: &oauth::Status) -> Value {
    let secrets: Vec<Value> = s
        .secrets
        .iter()
        .map(|x| {
            json!({
                "id": x.id,
                "hint": x.hint,
                "createdAt": rfc3339(x.created_at),
                "expiresAt": rfc3339(x.expires_at),
                "lastUsedAt": x.last_used_at.map(rfc3339),
            })
        })
        .collect();
    let client = s.client.as_ref();
    json!({
        "clientId": client.map(|c| &c.client_id),
        "tokenEndpoint": token_endpoint(app, sub),
        "tenantUrl": app.tenant_url(sub),
        "secrets": secrets,
        "federation": client.and_then(|c| c.federation.as_ref()).map(|f| json!({
            "issuer": f.issuer,
            "subject": f.subject,
            "audience": f.audience,
            "jwksUri": f.jwks_uri,
        })),
    })
}
