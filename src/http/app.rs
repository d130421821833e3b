//! What every request on the Worker shares: its bindings and settings ([`App`]), the
//! [`Runtime`] the services run on here (`Date.now`, getrandom, timers), and its databases
//! (the catalog, and the shards of [`super::shards`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use worker::{Context, Delay, Env, Request};

use super::shards::{self, Bindings};
use crate::http::d1::D1;
use crate::http::meter::Meter;
use crate::service::shards::{Databases, CATALOG};
use crate::service::upkeep::Settings;
use crate::service::Runtime;
use scim_core::scim::error::{Error, Result};
use scim_core::tenancy::host::{classify, tenant_url, HostKind, Origin, RequestUrl};
use scim_core::tenancy::token;

/// Deployment settings, read from `[vars]` and secrets once per isolate ([`Config::of`]).
pub struct Config {
    /// `BASE_DOMAIN`: tenants are `<sub>.<BASE_DOMAIN>`.
    pub base_domain: String,
    /// `TENANT_URL_FORM = "path"`: publish `/tenants/<sub>/…` Tenant URLs (no wildcard DNS).
    pub path_form_urls: bool,
    /// `ADMIN_TOKEN` (a secret in production, `.dev.vars` locally). Empty: admin API closed.
    pub admin_token: String,
    /// `EVENT_RETENTION_DAYS`, `LOG_RETENTION_DAYS`, `LOG_MAX_ENTRIES`.
    pub upkeep: Settings,
    /// `CONSOLE_LINK_MINUTES`: how long a console link can be opened (10 by default).
    pub console_link_ms: i64,
    /// `OPERATOR_ORIGIN`: the origin the Worker serves the admin API and the console on
    /// (`https://example.com`, or the `workers.dev` host). Every URL handed out is built from
    /// it and `BASE_DOMAIN`, never from a request's `Host`. Unset, only a local request's own
    /// origin stands in for it (`wrangler dev`).
    pub operator_origin: Option<Origin>,
    /// `OAUTH_TOKEN_MINUTES`: the access tokens' lifetime, as set (read, and refused when out
    /// of bounds, by the token endpoint alone: `service::oauth::token_lifetime_ms`).
    pub oauth_token_minutes: Option<String>,
    /// `DEV_ALLOW_LOOPBACK = "true"`, the development setting (`.dev.vars`, never
    /// `wrangler.toml`): a federated credential's key set may be `http` on this machine.
    pub dev_allow_loopback: bool,
    /// `DEV_OAUTH_TOKEN_SECONDS`, honoured only with `DEV_ALLOW_LOOPBACK`: access tokens that
    /// end after so many seconds, for the tests of expiry.
    pub dev_token_seconds: Option<i64>,
    /// `WEBHOOK_RETRY_SCHEDULE` and `DEV_ALLOW_LOOPBACK`, as deliveries use them.
    pub webhooks: crate::service::webhooks::Settings,
    /// `WEBHOOK_KEY` (a secret): what webhook secrets are sealed under. Empty: no webhooks.
    pub webhook_key: String,
    /// `ALERT_STALLED_MINUTES` (and `DEV_ALERT_STALLED_SECONDS`, honoured only with
    /// `DEV_ALLOW_LOOPBACK`, for the tests): what the Cron decides alerts with.
    pub alerts: crate::service::host_app::alerts::Settings,
}

/// `OPERATOR_ORIGIN` read: an `http(s)` origin with nothing after it, on a host that is not a
/// tenant's (a tenant host would send the console's link to SCIM).
fn operator_origin(value: &str, base_domain: &str) -> Result<Origin> {
    let bad = || {
        Error::internal(format!(
            "OPERATOR_ORIGIN must be an origin such as https://example.com, on a host that is not \
             a tenant's (<subdomain>.{base_domain}); it is '{value}'"
        ))
    };
    let value = value.trim();
    let url = RequestUrl::parse(value).ok_or_else(bad)?;
    let bare = url.path == "/" && !value.contains(['?', '#']);
    if !bare || classify(&url.origin.host, base_domain) != HostKind::Operator {
        return Err(bad());
    }
    Ok(url.origin)
}

/// Whether `host` is this machine (`wrangler dev`), where the request's origin may stand in
/// for `OPERATOR_ORIGIN`.
pub fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.ends_with(".localhost") || host == "127.0.0.1" || host == "::1"
}

