//! The tenant admin's console, served by the Worker itself on the operator host:
//!
//! ```text
//! GET    /console/link/{secret}     open a one-time link: a session cookie, then /console
//! GET    /console                   the page (its CSRF token in a meta tag)
//! GET    /console/console.js|.css   the page's script and style (no inline script)
//! GET    /console/api/overview      tenant, Tenant URL, tokens, OAuth client, summary
//! POST   /console/api/tokens        "Generate new": the plaintext once
//! DELETE /console/api/tokens/{id}   revoke
//! POST   /console/api/oauth/secrets          "Generate new" client secret: the plaintext once
//! DELETE /console/api/oauth/secrets/{id}     revoke it and its access tokens
//! PUT    /console/api/oauth/federation       {issuer, subject, audience, jwksUri}
//! DELETE /console/api/oauth/federation       remove it and its access tokens
//! GET    /console/api/logs          recent activity (?outcome=failure&after=)
//! POST   /console/api/signout       end the session
//! ```
//!
//! The session cookie is `HttpOnly`, `SameSite=Strict`, `Path=/console`, and `Secure` except
//! on localhost; every API call must also carry the page's CSRF token in `X-CSRF-Token`. Every
//! response carries a strict Content-Security-Policy (`script-src 'self'`, no inline script),
//! `frame-ancestors 'none'`, `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`.
//! The logic is [`crate::service::console`]'s.

use crate::http::body::from_body;
use serde_json::json;
use worker::{Headers, Method, Request, Response};

use super::app::App;
use super::assets;
use super::host_app::Query;
use super::oauth::{oauth_json, FederationBody};
use super::reply::{header, json_body, render, Reply, Surface};
use crate::http::d1::D1;
use crate::service::console::{self, Admin};
use crate::service::log::LogQuery;
use crate::service::{host_app as reads, oauth, roles, shards, tenants};
use scim_core::scim::error::{quote, Error, Result};
use scim_core::time::rfc3339;

/// The page, its script and its style, among the static assets ([`super::assets`]).
const PAGE: &str = "/console/page.html";
const SCRIPT: &str = "/console/console.js";
const STYLE: &str = "/console/console.css";

/// The session cookie's name.
const COOKIE: &str = "scim_console";

/// The policy of every console response: only this origin's script, style and calls.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The methods the console serves (its pages GET, its calls also POST, PUT and DELETE).
pub const ALLOW: &str = "GET, POST, PUT, DELETE";

/// Serve a `/console` path.
pub async fn serve(app: &App, req: Request, path: &str) -> worker::Result<Response> {
    if super::reply::method(&req).is_none() {
        // A method the runtime would read as GET (`PROPFIND` would use a link up): refused.
        let mut r = message(405, "Method not allowed", "Open the console in a browser.")?;
        r.headers_mut().set("allow", ALLOW)?;
        return secure(r);
    }
    let response = match path.trim_end_matches('/') {
        "/console/console.js" => file(app, SCRIPT, "text/javascript; charset=utf-8").await,
        "/console/console.css" => file(app, STYLE, "text/css; charset=utf-8").await,
        "/console" => page(app, &req).await,
        p => match p.strip_prefix("/console/link/") {
            Some(secret) => open(app, &req, secret).await,
            None => match p.strip_prefix("/console/api/") {
                Some(call) => render(Surface::Admin, api(app, req, call).await),
                None => message(404, "Not found", "There is no such console page."),
            },
        },
    }?;
    // The route's words, or none: a link's secret and an unknown call's words are not ours.
    let route = if path.starts_with("/console/link/") {
        "/console/link/{secret}".to_string()
    } else if response.status_code() == 404 {
        "/console/(unknown)".to_string()
    } else {
        super::trace::template(path.trim_end_matches('/'), &["tokens", "secrets"])
    };
    app.trace.borrow_mut().route = Some(route);
    secure(response)
}

/// The security headers every console response carries.
fn secure(response: Response) -> worker::Result<Response> {
    let headers = response.headers().clone();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ] {
        headers.set(name, value)?;
    }
    Ok(response.with_headers(headers))
}

fn text(status: u16, content_type: &str, body: String) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", content_type)?;
    Ok(Response::from_bytes(body.into_bytes())?
        .with_status(status)
        .with_headers(headers))
}

