//! The SCIM surface of one tenant, under `/api/scim/v2` ([`routes`]): count the request
//! against the rate limit, parse it into one [`Op`], call the service with every D1 call
//! behind the token's gate (`service::auth::Gated`), render the reply.
//!
//! Authentication decides the answer before anything else does: a request whose gate stayed
//! shut is refused as such (404, 401 or 403) whatever its route, body or filter, so an
//! unauthenticated caller learns nothing about which routes exist or what input is valid, and
//! nothing it sent was read or written. `/Users` and `/Groups` are served by [`resources`];
//! their logic is in [`crate::service`].

pub mod discovery;
pub mod render;
pub mod resources;
pub mod routes;
pub mod search;

use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{Method, Request};

use super::app::{request_url, App};
use super::credentials;
use super::limit;
use super::log_buffer;
use super::reply::{header, read_body, Reply};
use super::shards::{located, relocate, remembered, Place};
use super::trace::Credential;
use crate::http::d1::D1;
use crate::service::auth::Gated;
use crate::service::auth::{self, Principal, Verdict};

use crate::service::isolate::remember;
use crate::service::log::LogEntry;
use crate::service::log::{Refusal, RequestLog};
use crate::service::resources::Table;
use crate::service::shards::{Databases, CATALOG};
use crate::service::{Runtime, Scope};
use render::Ctx;
use routes::{Endpoint, Route, PREFIX};
use scim_core::scim::error::{quote, Error, Result, ScimType};
use scim_core::scim::query::ListParams;
use scim_core::scim::schema::{GROUP_TYPE, USER_TYPE};

/// Largest request body accepted: room for a push of 5,000 members named by our UUIDs (a
/// 1,600-member PATCH is 77 KB), far above any real user, and far under D1's 2 MB per value
/// (a body's content reaches D1 only as bound values, never as statement text).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Every method some SCIM route serves (for a method none does).
pub const ALLOW: &str = "GET, POST, PUT, PATCH, DELETE";

/// An operation on a resource endpoint, parsed from the method, the route, the query, the
/// precondition headers and the body.
pub enum Op {
    List(ListParams),
    Create(Value, ListParams),
    Get {
        id: String,
        params: ListParams,
        if_none_match: Option<String>,
    },
    Replace {
        id: String,
        body: Value,
        params: ListParams,
        if_match: Option<String>,
    },
    Patch {
        id: String,
        body: Value,
        params: ListParams,
        if_match: Option<String>,
    },
    Delete {
        id: String,
        if_match: Option<String>,
    },
}

/// Serve `path` (which still has its [`PREFIX`]) for tenant `sub`. `mount` is what
/// precedes the prefix in the URL (`""` on a tenant host, `/tenants/<sub>` in the path form).
///
/// Every request of a known tenant gets a provisioning-log entry: a write's rides in
/// its batch; any other (reads, failures) is written after the response (`wait_until`), so no
/// request waits for its entry. Refused authentication is logged aggregated instead
/// ([`log_buffer::refused`]): one entry per minute, address and reason, with the route's
/// template, never the stranger's path.
pub async fn serve(app: &App, req: Request, sub: &str, mount: &str, path: &str) -> Result<Reply> {
    let rest = match path.strip_prefix(PREFIX) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => {
            return Err(Error::not_found(format!(
                "no route for {}; SCIM lives under {PREFIX}",
                quote(path)
            )))
        }
    };
    let address = limit::client_address(&req);
    // A method the runtime names (`http::handle` answered any other 405), as `entry_of` has it.
    let method = req.method().to_string();
    // Should this isolate's idea of the tenant's shard be out of date (it moved, or
    // its subdomain now names another), the request is served again where it lives now: a
    // copy of it is kept for that, where there is more than one shard to be wrong about.
    let mut spare = if app.databases().bindings().len() > 1 {
        req.clone().ok()
    } else {
        None
    };
    let mut req = req;
    let mut tried: Option<Place> = None;
    loop {
        let log = RequestLog::new(entry_of(app, &req, rest));
        let mut seen = Seen::default();
        let result = authenticated(
            app, req, sub, mount, rest, &log, &address, &mut seen, &tried,
        )
        .await;
        if let Some(place) = seen.elsewhere.take() {
            if let Some(again) = spare.take() {
                tried = Some(place);
                req = again;
                continue;
            }
        }
        let shard = seen.shard.as_deref().unwrap_or(CATALOG);
        {
            let mut t = app.trace.borrow_mut();
            t.route = Some(format!("{PREFIX}{}", Route::parse(rest).template()));
            t.tenant.clone_from(&seen.tenant);
            t.shard.clone_from(&seen.shard);
        }
        match (seen.tenant, seen.refusal) {
            (Some(tenant_id), Some(refusal)) => {
                let mut entry =
                    refusal.entry(app.now, &address, method, Route::parse(rest).template());
                entry.presented.extend(seen.presented);
                log_buffer::refused(app, shard, &tenant_id, entry)
            }
            (Some(tenant_id), None) => {
                let wrote = method != "GET"
                    && !rest.ends_with("/.search")
                    && result.as_ref().is_ok_and(|r| r.status < 300);
                if wrote {
                    // Webhooks read the feed this write just committed to.
                    crate::http::host_app::webhooks::after_write(app, &tenant_id);
                }
                log_after(app, shard, tenant_id, &log, &result)
            }
            (None, _) => {}
        }
        return result;
    }
}