/// Everything a request may use.
pub struct App {
    pub env: Env,
    pub ctx: Context,
    pub config: Rc<Config>,
    /// The request's time, Unix milliseconds.
    pub now: i64,
    /// Scheme, host and port the request came in on (for URLs we hand out).
    pub origin: Origin,
    /// What the services run on.
    pub rt: Platform,
    /// The request's binding calls, reported in its `Server-Timing` header.
    pub meter: Meter,
    /// What the operator's line of the request says ([`super::trace`]).
    pub trace: super::trace::Shared,
}

/// The [`Runtime`] on the Worker: the request's time, `Date.now` as the clock, getrandom, timers.
pub struct Platform {
    pub now: i64,
}

impl Platform {
    pub fn at_start() -> Platform {
        Platform {
            now: worker::Date::now().as_millis() as i64,
        }
    }
}

thread_local! {
    /// This isolate's settings, once read.
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

impl Config {
    /// The deployment's settings, read once per isolate: vars and secrets cannot change under
    /// a running isolate (changing them deploys a new version, which new isolates serve). A
    /// configuration that fails is read again, and fails again, on every request.
    pub fn of(env: &Env) -> Result<Rc<Config>> {
        if let Some(config) = CONFIG.with(|c| c.borrow().clone()) {
            return Ok(config);
        }
        let config = Rc::new(Config::read(env)?);
        CONFIG.with(|c| *c.borrow_mut() = Some(config.clone()));
        Ok(config)
    }

    fn read(env: &Env) -> Result<Config> {
        let var = |name: &str| env.var(name).map(|v| v.to_string()).ok();
        let base_domain = var("BASE_DOMAIN")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Error::internal("BASE_DOMAIN is not configured"))?;
        let defaults = Settings::default();
        let dev_allow_loopback = var("DEV_ALLOW_LOOPBACK").is_some_and(|v| v.trim() == "true");
        // A count that is not a whole number of at least `min` keeps its default.
        let number = |name: &str, default: i64, min: i64| {
            var(name)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= min)
                .unwrap_or(default)
        };
        Ok(Config {
            path_form_urls: var("TENANT_URL_FORM").is_some_and(|v| v.eq_ignore_ascii_case("path")),
            admin_token: var("ADMIN_TOKEN").unwrap_or_default(),
            upkeep: Settings {
                // 0 days: each run removes everything written before it.
                event_retention_days: number(
                    "EVENT_RETENTION_DAYS",
                    defaults.event_retention_days,
                    0,
                ),
                log_retention_days: number("LOG_RETENTION_DAYS", defaults.log_retention_days, 0),
                log_max_entries: number("LOG_MAX_ENTRIES", defaults.log_max_entries, 1),
                log_max_refusals: number("LOG_MAX_REFUSALS", defaults.log_max_refusals, 1),
            },
            console_link_ms: number("CONSOLE_LINK_MINUTES", 10, 0).saturating_mul(60_000),
            operator_origin: match var("OPERATOR_ORIGIN").filter(|v| !v.trim().is_empty()) {
                Some(v) => Some(operator_origin(&v, &base_domain)?),
                None => None,
            },
            oauth_token_minutes: var("OAUTH_TOKEN_MINUTES"),
            dev_allow_loopback,
            dev_token_seconds: var("DEV_OAUTH_TOKEN_SECONDS")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|_| dev_allow_loopback),
            webhooks: crate::service::webhooks::Settings {
                schedule: match var("WEBHOOK_RETRY_SCHEDULE").filter(|v| !v.trim().is_empty()) {
                    Some(v) => {
                        scim_core::host_app::webhook::parse_schedule(&v).map_err(Error::internal)?
                    }
                    None => scim_core::host_app::webhook::DEFAULT_SCHEDULE.to_vec(),
                },
                allow_loopback: dev_allow_loopback,
            },
            webhook_key: var("WEBHOOK_KEY").unwrap_or_default(),
            alerts: {
                let defaults = crate::service::host_app::alerts::Settings::default();
                let minutes = number("ALERT_STALLED_MINUTES", defaults.stalled_ms / 60_000, 1);
                let dev = var("DEV_ALERT_STALLED_SECONDS")
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .filter(|s| dev_allow_loopback && *s >= 1);
                crate::service::host_app::alerts::Settings {
                    stalled_ms: dev
                        .map_or(minutes.saturating_mul(60_000), |s| s.saturating_mul(1_000)),
                    ..defaults
                }
            },
            base_domain,
        })
    }
}

