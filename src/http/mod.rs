//! The edge: the Worker's requests in, responses out. It parses a request, calls the service
//! that owns its logic ([`crate::service`]), and renders the result; no SQL and no SCIM rule
//! lives here.
//!
//! Route table (hosts are classified by [`scim_core::tenancy::host::classify`]):
//!
//! | host | path | surface |
//! |---|---|---|
//! | `<sub>.<BASE_DOMAIN>` | `/api/scim/v2/…` | SCIM, tenant `<sub>` ([`scim`]) |
//! | `<sub>.<BASE_DOMAIN>` | `/oauth/token`, `/.well-known/oauth-authorization-server` | tenant `<sub>`'s token endpoint and its metadata ([`oauth`]) |
//! | any other host | `/tenants/<sub>/oauth/token`, `/tenants/<sub>/.well-known/…` | the same, in the path form |
//! | any other host | `/tenants/<sub>/api/scim/v2/…` | SCIM, tenant `<sub>` (no wildcard DNS) |
//! | any other host | `/admin/v1/…` | the admin API ([`admin`]) |
//! | any other host | `/console…` | the tenant admin's console ([`console`]) |
//! | any | `/docs` | a short documentation page (`docs.md`) |
//! | anything else | | 404 SCIM Error |
//!
//! Query strings are ignored by routing, so a Tenant URL published with `?aadOptscim062020`
//! (Entra's flag for its 2020 SCIM behaviour) works as-is.
//!
//! What both surfaces share lives beside them, not in either: [`app`] (bindings, settings, the
//! services' runtime), [`d1`] (the store's executor on D1) and [`meter`] (what a request spent
//! on its bindings), [`shards`] (which databases are shards, and where a tenant lives),
//! [`reply`] (the one mapping of a result to a response, capped body reading), [`limit`] (the
//! rate limit), [`log_buffer`] (log entries written after the response, gathered per
//! tenant). The host app's reads are [`host_app`]'s.

pub mod admin;
pub mod app;
pub mod assets;
pub mod body;
pub mod console;
pub mod credentials;
pub mod d1;
pub mod host_app;
/// The host app's keys and roles, by their names here too.
pub use host_app::{keys, roles};
pub mod jwks;
pub mod limit;
pub mod log_buffer;
pub mod meter;
pub mod oauth;
pub mod reply;
pub mod scim;
pub mod shards;
pub mod trace;

use serde_json::Value;
use worker::{Context, Env, Request, Response};

use app::App;
use reply::{header, render, Reply, Surface};
use scim_core::scim::error::{quote, Error, Result};
use scim_core::tenancy::host::{classify, split_tenant_path, HostKind};

/// An outgoing request to `url` as `init` says (a webhook's POST, a key set's GET, an asset's
/// read), built from the platform's own `RequestInit`: the `worker` crate's converts its `cf`
/// options with `serde_wasm_bindgen`, which would be in the wasm for that alone.
pub fn outgoing(url: &str, init: &worker::web_sys::RequestInit) -> worker::Result<Request> {
    worker::web_sys::Request::new_with_str_and_init(url, init)
        .map(Request::from)
        .map_err(worker::Error::from)
}

/// The service's documentation page (the ServiceProviderConfig's `documentationUri`): a short
/// one, compiled in; the README itself would cost the wasm about 30 KB gzip.
const DOCS: &str = include_str!("docs.md");

fn docs(req: &Request) -> Result<Reply> {
    match req.method() {
        worker::Method::Get | worker::Method::Head => Ok(Reply {
            status: 200,
            body: Some(Value::String(DOCS.to_string())),
            headers: vec![("cache-control", "public, max-age=3600".to_string())],
        }),
        _ => Err(Error::method_not_allowed("GET, HEAD")),
    }
}

/// Entry point from the fetch event. Never panics; every failure becomes an error response.
pub async fn handle(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let app = match App::new(env, ctx, &req) {
        Ok(app) => app,
        Err(e) => return render(Surface::Scim, Err(e)),
    };
    let request_id = header(&req, "cf-ray");
    let method = req.method().to_string();
    let response = respond(&app, req).await?;
    let answered = trace::Answered {
        at: app.now,
        request_id: request_id.as_deref(),
        method: &method,
        status: response.status_code(),
    };
    trace::emit(&answered, &app.trace, &app.meter);
    Ok(response)
}

/// The response to `req`, with its `Server-Timing`.
async fn respond(app: &App, req: Request) -> worker::Result<Response> {
    let path = req.path();
    let console = (path == "/console" || path.starts_with("/console/")) && is_operator(app, &req);
    let mut response = if console {
        // The console answers pages as well as JSON: it renders its own responses (and
        // refuses a method it does not serve itself, with its security headers).
        console::serve(app, req, &path).await?
    } else if reply::method(&req).is_none() {
        // A method the runtime would read as GET: refused before routing, so before any
        // side effect (a log entry, a D1 call).
        let (surface, allow) = allowed(app, &req, &path);
        render(surface, Err(Error::method_not_allowed(allow)))?
    } else {
        let (surface, result) = route(app, req).await;
        if let Err(e) = &result {
            app.trace.borrow_mut().scim_type = e.scim_type.map(|t| t.as_str());
        }
        render(surface, result)?
    };
    response
        .headers_mut()
        .set("server-timing", &app.meter.server_timing())?;
    Ok(response)
}