/// What authentication learnt of a request for its log entry.
#[derive(Default)]
struct Seen {
    /// The tenant, once known (also when the request is then refused).
    tenant: Option<String>,
    /// The shard the request was served on.
    shard: Option<String>,
    /// Why authentication refused it, if it did.
    refusal: Option<Refusal>,
    /// The hash of the credential the gate refused: one the tenant retired is its own
    /// identity provider's, and raises an alert.
    presented: Option<String>,
    /// The catalog places the tenant elsewhere than this isolate thought: serve the
    /// request again there.
    elsewhere: Option<Place>,
}

/// What the edge knows of a request for its log entry: never the query string (it may hold
/// filter values) or anything of the body.
fn entry_of(app: &App, req: &Request, rest: &str) -> LogEntry {
    // Client text in the log is bounded like everything else a request brings.
    let cut = |s: &str, n: usize| -> String { s.chars().take(n).collect() };
    let (resource_type, resource_id) = match Route::parse(rest) {
        Route::Collection(e) | Route::Search(e) => (Some(endpoint_type(e)), None),
        Route::Resource(e, id) => (Some(endpoint_type(e)), Some(cut(&id, MAX_LOGGED_ID))),
        _ => (None, None),
    };
    let route = cut(rest, MAX_LOGGED_ROUTE);
    LogEntry {
        at: app.now,
        method: req.method().to_string(),
        route: if route.is_empty() { "/".into() } else { route },
        resource_type,
        resource_id,
        request_id: header(req, "cf-ray").map(|r| cut(&r, MAX_LOGGED_ID)),
        ..LogEntry::default()
    }
}

/// Characters of a request's route kept in its log entry.
const MAX_LOGGED_ROUTE: usize = 300;
/// Characters of a resource id or a request id kept in a log entry.
const MAX_LOGGED_ID: usize = 100;

fn endpoint_type(e: Endpoint) -> &'static str {
    match e {
        Endpoint::Users => USER_TYPE.name,
        Endpoint::Groups => GROUP_TYPE.name,
    }
}

/// Write the request's log entry after the response (gathered with others of its
/// tenant, see [`log_buffer`]), unless its write's batch carried it.
fn log_after(app: &App, shard: &str, tenant_id: String, log: &RequestLog, result: &Result<Reply>) {
    let outcome = result.as_ref().map(|r| r.status);
    if let Some(entry) = log.finish(outcome, &[&USER_TYPE, &GROUP_TYPE], app.rt.clock()) {
        log_buffer::add(app, shard, &tenant_id, entry);
    }
}