/// A static file (the script, the style) as the console serves it.
async fn file(app: &App, path: &str, content_type: &str) -> worker::Result<Response> {
    match assets::text(app, path).await {
        Ok(body) => text(200, content_type, body),
        Err(e) => failure(e, "console", "Reload the page in a moment."),
    }
}

/// A plain page that says one thing.
fn message(status: u16, title: &str, text_: &str) -> worker::Result<Response> {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><link rel=\"stylesheet\" href=\"/console/console.css\"></head>\
         <body><main><section><h1>{t}</h1><p>{m}</p></section></main></body></html>",
        t = escape(title),
        m = escape(text_)
    );
    text(status, "text/html; charset=utf-8", body)
}

/// The page for a failure: D1 briefly unavailable is a 503 the browser may retry (`again` says
/// how), anything else a 500 (its cause goes to the Worker's log).
fn failure(e: Error, what: &str, again: &str) -> worker::Result<Response> {
    if e.status == 503 {
        let mut r = message(503, "Briefly unavailable", again)?;
        r.headers_mut().set("retry-after", "1")?;
        return Ok(r);
    }
    worker::console_error!("{what}: {}", e.cause.unwrap_or(e.detail));
    message(500, "Something went wrong", again)
}

/// Text for HTML, attribute values included.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The session cookie's value, if the request has one.
fn cookie(req: &Request) -> Option<String> {
    header(req, "cookie")?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// `Secure` everywhere but on localhost, where the console is served over plain HTTP.
fn cookie_attributes(app: &App, max_age_secs: i64) -> String {
    let local = super::app::is_local(&app.origin.host);
    format!(
        "Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if local { "" } else { "; Secure" }
    )
}

/// `GET /console/link/{secret}`: a session, then the page; 410 with a plain page when the link
/// is used or expired.
///
/// The session's cookie is `SameSite=Strict`, and the link is opened from the vendor's app, on
/// another site: a browser does not send a Strict cookie with a navigation another site
/// started, a redirect included, so a `303` to `/console` would land on "Signed out". The
/// answer is therefore a page of this origin that moves on to `/console` itself (a meta
/// refresh, and a link for a browser that does not follow it): a navigation this site starts
/// carries the cookie. Strict stays, rather than `Lax`: no other site can ever make the
/// browser send the session, even with a top-level GET.
async fn open(app: &App, req: &Request, secret: &str) -> worker::Result<Response> {
    if req.method() != Method::Get {
        return message(405, "Method not allowed", "Open the link in a browser.");
    }
    let started = match shard_of(app, Some(secret)).await {
        Ok(Some((id, db, secret))) => console::open_link(&db, &app.rt, secret)
            .await
            .map(|s| (id, s)),
        Ok(None) => Err(Error::new(410, console::LINK_UNUSABLE)),
        Err(e) => Err(e),
    };
    match started {
        Ok((id, s)) => {
            let max_age = s.expires_at.saturating_sub(app.now) / 1000;
            let mut r = text(200, "text/html; charset=utf-8", ONWARD.to_string())?;
            r.headers_mut().set(
                "set-cookie",
                &format!(
                    "{COOKIE}={id}.{}; {}",
                    s.secret,
                    cookie_attributes(app, max_age)
                ),
            )?;
            Ok(r)
        }
        Err(e) if e.status == 410 => message(410, "This link cannot be used", &e.detail),
        // The link is used up only when its use commits, so a failure leaves it usable.
        Err(e) => failure(e, "console link", "Open the link again in a moment."),
    }
}

/// A link's or a session's secret is `<tenant id>.<secret>`: the id finds the shard
/// that holds the link or the session (the catalog, once per isolate); the secret, whose
/// hash is stored there, finds the row. `None` when there is no such tenant (or the
/// text is not of that form), which is answered as an unknown secret.
async fn shard_of<'t>(app: &App, text: Option<&'t str>) -> Result<Option<(String, D1, &'t str)>> {
    let Some((id, secret)) = text.and_then(|t| t.split_once('.')) else {
        return Ok(None);
    };
    let known = id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !known {
        return Ok(None);
    }
    Ok(shards::locate_id(&app.databases(), id)
        .await?
        .map(|at| (at.org.id, at.db, secret)))
}

/// The page a link answers with: on to `/console`, from this origin.
const ONWARD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
    <meta http-equiv=\"refresh\" content=\"0; url=/console\">\
    <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
    <title>Opening the console</title><link rel=\"stylesheet\" href=\"/console/console.css\"></head>\
    <body><main><section><h1>Opening the console…</h1>\
    <p><a href=\"/console\">Continue to the console</a></p></section></main></body></html>";