/// What `read` takes from the request's URL, as the runtime serialised it.
pub fn request_url<T>(req: &Request, read: impl FnOnce(RequestUrl<'_>) -> T) -> Result<T> {
    let url = req.inner().url();
    RequestUrl::parse(&url)
        .map(read)
        .ok_or_else(|| Error::internal(format!("request url: not an http(s) URL: {url}")))
}

impl App {
    pub fn new(env: Env, ctx: Context, req: &Request) -> Result<App> {
        let config = Config::of(&env)?;
        let origin = request_url(req, |u| u.origin)?;
        let rt = Platform::at_start();
        Ok(App {
            env,
            ctx,
            config,
            now: rt.now,
            origin,
            rt,
            meter: Meter::default(),
            trace: Default::default(),
        })
    }

    /// The origin URLs on the operator's host start with: `OPERATOR_ORIGIN`, else the
    /// request's own.
    pub fn operator_origin(&self) -> &Origin {
        self.config.operator_origin.as_ref().unwrap_or(&self.origin)
    }

    /// Tenant `sub`'s Tenant URL, in the deployment's form, from the configuration.
    pub fn tenant_url(&self, sub: &str) -> String {
        self.scim_base(sub, self.config.path_form_urls)
    }

    /// The SCIM base URL of tenant `sub` as a request reached it (`path_form`: under
    /// `/tenants/<sub>`), from `BASE_DOMAIN` and [`App::operator_origin`], never from `Host`.
    pub fn scim_base(&self, sub: &str, path_form: bool) -> String {
        tenant_url(
            sub,
            &self.config.base_domain,
            self.operator_origin(),
            path_form,
        )
    }

    /// Where console links point: `OPERATOR_ORIGIN`, or on `wrangler dev` the request's own
    /// origin. Elsewhere, unset, there is no link to give: the host the request came to may
    /// not route `/console` to the Worker, and a link there would hand the secret to whatever
    /// serves it.
    pub fn console_origin(&self) -> Result<&Origin> {
        match &self.config.operator_origin {
            Some(o) => Ok(o),
            None if is_local(&self.origin.host) => Ok(&self.origin),
            None => Err(Error::state_conflict(
                "console links need OPERATOR_ORIGIN: set it to the origin whose /console the \
                 Worker's routes serve (README, Deploy)",
            )),
        }
    }

    /// Every database of the deployment: the catalog and the shards.
    pub fn databases(&self) -> Bindings<'_> {
        Bindings::of(&self.env, &self.meter)
    }

    /// The database that lists the tenants (`DB`).
    pub fn catalog(&self) -> Result<D1> {
        shards::open(&self.env, &self.meter, CATALOG)
    }

    /// Shard `binding`, a tenant's own database.
    pub fn shard(&self, binding: &str) -> Result<D1> {
        self.databases().shard(binding)
    }
}

impl Runtime for Platform {
    fn now(&self) -> i64 {
        self.now
    }

    fn clock(&self) -> i64 {
        worker::Date::now().as_millis() as i64
    }

    fn random_id(&self, prefix: &str) -> Result<String> {
        token::random_id(prefix).map_err(|e| Error::internal(format!("getrandom: {}", e.0)))
    }

    fn random_uuid(&self) -> Result<String> {
        token::random_uuid().map_err(|e| Error::internal(format!("getrandom: {}", e.0)))
    }

    async fn sleep(&self, ms: i64) {
        Delay::from(Duration::from_millis(u64::try_from(ms).unwrap_or(0))).await;
    }

    /// A random pause of up to 2 + 3 × attempt milliseconds.
    async fn pause(&self, attempt: u32) {
        let spread = u64::from(attempt).saturating_mul(3).saturating_add(2);
        let jitter = u64::from(getrandom::u32().unwrap_or(0))
            .checked_rem(spread)
            .unwrap_or(0);
        Delay::from(Duration::from_millis(jitter)).await;
    }
}