/// Authenticate and serve: the refusal budget, the rate limit, then the operation with the
/// gate in each of its D1 batches (`service::auth::Gated`), then, if the gate stayed shut, why. `seen`
/// learns the tenant as soon as it is known, and why a credential was refused.
/// `tried`: the place a first attempt found out of date, which the catalog has since given.
#[allow(clippy::too_many_arguments)]
async fn authenticated(
    app: &App,
    req: Request,
    sub: &str,
    mount: &str,
    rest: &str,
    log: &RequestLog,
    address: &str,
    seen: &mut Seen,
    tried: &Option<Place>,
) -> Result<Reply> {
    let hash = auth::presented(header(&req, "authorization").as_deref());
    let cached = remembered(sub);
    let cached_id = cached.as_ref().map(|p| p.id.clone());
    if limit::over_budget(app.now, address, cached_id.as_deref()) {
        // Only a credential this isolate knows to be valid goes on; it never pays for the
        // failures of others. Everything else is refused without a D1 call (a tenant
        // this isolate does not know, from an address that spent its budget on unknown ones,
        // included: telling it from an unknown one would take the lookup the budget saves).
        let valid = match (&hash, &cached) {
            (Some(h), Some(p)) => credentials::known(app, &app.shard(&p.shard)?, sub, h).await?,
            _ => false,
        };
        if !valid {
            seen.tenant = cached_id;
            seen.shard = cached.map(|p| p.shard);
            seen.refusal = Some(Refusal::OverBudget);
            return Err(limit::budget_spent());
        }
    }
    let Some(place) = located(&app.databases(), sub).await? else {
        limit::count_refusal(app, address, None).await;
        return Err(auth::unknown_tenant(sub));
    };
    let tenant_id = place.id.clone();
    let db = app.shard(&place.shard)?;
    seen.tenant = Some(tenant_id.clone());
    seen.shard = Some(place.shard.clone());
    let Some(hash) = hash else {
        seen.refusal = Some(Refusal::NoToken);
        limit::count_refusal(app, address, Some(&tenant_id)).await;
        return Err(auth::missing_token());
    };
    let hash = hash.as_str();
    // Keyed by tenant and token: a caller without a valid token spends only its own
    // budget, never the tenant's.
    limit::check(
        app,
        &format!("{tenant_id}:{}", hash.get(..16).unwrap_or(hash)),
    )
    .await?;
    let gated = Gated::new(&db, &tenant_id, hash, app.now);
    let result = operate(app, req, sub, mount, rest, &gated, &tenant_id, log).await;
    let settled = auth::settle(&gated, sub).await?;
    if let Some(verdict) = settled.shut {
        why_shut(app, verdict, sub, hash, &place, tried, address, seen).await?;
    }
    if let Some(principal) = settled.principal {
        app.trace.borrow_mut().credential = Some(if principal.oauth {
            Credential::OAuthToken
        } else {
            Credential::SecretToken
        });
        credentials::learn(sub, hash);
        record_use(app, &place.shard, &principal);
    }
    result
}

/// Why the gate stayed shut: `Ok` when the token is valid and the failure was the operation's
/// own; else the error to answer, with what `seen` must log. When the tenant is not (or
/// no longer) on the shard this isolate thought, the catalog says where it is now and `seen`
/// asks for the request to be served there (nothing of it was written: its gate stayed shut).
#[allow(clippy::too_many_arguments)]
async fn why_shut(
    app: &App,
    verdict: Verdict,
    sub: &str,
    hash: &str,
    place: &Place,
    tried: &Option<Place>,
    address: &str,
    seen: &mut Seen,
) -> Result<()> {
    let elsewhere = matches!(verdict, Verdict::Moved(_))
        || matches!(&verdict, Verdict::Refused(r) if r.tenant_id.is_none());
    if elsewhere {
        let now = relocate(&app.databases(), sub).await?;
        if let Some(p) = now.filter(|p| p != place && tried.as_ref() != Some(p)) {
            seen.tenant = Some(p.id.clone());
            seen.shard = Some(p.shard.clone());
            seen.elsewhere = Some(p);
            return Err(replaced());
        }
    }
    match verdict {
        Verdict::Open => Ok(()),
        Verdict::Frozen => Err(auth::moving()),
        Verdict::Refused(r) => {
            seen.tenant = r.tenant_id;
            if r.error.status == 401 {
                seen.refusal = Some(Refusal::InvalidToken);
                seen.presented = Some(hash.to_string());
                credentials::forget(sub, hash);
            }
            if r.error.status != 403 {
                limit::count_refusal(app, address, seen.tenant.as_deref()).await;
            }
            Err(r.error)
        }
        Verdict::Moved(id) => {
            seen.tenant = Some(id);
            Err(replaced())
        }
    }
}

/// The tenant moved, or its subdomain names another now: 503, which clients retry (and
/// which the edge itself retries where it kept a copy of the request).
fn replaced() -> Error {
    Error::new(
        503,
        "this organisation was just moved, or replaced by another of the same name; retry the request",
    )
}