/// `GET /console`: the page for a session, or a page saying how to get one.
async fn page(app: &App, req: &Request) -> worker::Result<Response> {
    let cookie = cookie(req);
    let admin = match shard_of(app, cookie.as_deref()).await {
        Ok(Some((_, db, secret))) => console::session(&db, &app.rt, Some(secret), None).await,
        Ok(None) => Err(console::signed_out()),
        Err(e) => Err(e),
    };
    // The page's file is read only for a session; failing to read it fails as a session would.
    let ready = match admin {
        Ok(a) => assets::text(app, PAGE).await.map(|page| (a, page)),
        Err(e) => Err(e),
    };
    match ready {
        Ok((a, page)) => {
            let html = page
                .replace("{{csrf}}", &escape(&a.csrf))
                .replace("{{name}}", &escape(&a.name))
                .replace("{{subdomain}}", &escape(&a.subdomain));
            text(200, "text/html; charset=utf-8", html)
        }
        Err(e) if e.status == 401 => message(
            401,
            "Signed out",
            "Open the SCIM provisioning console from your organisation's settings in the application.",
        ),
        Err(e) => failure(e, "console", "Reload the page in a moment."),
    }
}

struct Nothing {}
from_body!(Nothing {});

/// The console's JSON calls: the session cookie and the CSRF header, always.
async fn api(app: &App, mut req: Request, call: &str) -> Result<Reply> {
    let cookie = cookie(&req);
    let csrf = header(&req, "x-csrf-token");
    let (_, db, secret) = shard_of(app, cookie.as_deref())
        .await?
        .ok_or_else(console::signed_out)?;
    let admin = console::session(&db, &app.rt, Some(secret), Some(csrf.as_deref())).await?;
    {
        let mut t = app.trace.borrow_mut();
        t.tenant = Some(admin.tenant_id.clone());
        t.credential = Some(super::trace::Credential::ConsoleSession);
    }
    let method = req.method();
    match (method, call) {
        (Method::Get, "overview") => overview(app, &db, &admin).await,
        (Method::Post, "tokens") => {
            // Nothing to send; a body, if any, must be empty JSON.
            json_body::<Nothing>(&mut req, 1024).await?;
            let generated = console::create_token(&db, &app.rt, &admin).await?;
            Ok(Reply::json(
                201,
                json!({"id": generated.id, "token": generated.token.plaintext,
                       "createdAt": rfc3339(app.now)}),
            ))
        }
        (_, oauth_call) if oauth_call.starts_with("oauth/") => {
            oauth_api(app, req, &db, &admin, oauth_call).await
        }
        (_, "roles") => roles_api(app, req, &db, &admin).await,
        (Method::Delete, id) if id.starts_with("tokens/") => {
            let id = id.trim_start_matches("tokens/");
            tenants::revoke_token(&db, &admin.subdomain, id, app.now).await?;
            Ok(Reply::no_content())
        }
        (Method::Get, "logs") => {
            let q = Query::of(&req)?;
            let query = LogQuery {
                before: q.get("after").map(reads::parse_log_cursor).transpose()?,
                failed: q.outcome()?,
                resource_id: None,
                limit: q.limit()?,
            };
            let page = console::logs(&db, &admin, &query).await?;
            Ok(Reply::json(
                200,
                json!({"items": page.items, "next": page.next}),
            ))
        }
        (Method::Post, "signout") => {
            console::sign_out(&db, secret).await?;
            Ok(Reply::no_content().with_header(
                "set-cookie",
                format!("{COOKIE}=; {}", cookie_attributes(app, 0)),
            ))
        }
        (_, other) => Err(Error::not_found(format!(
            "no console call {}",
            quote(other)
        ))),
    }
}