/// The surface of `path` and the methods it serves, for a method no route serves.
fn allowed(app: &App, req: &Request, path: &str) -> (Surface, &'static str) {
    if path == scim::discovery::DOCS_PATH {
        return (Surface::Docs, "GET, HEAD");
    }
    let host = header(req, "host").unwrap_or_default();
    let kind = classify(&host, &app.config.base_domain);
    let below_tenant = match &kind {
        HostKind::Tenant(_) => Some(path),
        HostKind::Operator => split_tenant_path(path).map(|(_, rest)| rest),
    };
    if below_tenant.is_some_and(oauth::serves) {
        let post = below_tenant == Some(oauth::TOKEN_PATH);
        return (Surface::OAuth, if post { "POST" } else { "GET, HEAD" });
    }
    let admin = kind == HostKind::Operator
        && split_tenant_path(path).is_none()
        && (path == "/admin/v1" || path.starts_with("/admin/v1/"));
    if admin {
        (Surface::Admin, admin::ALLOW)
    } else {
        (Surface::Scim, scim::ALLOW)
    }
}

fn is_operator(app: &App, req: &Request) -> bool {
    let host = header(req, "host").unwrap_or_default();
    classify(&host, &app.config.base_domain) == HostKind::Operator
}

/// A scheduled run: unfinished moves ([`crate::service::moves`]), tenant creates that never
/// finished ([`crate::service::tenants::sweep_unfinished`]), then the upkeep of
/// [`crate::service::upkeep`], each within a time budget, its report in the Worker's log.
pub async fn upkeep(env: Env) {
    let run = async {
        let config = app::Config::of(&env)?;
        let settings = config.upkeep;
        let meter = Default::default();
        let all = shards::Bindings::of(&env, &meter);
        let rt = app::Platform::at_start();
        // Moves first: a move's switch should not wait behind retention.
        let moving = crate::service::moves::drive_all(&all, &rt, MOVES_BUDGET_MS).await;
        if let Err(e) = moving {
            worker::console_error!("moves: {}", e.cause.unwrap_or(e.detail));
        }
        // Tenant creates that failed half-way and were not retried.
        match crate::service::tenants::sweep_unfinished(&all, &rt).await {
            Ok(s) if s == Default::default() => {}
            Ok(s) => worker::console_log!(
                "tenants: {} unfinished creates taken off the list, {} found made",
                s.dropped,
                s.made
            ),
            Err(e) => worker::console_error!("tenants: {}", e.cause.unwrap_or(e.detail)),
        }
        // A declaration of the app's roles the request that made it could not apply to every
        // tenant in its budget.
        match crate::service::roles::apply_pending(&all, &rt, ROLES_BUDGET_MS).await {
            Ok(0) => {}
            Ok(left) => {
                worker::console_log!("roles: {left} tenants still apply an earlier declaration")
            }
            Err(e) => worker::console_error!("roles: {}", e.cause.unwrap_or(e.detail)),
        }
        // Alerts first, so that the backstop below wakes their webhooks in the same run.
        let alerting =
            crate::service::host_app::alerts::evaluate(&all, &rt, &config.alerts, ALERTS_BUDGET_MS);
        match alerting.await {
            Ok(r) if r.raised > 0 || r.cleared > 0 => {
                worker::console_log!("alerts: {} raised, {} cleared", r.raised, r.cleared)
            }
            Ok(_) => {}
            Err(e) => worker::console_error!("alerts: {}", e.cause.unwrap_or(e.detail)),
        }
        // Webhook lanes whose Queue message was lost.
        host_app::webhooks::backstop(&env).await;
        crate::service::upkeep::run_all(&all, &rt, settings, UPKEEP_BUDGET_MS).await
    };
    match run.await {
        Ok(r) => worker::console_log!(
            "upkeep: {} events, {} log entries and {} webhook deliveries expired, {} log entries over the cap, {} tenants purging{}",
            r.events_expired,
            r.logs_expired,
            r.deliveries_expired,
            r.logs_capped,
            r.purges.iter().filter(|p| p.remaining > 0).count(),
            if r.unfinished { " (continues next run)" } else { "" }
        ),
        Err(e) => worker::console_error!("upkeep failed: {}", e.cause.unwrap_or(e.detail)),
    }
}

/// Time a scheduled run carries moves on before its upkeep.
const MOVES_BUDGET_MS: i64 = 20_000;

/// Time a scheduled run applies a declaration of the app's roles to tenants.
const ROLES_BUDGET_MS: i64 = 5_000;

/// Time a scheduled run decides alerts.
const ALERTS_BUDGET_MS: i64 = 5_000;

/// Time a scheduled run works before it leaves the rest to the next.
const UPKEEP_BUDGET_MS: i64 = 20_000;

async fn route(app: &App, req: Request) -> (Surface, Result<Reply>) {
    let host = header(&req, "host").unwrap_or_default();
    let path = req.path();
    if path == scim::discovery::DOCS_PATH {
        return (Surface::Docs, docs(&req));
    }
    match classify(&host, &app.config.base_domain) {
        HostKind::Tenant(sub) if oauth::serves(&path) => (
            Surface::OAuth,
            oauth::serve(app, req, &sub, "", &path).await,
        ),
        HostKind::Tenant(sub) => (Surface::Scim, scim::serve(app, req, &sub, "", &path).await),
        HostKind::Operator => {
            if let Some((sub, rest)) = split_tenant_path(&path).filter(|(_, r)| oauth::serves(r)) {
                let mount = format!("/tenants/{sub}");
                (
                    Surface::OAuth,
                    oauth::serve(app, req, &sub, &mount, rest).await,
                )
            } else if let Some((sub, rest)) = split_tenant_path(&path) {
                let mount = format!("/tenants/{sub}");
                (
                    Surface::Scim,
                    scim::serve(app, req, &sub, &mount, rest).await,
                )
            } else if path == "/admin/v1" || path.starts_with("/admin/v1/") {
                (Surface::Admin, admin::serve(app, req, &path).await)
            } else {
                (
                    Surface::Scim,
                    Err(Error::not_found(format!("no route for {}", quote(&path)))),
                )
            }
        }
    }
}
