//! What every request on the Worker shares: its bindings and settings ([`App`]), the
//! [`Runtime`] the services run on here (`Date.now`, getrandom, timers), and which D1 database
//! serves an organisation.

use std::time::Duration;
use worker::{Context, Delay, Env, Request};

use crate::scim::error::{Error, Result};
use crate::service::Runtime;
use crate::store::d1::D1;
use crate::tenancy::host::Origin;
use crate::tenancy::token;

/// Deployment settings, read from `[vars]` and secrets once per request.
pub struct Config {
    /// `BASE_DOMAIN`: tenants are `<sub>.<BASE_DOMAIN>`.
    pub base_domain: String,
    /// `TENANT_URL_FORM = "path"`: publish `/tenants/<sub>/…` Tenant URLs (no wildcard DNS).
    pub path_form_urls: bool,
    /// `ADMIN_TOKEN` (a secret in production, `.dev.vars` locally). Empty: admin API closed.
    pub admin_token: String,
}

/// Everything a request may use.
pub struct App {
    pub env: Env,
    pub ctx: Context,
    pub config: Config,
    /// The request's time, Unix milliseconds.
    pub now: i64,
    /// Scheme, host and port the request came in on (for URLs we hand out).
    pub origin: Origin,
}

/// The D1 binding that holds organisations, their tokens and their data.
const DB_BINDING: &str = "DB";

impl App {
    pub fn new(env: Env, ctx: Context, req: &Request) -> Result<App> {
        let var = |name: &str| env.var(name).map(|v| v.to_string()).ok();
        let base_domain = var("BASE_DOMAIN")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Error::internal("BASE_DOMAIN is not configured"))?;
        let config = Config {
            base_domain,
            path_form_urls: var("TENANT_URL_FORM").is_some_and(|v| v.eq_ignore_ascii_case("path")),
            admin_token: var("ADMIN_TOKEN").unwrap_or_default(),
        };
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
            config,
            now: worker::Date::now().as_millis() as i64,
            origin,
        })
    }

    /// The database of the organisation `subdomain` (its tokens and its users and groups).
    ///
    /// Today every organisation lives in the one database `DB`. This is the one function that
    /// decides it: spreading organisations over several D1 databases later changes it alone
    /// (and [`App::directory`], should the organisations' list move to a database of its own).
    pub fn db_for(&self, _subdomain: &str) -> Result<D1> {
        self.binding(DB_BINDING)
    }

    /// The database that lists the organisations (the admin API's).
    pub fn directory(&self) -> Result<D1> {
        self.binding(DB_BINDING)
    }

    fn binding(&self, name: &str) -> Result<D1> {
        self.env
            .d1(name)
            .map(D1)
            .map_err(|e| Error::internal(format!("D1 binding {name}: {e}")))
    }
}

impl Runtime for App {
    fn now(&self) -> i64 {
        self.now
    }

    fn random_id(&self, prefix: &str) -> Result<String> {
        token::random_id(prefix).map_err(|e| Error::internal(format!("getrandom: {}", e.0)))
    }

    fn random_uuid(&self) -> Result<String> {
        token::random_uuid().map_err(|e| Error::internal(format!("getrandom: {}", e.0)))
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