/// The console's calls on the tenant's OAuth client: its admin manages its own secrets and
/// federated credential, as the admin API does for the vendor.
async fn oauth_api(
    app: &App,
    mut req: Request,
    db: &D1,
    admin: &Admin,
    call: &str,
) -> Result<Reply> {
    match (req.method(), call) {
        (Method::Post, "oauth/secrets") => {
            json_body::<Nothing>(&mut req, 1024).await?;
            let s = console::create_secret(db, &app.rt, admin).await?;
            Ok(Reply::json(
                201,
                json!({"id": s.id, "clientId": s.client_id, "clientSecret": s.secret,
                       "expiresAt": rfc3339(s.expires_at)}),
            ))
        }
        (Method::Delete, id) if id.starts_with("oauth/secrets/") => {
            let id = id.trim_start_matches("oauth/secrets/");
            oauth::revoke_secret(db, &admin.tenant_id, id, app.now).await?;
            Ok(Reply::no_content())
        }
        (Method::Put, "oauth/federation") => {
            let f: FederationBody = json_body(&mut req, 8 * 1024)
                .await?
                .ok_or_else(|| Error::invalid("the federated credential's fields are required"))?;
            let f = oauth::Federation::from(f);
            let allow = app.config.dev_allow_loopback;
            console::set_federation(db, &app.rt, admin, &f, allow).await?;
            Ok(Reply::no_content())
        }
        (Method::Delete, "oauth/federation") => {
            oauth::clear_federation(db, &app.rt, &admin.tenant_id).await?;
            Ok(Reply::no_content())
        }
        (_, other) => Err(Error::not_found(format!(
            "no console call {}",
            quote(other)
        ))),
    }
}

/// Groups the console lists for mapping to roles, at most.
const ROLE_GROUPS: u32 = 500;

/// What the console's Roles section saves: the mappings and the default, together.
struct RolesBody {
    mappings: Vec<super::roles::MappingBody>,
    default_role: Option<String>,
}
from_body!(RolesBody { mappings, default_role = "defaultRole" });

/// The console's roles from groups: the app's roles, the organisation's groups (the first
/// [`ROLE_GROUPS`] by id) with the role each gives, and the default role.
async fn roles_api(app: &App, mut req: Request, db: &D1, admin: &Admin) -> Result<Reply> {
    let id = &admin.tenant_id;
    let now = match req.method() {
        Method::Put => {
            let body: RolesBody = json_body(&mut req, 64 * 1024)
                .await?
                .ok_or_else(|| Error::invalid("the mappings and the default role are required"))?;
            let pairs = super::roles::pairs(body.mappings);
            roles::set_mappings(db, &app.rt, id, &pairs).await?;
            roles::set_default(db, &app.rt, id, body.default_role.as_deref()).await?
        }
        Method::Get => roles::of_tenant(db, id).await?,
        _ => return Err(Error::method_not_allowed("GET, PUT")),
    };
    let mut j = super::roles::tenant_json(&now);
    let groups = reads::groups(db, &admin.subdomain, None, ROLE_GROUPS).await?;
    if let Some(o) = j.as_object_mut() {
        o.insert("groups".into(), json!(groups.items));
        o.insert("moreGroups".into(), json!(groups.next.is_some()));
    }
    Ok(Reply::json(200, j))
}

/// What the page shows first.
async fn overview(app: &App, db: &D1, a: &Admin) -> Result<Reply> {
    let tokens: Vec<serde_json::Value> = tenants::list_tokens(db, &a.subdomain)
        .await?
        .iter()
        .map(|t| {
            json!({"id": t.id, "createdAt": rfc3339(t.created_at),
                   "lastUsedAt": t.last_used_at.map(rfc3339), "hint": t.hint})
        })
        .collect();
    let summary = console::summary(db, a, app.now).await?;
    let url = app.tenant_url(&a.subdomain);
    let oauth = oauth_json(app, &a.subdomain, &oauth::status(db, &a.tenant_id).await?);
    Ok(Reply::json(
        200,
        json!({
            "tenant": {"name": a.name, "subdomain": a.subdomain,
                             "provisioningEnabled": a.provisioning_enabled},
            "tenantUrl": url,
            "tokens": tokens,
            "oauth": oauth,
            "summary": summary,
            "sessionExpiresAt": rfc3339(a.expires_at),
        }),
    ))
}

/// `POST /admin/v1/tenants/{sub}/console-links`: a one-time link for the vendor's app to hand
/// the tenant's admin.
pub async fn create_link(app: &App, db: &D1, id: &str, sub: &str) -> Result<Reply> {
    let origin = app.console_origin()?.base();
    let link = console::create_link(db, &app.rt, sub, app.config.console_link_ms).await?;
    Ok(Reply::json(
        201,
        json!({"url": format!("{origin}/console/link/{id}.{}", link.secret),
               "expiresAt": rfc3339(link.expires_at)}),
    ))
}
