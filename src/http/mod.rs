//! The HTTP edge: one router function, thin handlers, and the one place where a result becomes a
//! response.
//!
//! Route table (hosts are classified by [`crate::tenancy::host::classify`]):
//!
//! | host | path | surface |
//! |---|---|---|
//! | `<sub>.<BASE_DOMAIN>` | `/api/scim/v2/…` | SCIM, tenant `<sub>` ([`scim`]) |
//! | any other host | `/tenants/<sub>/api/scim/v2/…` | SCIM, tenant `<sub>` (no wildcard DNS) |
//! | any other host | `/admin/v1/…` | admin API ([`crate::admin`]) |
//! | anything else | | 404 SCIM Error |
//!
//! Query strings are ignored by routing, so a Tenant URL published with `?aadOptscim062020`
//! (entra-dialect.md §1.8) works as-is.

pub mod auth;
pub mod discovery;
pub mod groups;
pub mod limit;
pub mod resources;
pub mod scim;
pub mod search;
pub mod users;

use futures_util::StreamExt;
use serde_json::Value;
use worker::{Context, Env, Headers, Request, Response};

use crate::scim::error::{quote, Error, Result, SCIM_MEDIA_TYPE};
use crate::store::d1::D1;
use crate::tenancy::host::{classify, split_tenant_path, HostKind, Origin};

/// Deployment settings, read from `[vars]` and secrets once per request.
pub struct Config {
    /// `BASE_DOMAIN`: tenants are `<sub>.<BASE_DOMAIN>`.
    pub base_domain: String,
    /// `TENANT_URL_FORM = "path"`: publish `/tenants/<sub>/…` Tenant URLs (no wildcard DNS).
    pub path_form_urls: bool,
    /// `ADMIN_TOKEN` (a secret in production, `.dev.vars` locally). Empty: admin API closed.
    pub admin_token: String,
}

/// Everything a handler may use for one request.
pub struct App {
    pub env: Env,
    pub ctx: Context,
    pub db: D1,
    pub config: Config,
    /// The request's time, Unix milliseconds.
    pub now: i64,
    /// Scheme, host and port the request came in on (for URLs we hand out).
    pub origin: Origin,
}

impl App {
    fn new(env: Env, ctx: Context, req: &Request) -> Result<App> {
        let var = |name: &str| env.var(name).map(|v| v.to_string()).ok();
        let base_domain = var("BASE_DOMAIN")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Error::internal("BASE_DOMAIN is not configured"))?;
        let config = Config {
            base_domain,
            path_form_urls: var("TENANT_URL_FORM").is_some_and(|v| v.eq_ignore_ascii_case("path")),
            admin_token: var("ADMIN_TOKEN").unwrap_or_default(),
        };
        let db = D1(env
            .d1("DB")
            .map_err(|e| Error::internal(format!("D1 binding DB: {e}")))?);
        let url = req
            .url()
            .map_err(|e| Error::internal(format!("request url: {e}")))?;
        let origin = Origin {
            scheme: url.scheme().to_string(),
            host: url.host_str().unwrap_or_default().to_string(),
            port: url.port(),
        };
        Ok(App {
            env,
            ctx,
            db,
            config,
            now: worker::Date::now().as_millis() as i64,
            origin,
        })
    }
}

/// A successful answer, independent of the runtime: status, JSON body (or none), extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// Read a request body of at most `cap` bytes. A `Content-Length` above the cap is refused with
/// 413 before a byte is read; a body without one (chunked) is read chunk by chunk and refused as
/// soon as it passes the cap. Either way no request makes the Worker buffer more than `cap`.
pub async fn read_body(req: &mut Request, cap: usize) -> Result<Vec<u8>> {
    let too_large = || Error::new(413, format!("the request body is larger than {cap} bytes"));
    let declared = req.headers().get("content-length").ok().flatten();
    if let Some(len) = declared {
        match len.trim().parse::<u64>() {
            Ok(n) if n > u64::try_from(cap).unwrap_or(u64::MAX) => return Err(too_large()),
            Ok(0) => return Ok(Vec::new()),
            Ok(_) => {}
            Err(_) => return Err(Error::invalid("Content-Length is not a number")),
        }
    }
    // No body at all (a GET, or an empty POST) is an empty body.
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Error::invalid(format!("could not read the request body: {e}")))?;
        if body.len().saturating_add(chunk.len()) > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Which API a request belongs to decides the error body and the media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Scim,
    Admin,
    /// The README at `/docs` (the ServiceProviderConfig's `documentationUri`).
    Docs,
}