/// Parse the request into its operation and call the service, every D1 call through the gate.
#[allow(clippy::too_many_arguments)]
async fn operate(
    app: &App,
    mut req: Request,
    sub: &str,
    mount: &str,
    rest: &str,
    gated: &Gated<'_, D1>,
    tenant_id: &str,
    log: &RequestLog,
) -> Result<Reply> {
    // Locations are built from the configuration, never from the request's Host.
    let base = app.scim_base(sub, !mount.is_empty());
    let docs = format!(
        "{}{}",
        base.strip_suffix(&format!("{mount}{PREFIX}"))
            .unwrap_or_default(),
        discovery::DOCS_PATH
    );
    let ctx = Ctx {
        scope: Scope {
            db: gated,
            rt: &app.rt,
            tenant_id,
            log: Some(log),
        },
        base,
    };
    let route = Route::parse(rest);
    let method = req.method();
    match route {
        Route::Collection(e) | Route::Search(e) | Route::Resource(e, _) => {
            let op = operation(&mut req, method, route).await?;
            match e {
                Endpoint::Users => resources::handle(&ctx, Table::Users, op).await,
                Endpoint::Groups => resources::handle(&ctx, Table::Groups, op).await,
            }
        }
        Route::RootSearch => match method {
            Method::Post => {
                let params = ListParams::from_search(&json_body(&mut req).await?)?;
                search::handle(&ctx, &params).await
            }
            _ => Err(Error::method_not_allowed("POST")),
        },
        Route::ServiceProviderConfig | Route::ResourceTypes(_) | Route::Schemas(_) => {
            match method {
                Method::Get => discovery::serve(&ctx, &route, &query(&req)?, &docs),
                _ => Err(Error::method_not_allowed("GET")),
            }
        }
        Route::Unknown => Err(Error::not_found(format!(
            "no SCIM endpoint at {}",
            quote(rest)
        ))),
    }
}

/// The operation a method on a resource route asks for.
async fn operation(req: &mut Request, method: Method, route: Route) -> Result<Op> {
    Ok(match (route, method) {
        (Route::Collection(_), Method::Get) => Op::List(query(req)?),
        (Route::Collection(_), Method::Post) => {
            let params = query(req)?;
            Op::Create(json_body(req).await?, params)
        }
        (Route::Collection(_), _) => return Err(Error::method_not_allowed("GET, POST")),
        (Route::Search(_), Method::Post) => {
            Op::List(ListParams::from_search(&json_body(req).await?)?)
        }
        (Route::Search(_), _) => return Err(Error::method_not_allowed("POST")),
        (Route::Resource(_, id), Method::Get) => Op::Get {
            id,
            params: query(req)?,
            if_none_match: header(req, "if-none-match"),
        },
        (Route::Resource(_, id), method @ (Method::Put | Method::Patch)) => {
            let (params, if_match) = (query(req)?, header(req, "if-match"));
            let body = json_body(req).await?;
            if method == Method::Put {
                Op::Replace {
                    id,
                    body,
                    params,
                    if_match,
                }
            } else {
                Op::Patch {
                    id,
                    body,
                    params,
                    if_match,
                }
            }
        }
        (Route::Resource(_, id), Method::Delete) => Op::Delete {
            id,
            if_match: header(req, "if-match"),
        },
        (Route::Resource(..), _) => {
            return Err(Error::method_not_allowed("GET, PUT, PATCH, DELETE"))
        }
        _ => return Err(Error::not_found("no such resource endpoint")),
    })
}

/// The list parameters of the query string (RFC 7644 §3.4.2).
fn query(req: &Request) -> Result<ListParams> {
    let pairs: Vec<(String, String)> = request_url(req, |u| {
        form_urlencoded::parse(u.query.as_bytes())
            .into_owned()
            .collect()
    })?;
    ListParams::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
                "Content-Type '{}' is not supported; send application/scim+json or application/json",
                quote(&media)
            )));
        }
    }
    let bytes = read_body(req, MAX_BODY_BYTES).await?;
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

/// Bound on the per-isolate map of recent `lastUsedAt` writes.
const MAX_TOUCH_ENTRIES: usize = 10_000;

thread_local! {
    /// Token id -> when this isolate last recorded its use.
    static TOUCHED: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// Record the token's `lastUsedAt` after the response, at most once per
/// [`auth::TOUCH_INTERVAL_MS`] per token in this isolate, and only when the stored value is
/// older than that.
fn record_use(app: &App, shard: &str, principal: &Principal) {
    let now = app.now;
    if !principal.touch_due(now) {
        return;
    }
    let recently = TOUCHED.with(|m| {
        let mut m = m.borrow_mut();
        if m.get(&principal.token_id)
            .is_some_and(|t| now.saturating_sub(*t) < auth::TOUCH_INTERVAL_MS)
        {
            return true;
        }
        remember(&mut m, MAX_TOUCH_ENTRIES, principal.token_id.clone(), now);
        false
    });
    if recently {
        return;
    }
    let Ok(db): Result<D1> = app.shard(shard) else {
        return;
    };
    let principal = principal.clone();
    app.ctx.wait_until(async move {
        if let Err(e) = auth::touch(&db, &principal, now).await {
            worker::console_warn!("lastUsedAt update failed: {}", e.cause.unwrap_or(e.detail));
        }
    });
}