/// The README, compiled in, served as the service's documentation.
const README: &str = include_str!("../../README.md");

fn docs(req: &Request) -> Result<Reply> {
    match req.method() {
        worker::Method::Get | worker::Method::Head => Ok(Reply {
            status: 200,
            body: Some(Value::String(README.to_string())),
            headers: vec![("cache-control", "public, max-age=3600".to_string())],
        }),
        _ => Err(Error::method_not_allowed("GET, HEAD")),
    }
}

/// Entry point from the fetch event. Never panics; every failure becomes an error response.
pub async fn handle(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let (surface, result) = match App::new(env, ctx, &req) {
        Ok(app) => route(&app, req).await,
        Err(e) => (Surface::Scim, Err(e)),
    };
    render(surface, result)
}

async fn route(app: &App, req: Request) -> (Surface, Result<Reply>) {
    let host = req.headers().get("host").ok().flatten().unwrap_or_default();
    let path = req.path();
    if path == discovery::DOCS_PATH {
        return (Surface::Docs, docs(&req));
    }
    match classify(&host, &app.config.base_domain) {
        HostKind::Tenant(sub) => (Surface::Scim, scim::serve(app, req, &sub, "", &path).await),
        HostKind::Operator => {
            if let Some((sub, rest)) = split_tenant_path(&path) {
                let mount = format!("/tenants/{sub}");
                (
                    Surface::Scim,
                    scim::serve(app, req, &sub, &mount, rest).await,
                )
            } else if path == "/admin/v1" || path.starts_with("/admin/v1/") {
                (Surface::Admin, crate::admin::serve(app, req, &path).await)
            } else {
                (
                    Surface::Scim,
                    Err(Error::not_found(format!("no route for {}", quote(&path)))),
                )
            }
        }
    }
}

/// The single mapping from a handler's result to an HTTP response.
fn render(surface: Surface, result: Result<Reply>) -> worker::Result<Response> {
    let reply = match result {
        Ok(reply) => reply,
        Err(e) => error_reply(surface, e),
    };
    let headers = Headers::new();
    let media_type = match surface {
        Surface::Scim => SCIM_MEDIA_TYPE,
        Surface::Admin => "application/json",
        Surface::Docs => "text/markdown; charset=utf-8",
    };
    if surface == Surface::Admin {
        // Admin responses carry tenant data and, once, a plaintext token.
        headers.set("cache-control", "no-store")?;
    }
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    let response = match reply.body {
        // The README is the only text body; everything else is JSON.
        Some(Value::String(text)) if surface == Surface::Docs && reply.status == 200 => {
            headers.set("content-type", media_type)?;
            Response::from_bytes(text.into_bytes())?
        }
        Some(body) => {
            let json_type = if surface == Surface::Docs {
                SCIM_MEDIA_TYPE
            } else {
                media_type
            };
            headers.set("content-type", json_type)?;
            Response::from_bytes(body.to_string().into_bytes())?
        }
        None => Response::empty()?,
    };
    Ok(response.with_status(reply.status).with_headers(headers))
}

fn error_reply(surface: Surface, e: Error) -> Reply {
    if let Some(cause) = &e.cause {
        // Logged with detail, answered without it.
        worker::console_error!("{} {}: {cause}", e.status, e.detail);
    }
    let body = match surface {
        Surface::Scim | Surface::Docs => e.scim_body(),
        Surface::Admin => e.admin_body(),
    };
    let mut reply = Reply::json(e.status, body);
    if let Some(allow) = e.allow {
        reply = reply.with_header("allow", allow);
    }
    if e.status == 503 {
        reply = reply.with_header("retry-after", "1");
    }
    if e.status == 429 {
        reply = reply.with_header("retry-after", limit::RETRY_AFTER_SECS.to_string());
    }
    if e.status == 401 {
        // RFC 6750 §3: a 401 names the scheme the client must use.
        reply = reply.with_header("www-authenticate", "Bearer realm=\"scim-edge\"");
    }
    reply
}
