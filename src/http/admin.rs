//! The admin API (`/admin/v1`): the operator's and the admin console's side.
//!
//! Served only on non-tenant hosts and authenticated with `Authorization: Bearer <key>`: the
//! bootstrap `ADMIN_TOKEN` (every scope) or an API key ([`super::keys`]), whose scopes must
//! include the one the route needs ([`needs`]) and whose tenant, if it is bound to one, must be
//! the route's (any other is 404). JSON in and out, camelCase; errors are
//! `{"status", "error", "message"}`.
//!
//! ```text
//! POST   /admin/v1/tenants                          create {subdomain, name?, provisioningEnabled?, shard?}
//! GET    /admin/v1/tenants?after=&limit=            a page: {items, next}
//! GET    /admin/v1/tenants/{sub}                    read
//! PATCH  /admin/v1/tenants/{sub}                    {name?, provisioningEnabled?}
//! DELETE /admin/v1/tenants/{sub}                    unreachable at once, then purged: 202 {remaining}
//! POST   /admin/v1/tenants/{sub}/tokens             "Generate new" {revokeExisting?}: plaintext once
//! GET    /admin/v1/tenants/{sub}/tokens             {items: [{id, createdAt, lastUsedAt, hint}], next}
//! DELETE /admin/v1/tenants/{sub}/tokens/{id}        revoke
//! GET    /admin/v1/tenants/{sub}/oauth              {clientId, tokenEndpoint, secrets, federation}
//! POST   /admin/v1/tenants/{sub}/oauth/secrets      {expiresInDays?}: 201 {id, clientId, clientSecret, …} once
//! DELETE /admin/v1/tenants/{sub}/oauth/secrets/{id} revoke it and its access tokens
//! PUT    /admin/v1/tenants/{sub}/oauth/federation   {issuer, subject, audience, jwksUri}
//! DELETE /admin/v1/tenants/{sub}/oauth/federation   remove it and its access tokens
//! POST   /admin/v1/tenants/{sub}/console-links      a one-time link to the console: 201 {url, expiresAt}
//! GET    /admin/v1/shards                           each shard: {binding, open, tenants, users, …, bytes}
//! PATCH  /admin/v1/shards/{binding}                 {open}: open or close it for placement
//! POST   /admin/v1/tenants/{sub}/move               {shard}: move it there online: 202 {move}
//! DELETE /admin/v1/tenants/{sub}/move               cancel a move that has not switched
//! POST   /admin/v1/keys, GET /admin/v1/keys, DELETE /admin/v1/keys/{id}   API keys
//! GET    /admin/v1/openapi.json                     this API, as an OpenAPI 3.1 document
//! GET, PUT /admin/v1/roles; GET, PUT …/{sub}/role-mappings; PUT …/{sub}/default-role  roles
//! /admin/v1/webhooks…                        endpoints, rotation, tests, deliveries, replay (`host_app::webhooks`)
//! ```
//!
//! Every list answers one page shape, `{items, next}`: `next` is what to pass as `after` for
//! the following page (`null` on the last; the change feed's is never `null`).
//!
//! The host app's reads (feed, directory, log, summary, purges) are [`super::host_app`]'s.

use crate::http::body::{from_body, Field};
use serde_json::{json, Value};
use worker::{Method, Request};

use super::app::App;
use super::app::Platform;
use super::assets;
use super::console;
use super::host_app;
use super::host_app::webhooks;
use super::keys;
use super::oauth::{oauth_json, FederationBody};
use super::reply::{json_body, Reply};
use super::roles;
use super::shards::Bindings;
use super::shards::{forget, learn, Place};
use crate::http::d1::D1;
use crate::http::meter::Meter;
use crate::service::host_app::Page;
use crate::service::keys::Principal;
use crate::service::shards::Entry;
use crate::service::shards::Located;
use crate::service::{moves, oauth, shards, tenants, upkeep};
use scim_core::host_app::scope::Scope;
use scim_core::scim::error::{quote, Error, Result};
use scim_core::time::rfc3339;

/// A parsed admin path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route<'a> {
    Tenants,
    Tenant(&'a str),
    Tokens(&'a str),
    Token(&'a str, &'a str),
    OAuth(&'a str),
    Secrets(&'a str),
    Secret(&'a str, &'a str),
    Federation(&'a str),
    /// Every tenant's feed (`None`) or one's.
    Events(Option<&'a str>),
    Users(&'a str),
    User(&'a str, &'a str),
    Groups(&'a str),
    Group(&'a str, &'a str),
    Members(&'a str, &'a str),
    Logs(&'a str),
    Summary(&'a str),
    ConsoleLinks(&'a str),
    Purges,
    Shards,
    Shard(&'a str),
    Move(&'a str),
    Keys,
    Key(&'a str),
    OpenApi,
    Roles,
    RoleMappings(&'a str),
    DefaultRole(&'a str),
    Webhooks(webhooks::At<'a>),
    Unknown,
}

impl<'a> Route<'a> {
    /// The tenant a route of one tenant's acts for.
    fn tenant(&self) -> Option<&'a str> {
        match *self {
            Route::Tokens(s)
            | Route::Token(s, _)
            | Route::OAuth(s)
            | Route::Secrets(s)
            | Route::Secret(s, _)
            | Route::Federation(s)
            | Route::Events(Some(s))
            | Route::Users(s)
            | Route::User(s, _)
            | Route::Groups(s)
            | Route::Group(s, _)
            | Route::Members(s, _)
            | Route::Logs(s)
            | Route::Summary(s)
            | Route::RoleMappings(s)
            | Route::DefaultRole(s)
            | Route::ConsoleLinks(s) => Some(s),
            _ => None,
        }
    }

    /// The tenant any route of one tenant's names, the tenant's own and its move included.
    fn named(&self) -> Option<&'a str> {
        match *self {
            Route::Tenant(s) | Route::Move(s) => Some(s),
            _ => self.tenant(),
        }
    }
}

/// The scope `route` needs for `method`: `None` where none is asked (the document, or a
/// method the route does not serve, which is answered 405).
fn needs(route: &Route, method: &Method) -> Option<Scope> {
    use Method::{Delete, Get, Patch, Post, Put};
    let scope = match (route, method) {
        (
            Route::Tenants
            | Route::Tenant(_)
            | Route::Tokens(_)
            | Route::OAuth(_)
            | Route::Shards
            | Route::Purges
            | Route::Roles
            | Route::RoleMappings(_),
            Get,
        ) => Scope::TenantsRead,
        (Route::Tenants, Post)
        | (Route::Tenant(_), Patch | Delete)
        | (Route::Move(_), Post | Delete)
        | (Route::Shard(_), Patch) => Scope::TenantsWrite,
        (Route::Tokens(_) | Route::Secrets(_) | Route::ConsoleLinks(_), Post)
        | (Route::Token(..) | Route::Secret(..), Delete)
        | (Route::Federation(_), Put | Delete) => Scope::CredentialsWrite,
        (
            Route::Users(_)
            | Route::User(..)
            | Route::Groups(_)
            | Route::Group(..)
            | Route::Members(..),
            Get,
        ) => Scope::DirectoryRead,
        (Route::Events(_), Get) => Scope::EventsRead,
        (Route::Logs(_) | Route::Summary(_), Get) => Scope::LogsRead,
        (Route::Keys, Get | Post) | (Route::Key(_), Delete) => Scope::KeysWrite,
        (Route::Roles | Route::RoleMappings(_) | Route::DefaultRole(_), Put) => Scope::RolesWrite,
        (Route::Webhooks(at), m) if at.allows().split(", ").any(|a| a == m.as_ref()) => {
            Scope::WebhooksWrite
        }
        _ => return None,
    };
    Some(scope)
}

/// The segments after which an admin path names one of many (`{id}` in its template).
const COLLECTIONS: [&str; 8] = [
    "shards",
    "keys",
    "tokens",
    "secrets",
    "users",
    "groups",
    "webhooks",
    "deliveries",
];

fn parse(path: &str) -> Route<'_> {
    let rest = path.trim_start_matches("/admin/v1").trim_matches('/');
    let segments: Vec<&str> = rest.split('/').collect();
    let whole = ["tenants", "events", "shards", "keys", "webhooks"];
    if segments.iter().any(|s| s.is_empty()) && !whole.contains(&rest) {
        return Route::Unknown;
    }
    match segments.as_slice() {
        ["tenants"] => Route::Tenants,
        ["events"] => Route::Events(None),
        ["purges"] => Route::Purges,
        ["shards"] => Route::Shards,
        ["webhooks", ..] => webhooks::At::parse(&segments).map_or(Route::Unknown, Route::Webhooks),
        ["keys"] => Route::Keys,
        ["keys", id] => Route::Key(id),
        ["openapi.json"] => Route::OpenApi,
        ["roles"] => Route::Roles,
        ["shards", binding] => Route::Shard(binding),
        ["tenants", sub] => Route::Tenant(sub),
        ["tenants", sub, "tokens"] => Route::Tokens(sub),
        ["tenants", sub, "tokens", id] => Route::Token(sub, id),
        ["tenants", sub, "oauth"] => Route::OAuth(sub),
        ["tenants", sub, "oauth", "secrets"] => Route::Secrets(sub),
        ["tenants", sub, "oauth", "secrets", id] => Route::Secret(sub, id),
        ["tenants", sub, "oauth", "federation"] => Route::Federation(sub),
        ["tenants", sub, "events"] => Route::Events(Some(sub)),
        ["tenants", sub, "users"] => Route::Users(sub),
        ["tenants", sub, "users", id] => Route::User(sub, id),
        ["tenants", sub, "groups"] => Route::Groups(sub),
        ["tenants", sub, "groups", id] => Route::Group(sub, id),
        ["tenants", sub, "groups", id, "members"] => Route::Members(sub, id),
        ["tenants", sub, "logs"] => Route::Logs(sub),
        ["tenants", sub, "summary"] => Route::Summary(sub),
        ["tenants", sub, "console-links"] => Route::ConsoleLinks(sub),
        ["tenants", sub, "move"] => Route::Move(sub),
        ["tenants", sub, "role-mappings"] => Route::RoleMappings(sub),
        ["tenants", sub, "default-role"] => Route::DefaultRole(sub),
        _ => Route::Unknown,
    }
}

/// Every method some admin route serves (for a method none does).
pub const ALLOW: &str = "GET, POST, PUT, PATCH, DELETE";

pub async fn serve(app: &App, req: Request, path: &str) -> Result<Reply> {
    let route = parse(path);
    app.trace.borrow_mut().route = Some(match route {
        Route::Unknown => "/admin/v1/(unknown)".to_string(),
        _ => super::trace::template(path, &COLLECTIONS),
    });
    let me = keys::authorize(app, &req).await?;
    {
        let mut t = app.trace.borrow_mut();
        t.credential = Some(match me.key_id {
            Some(_) => super::trace::Credential::ApiKey,
            None => super::trace::Credential::AdminToken,
        });
        t.key_id.clone_from(&me.key_id);
    }
    if let Some(scope) = needs(&route, &req.method()) {
        me.require(scope)?;
    }
    if let Some(sub) = route.named() {
        me.may_see(sub)?;
    }
    let a = Admin { app, me: &me };
    match route {
        Route::Tenants | Route::Tenant(_) | Route::Move(_) => a.tenants(req, route).await,
        Route::Keys | Route::Key(_) | Route::OpenApi => a.keys(req, route).await,
        Route::Shards | Route::Shard(_) | Route::Purges | Route::Events(None) | Route::Roles => {
            a.deployment(req, route).await
        }
        Route::Webhooks(at) => webhooks::serve(app, &me, req, at).await,
        Route::Unknown => Err(Error::not_found(format!("no admin route {}", quote(path)))),
        per_org => {
            let Some(sub) = per_org.tenant() else {
                return Err(Error::not_found(format!("no admin route {}", quote(path))));
            };
            let at = shards::locate(&app.databases(), sub).await?;
            app.trace.borrow_mut().place(&at.org.id, &at.org.shard);
            a.per_tenant(req, per_org, sub, &at).await
        }
    }
}

/// How long the request that starts a move copies, after its response (the Cron Trigger goes
/// on from where it stops).
const MOVE_BUDGET_MS: i64 = 25_000;

/// Carry tenant `sub`'s move on after the response (`wait_until`).
fn drive_after(app: &App, sub: &str) {
    let env = app.env.clone();
    let sub = sub.to_string();
    app.ctx.wait_until(async move {
        let meter = Meter::default();
        let all = Bindings::of(&env, &meter);
        let driven = match shards::locate(&all, &sub).await {
            Ok(at) => moves::drive(&all, &Platform::at_start(), &at.org.id, MOVE_BUDGET_MS).await,
            Err(e) => Err(e),
        };
        match driven {
            Ok(Some(m)) if m.error.is_some() => {
                worker::console_warn!("move of {sub}: {}", m.error.unwrap_or_default())
            }
            Ok(_) => {}
            Err(e) => worker::console_error!("move of {sub}: {}", e.cause.unwrap_or(e.detail)),
        }
        forget(&sub);
    });
}

/// How long a DELETE of a tenant purges before it answers; the Cron Trigger does the rest.
const DELETE_BUDGET_MS: i64 = 2_000;

/// The admin API as an OpenAPI 3.1 document (`assets/openapi.json`, a static asset); the
/// integration tests check every admin response they receive against it.
async fn openapi(app: &App) -> Result<Reply> {
    let text = assets::text(app, "/openapi.json").await?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| Error::internal(format!("openapi.json: {e}")))?;
    Ok(Reply::json(200, doc))
}

/// Largest admin request body.
pub const MAX_BODY_BYTES: usize = super::reply::ADMIN_BODY_BYTES;

async fn body<T: Field>(req: &mut Request) -> Result<T> {
    maybe_body(req)
        .await?
        .ok_or_else(|| Error::invalid("a JSON request body is required"))
}

/// The JSON body, or `None` when there is none (token creation takes its defaults then).
async fn maybe_body<T: Field>(req: &mut Request) -> Result<Option<T>> {
    json_body(req, MAX_BODY_BYTES).await
}

struct CreateTenant {
    subdomain: String,
    name: Option<String>,
    provisioning_enabled: Option<bool>,
    /// The shard to place it on (any shard, open for placement or not); by default the open
    /// one with the fewest bytes.
    shard: Option<String>,
}
from_body!(CreateTenant { subdomain, name, provisioning_enabled = "provisioningEnabled", shard });

struct UpdateTenant {
    name: Option<String>,
    provisioning_enabled: Option<bool>,
}
from_body!(UpdateTenant { name, provisioning_enabled = "provisioningEnabled" });

#[derive(Default)]
struct CreateToken {
    revoke_existing: bool,
}
from_body!(CreateToken { ; default revoke_existing = "revokeExisting" });

#[derive(Default)]
struct SecretOptions {
    expires_in_days: Option<i64>,
}
from_body!(SecretOptions { expires_in_days = "expiresInDays" });

struct MoveTo {
    shard: String,
}
from_body!(MoveTo { shard });

struct UpdateShard {
    open: bool,
}
from_body!(UpdateShard { open });

/// One admin request, and who makes it.
struct Admin<'a> {
    app: &'a App,
    me: &'a Principal,
}

impl Admin<'_> {
    /// The tenants themselves: list, create, read, update, delete, move.
    async fn tenants(&self, mut req: Request, route: Route<'_>) -> Result<Reply> {
        let (app, me, method) = (self.app, self.me, req.method());
        let all = app.databases();
        match route {
            Route::Tenants => match method {
                Method::Get => self.list_tenants(&host_app::Query::of(&req)?).await,
                Method::Post => {
                    me.unbound("create tenants")?;
                    self.create_tenant(body(&mut req).await?).await
                }
                _ => Err(Error::method_not_allowed("GET, POST")),
            },
            Route::Tenant(sub) => match method {
                Method::Get => self.get_tenant(sub).await,
                Method::Patch => self.update_tenant(sub, body(&mut req).await?).await,
                Method::Delete => {
                    let purge = upkeep::delete_tenant(&all, &app.rt, sub, DELETE_BUDGET_MS);
                    let purge = purge.await?;
                    forget(sub);
                    Ok(Reply::json(202, host_app::purge_json(&purge)))
                }
                _ => Err(Error::method_not_allowed("GET, PATCH, DELETE")),
            },
            Route::Move(sub) => match method {
                Method::Post => {
                    let to: MoveTo = body(&mut req).await?;
                    let m = moves::start(&all, &app.rt, sub, &to.shard).await?;
                    drive_after(app, sub);
                    Ok(Reply::json(202, json!({ "move": m }))
                        .with_header("location", format!("/admin/v1/tenants/{sub}")))
                }
                Method::Delete => {
                    let m = moves::cancel(&all, &app.rt, sub).await?;
                    Ok(Reply::json(200, json!({ "move": m })))
                }
                _ => Err(Error::method_not_allowed("POST, DELETE")),
            },
            _ => Err(Error::not_found("no such admin route")),
        }
    }

    /// The API keys, and the document that describes this API.
    async fn keys(&self, mut req: Request, route: Route<'_>) -> Result<Reply> {
        let (app, me, method) = (self.app, self.me, req.method());
        match (route, method) {
            (Route::Keys, Method::Get) => keys::list(app, me, &host_app::Query::of(&req)?).await,
            (Route::Keys, Method::Post) => keys::create(app, me, body(&mut req).await?).await,
            (Route::Key(id), Method::Delete) => keys::revoke(app, me, id).await,
            (Route::OpenApi, Method::Get) => openapi(app).await,
            (Route::Keys, _) => Err(Error::method_not_allowed("GET, POST")),
            (Route::Key(_), _) => Err(Error::method_not_allowed("DELETE")),
            _ => Err(Error::method_not_allowed("GET")),
        }
    }

    /// What is no one tenant's: shards, purges, the feed of everything (a bound key's is
    /// its own tenant's).
    async fn deployment(&self, mut req: Request, route: Route<'_>) -> Result<Reply> {
        let (app, me, method) = (self.app, self.me, req.method());
        let all = app.databases();
        match (route, method) {
            (Route::Shards, Method::Get) => {
                me.unbound("list shards")?;
                self.list_shards().await
            }
            (Route::Shard(binding), Method::Patch) => {
                me.unbound("change shards")?;
                let change: UpdateShard = body(&mut req).await?;
                shards::set_open(&all, binding, change.open).await?;
                self.list_shards().await
            }
            (Route::Purges, Method::Get) => {
                me.unbound("list other tenants' purges")?;
                let purges = upkeep::pending(&all).await?;
                let items: Vec<Value> = purges.iter().map(host_app::purge_json).collect();
                Ok(Reply::json(200, json!({ "items": items, "next": null })))
            }
            (Route::Events(None), Method::Get) => {
                let q = host_app::Query::of(&req)?;
                let Some(sub) = me.bound_to() else {
                    return host_app::events(app, None, &q).await;
                };
                let at = shards::locate(&all, sub).await?;
                host_app::events(app, Some((&at.db, at.org.shard.as_str(), sub)), &q).await
            }
            (Route::Roles, Method::Get) => roles::declared(app).await,
            (Route::Roles, Method::Put) => {
                me.unbound("declare the app's roles")?;
                roles::declare(app, body(&mut req).await?).await
            }
            (Route::Roles, _) => Err(Error::method_not_allowed("GET, PUT")),
            (Route::Shard(_), _) => Err(Error::method_not_allowed("PATCH")),
            _ => Err(Error::method_not_allowed("GET")),
        }
    }

    fn url_of(&self, sub: &str) -> String {
        self.app.tenant_url(sub)
    }

    fn tenant_json(&self, t: &Entry) -> Value {
        let mut j = json!({
            "id": t.id,
            "subdomain": t.subdomain,
            "name": t.name,
            "provisioningEnabled": t.provisioning_enabled,
            "shard": t.shard,
            "createdAt": rfc3339(t.created_at),
            "updatedAt": rfc3339(t.updated_at),
            "tenantUrl": self.url_of(&t.subdomain),
        });
        if let (Some(m), Some(o)) = (moves::of(t.moving.as_deref()), j.as_object_mut()) {
            o.insert("move".into(), json!(m));
        }
        j
    }

    async fn create_tenant(&self, req: CreateTenant) -> Result<Reply> {
        let org = tenants::create(
            &self.app.databases(),
            &self.app.rt,
            &req.subdomain,
            req.name.as_deref(),
            req.provisioning_enabled,
            req.shard.as_deref(),
        )
        .await?;
        learn(
            &org.subdomain,
            Place {
                id: org.id.clone(),
                shard: org.shard.clone(),
            },
        );
        Ok(Reply::json(201, self.tenant_json(&org))
            .with_header("location", format!("/admin/v1/tenants/{}", org.subdomain)))
    }

    /// `GET /admin/v1/tenants?after=&limit=`: a page in subdomain order.
    async fn list_tenants(&self, q: &host_app::Query) -> Result<Reply> {
        if let Some(own) = self.me.bound_to() {
            // A bound key's list is its own tenant, on the page that would hold it.
            let after = q.get("after").unwrap_or("");
            q.limit()?;
            let items = match after < own {
                true => vec![self.tenant_json(&tenants::get(&self.app.databases(), own).await?)],
                false => Vec::new(),
            };
            return Ok(host_app::page_json(Page { items, next: None }));
        }
        let (orgs, next) = tenants::list(&self.app.databases(), q.get("after"), q.limit()?).await?;
        let items: Vec<Value> = orgs.iter().map(|t| self.tenant_json(t)).collect();
        Ok(host_app::page_json(Page { items, next }))
    }

    async fn get_tenant(&self, sub: &str) -> Result<Reply> {
        let t = tenants::get(&self.app.databases(), sub).await?;
        Ok(Reply::json(200, self.tenant_json(&t)))
    }

    async fn update_tenant(&self, sub: &str, req: UpdateTenant) -> Result<Reply> {
        let t = tenants::update(
            &self.app.databases(),
            &self.app.rt,
            sub,
            req.name.as_deref(),
            req.provisioning_enabled,
        )
        .await?;
        Ok(Reply::json(200, self.tenant_json(&t)))
    }

    /// `GET /admin/v1/shards`: each shard's placement state and what it holds, counted there.
    async fn list_shards(&self) -> Result<Reply> {
        let views = shards::figures(&self.app.databases(), &self.app.rt).await?;
        let items: Vec<Value> = views
            .iter()
            .map(|v| {
                json!({
                    "binding": v.binding,
                    "open": v.open,
                    "tenants": v.figures.tenants,
                    "users": v.figures.users,
                    "groups": v.figures.groups,
                    "events": v.figures.events,
                    "logEntries": v.figures.log_entries,
                    "bytes": v.figures.bytes,
                })
            })
            .collect();
        Ok(Reply::json(200, json!({"items": items, "next": null})))
    }

    /// A route of one tenant's, on its shard `db` (binding `binding`).
    async fn per_tenant(
        &self,
        mut req: Request,
        route: Route<'_>,
        sub: &str,
        at: &Located<D1>,
    ) -> Result<Reply> {
        let (db, binding, id) = (&at.db, at.org.shard.as_str(), at.org.id.as_str());
        let app = self.app;
        let method = req.method();
        match route {
            Route::Tokens(_) => match method {
                Method::Get => self.list_tokens(db, sub).await,
                Method::Post => {
                    let options = maybe_body(&mut req).await?.unwrap_or_default();
                    self.create_token(db, sub, options).await
                }
                _ => Err(Error::method_not_allowed("GET, POST")),
            },
            Route::Token(_, id) => match method {
                Method::Delete => {
                    tenants::revoke_token(db, sub, id, app.now).await?;
                    Ok(Reply::no_content())
                }
                _ => Err(Error::method_not_allowed("DELETE")),
            },
            Route::OAuth(_) | Route::Secrets(_) | Route::Secret(..) | Route::Federation(_) => {
                self.oauth(req, route, db, sub, id).await
            }
            Route::RoleMappings(_) => match method {
                Method::Get => roles::of_tenant(db, id).await,
                Method::Put => roles::set_mappings(app, db, id, body(&mut req).await?).await,
                _ => Err(Error::method_not_allowed("GET, PUT")),
            },
            Route::DefaultRole(_) => match method {
                Method::Put => roles::set_default(app, db, id, body(&mut req).await?).await,
                _ => Err(Error::method_not_allowed("PUT")),
            },
            Route::ConsoleLinks(_) => match method {
                Method::Post => console::create_link(app, db, id, sub).await,
                _ => Err(Error::method_not_allowed("POST")),
            },
            read => {
                if method != Method::Get {
                    return Err(Error::method_not_allowed("GET"));
                }
                let q = host_app::Query::of(&req)?;
                match read {
                    Route::Events(_) => host_app::events(app, Some((db, binding, sub)), &q).await,
                    Route::Users(_) => host_app::users(db, sub, &q).await,
                    Route::User(_, id) => host_app::one(db, sub, false, id).await,
                    Route::Groups(_) => host_app::groups(db, sub, &q).await,
                    Route::Group(_, id) => host_app::one(db, sub, true, id).await,
                    Route::Members(_, id) => host_app::members(db, sub, id, &q).await,
                    Route::Logs(_) => host_app::logs(db, sub, &q).await,
                    _ => host_app::summary(app, db, sub).await,
                }
            }
        }
    }

    async fn create_token(&self, db: &D1, sub: &str, req: CreateToken) -> Result<Reply> {
        let generated = tenants::create_token(db, &self.app.rt, sub, req.revoke_existing).await?;
        Ok(Reply::json(
            201,
            json!({
                "id": generated.id,
                "token": generated.token.plaintext,
                "tenantUrl": self.url_of(sub),
                "createdAt": rfc3339(self.app.now),
            }),
        ))
    }

    /// A tenant's OAuth client: its state, its secrets, its federated credential.
    async fn oauth(
        &self,
        mut req: Request,
        route: Route<'_>,
        db: &D1,
        sub: &str,
        id: &str,
    ) -> Result<Reply> {
        let (app, method) = (self.app, req.method());
        match (route, method) {
            (Route::OAuth(_), Method::Get) => {
                let status = oauth::status(db, id).await?;
                Ok(Reply::json(200, oauth_json(app, sub, &status)))
            }
            (Route::Secrets(_), Method::Post) => {
                let options: SecretOptions = maybe_body(&mut req).await?.unwrap_or_default();
                let s = oauth::create_secret(db, &app.rt, id, options.expires_in_days).await?;
                Ok(Reply::json(
                    201,
                    json!({
                        "id": s.id,
                        "clientId": s.client_id,
                        "clientSecret": s.secret,
                        "tokenEndpoint": super::oauth::token_endpoint(app, sub),
                        "tenantUrl": self.url_of(sub),
                        "expiresAt": rfc3339(s.expires_at),
                    }),
                ))
            }
            (Route::Secret(_, secret), Method::Delete) => {
                oauth::revoke_secret(db, id, secret, app.now).await?;
                Ok(Reply::no_content())
            }
            (Route::Federation(_), Method::Put) => {
                let f: FederationBody = body(&mut req).await?;
                let f = oauth::Federation::from(f);
                let allow = app.config.dev_allow_loopback;
                oauth::set_federation(db, &app.rt, id, &f, allow).await?;
                let status = oauth::status(db, id).await?;
                Ok(Reply::json(200, oauth_json(app, sub, &status)))
            }
            (Route::Federation(_), Method::Delete) => {
                oauth::clear_federation(db, &app.rt, id).await?;
                Ok(Reply::no_content())
            }
            (Route::OAuth(_), _) => Err(Error::method_not_allowed("GET")),
            (Route::Secrets(_), _) => Err(Error::method_not_allowed("POST")),
            (Route::Secret(..), _) => Err(Error::method_not_allowed("DELETE")),
            _ => Err(Error::method_not_allowed("PUT, DELETE")),
        }
    }

    async fn list_tokens(&self, db: &D1, sub: &str) -> Result<Reply> {
        let items: Vec<Value> = tenants::list_tokens(db, sub)
            .await?
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "createdAt": rfc3339(t.created_at),
                    "lastUsedAt": t.last_used_at.map(rfc3339),
                    "hint": t.hint,
                })
            })
            .collect();
        Ok(host_app::page_json(Page { items, next: None }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::decode;

    #[test]
    fn parses_admin_routes() {
        assert_eq!(parse("/admin/v1/tenants"), Route::Tenants);
        assert_eq!(parse("/admin/v1/tenants/"), Route::Tenants);
        assert_eq!(
            parse("/admin/v1/tenants/piedpiper.us"),
            Route::Tenant("piedpiper.us")
        );
        assert_eq!(
            parse("/admin/v1/tenants/acme/tokens"),
            Route::Tokens("acme")
        );
        assert_eq!(
            parse("/admin/v1/tenants/acme/tokens/tok_1"),
            Route::Token("acme", "tok_1")
        );
        assert_eq!(parse("/admin/v1"), Route::Unknown);
        assert_eq!(parse("/admin/v1/tenants/acme/users"), Route::Users("acme"));
        assert_eq!(
            parse("/admin/v1/tenants/acme/groups/g1/members"),
            Route::Members("acme", "g1")
        );
        assert_eq!(parse("/admin/v1/events"), Route::Events(None));
        assert_eq!(parse("/admin/v1/keys"), Route::Keys);
        assert_eq!(parse("/admin/v1/keys/"), Route::Keys);
        assert_eq!(parse("/admin/v1/keys/key_1"), Route::Key("key_1"));
        assert_eq!(parse("/admin/v1/openapi.json"), Route::OpenApi);
        assert_eq!(parse("/admin/v1/tenants/acme/bogus"), Route::Unknown);
        assert_eq!(parse("/admin/v1/tenants//tokens"), Route::Unknown);
    }

    #[test]
    fn every_served_route_needs_a_scope_and_reads_need_no_write() {
        use Method::{Delete, Get, Patch, Post};
        let needs_of = |path: &str, m: Method| needs(&parse(path), &m).map(Scope::name);
        assert_eq!(needs_of("/admin/v1/tenants", Get), Some("tenants:read"));
        assert_eq!(needs_of("/admin/v1/tenants", Post), Some("tenants:write"));
        assert_eq!(
            needs_of("/admin/v1/tenants/a/move", Delete),
            Some("tenants:write")
        );
        assert_eq!(
            needs_of("/admin/v1/shards/DB", Patch),
            Some("tenants:write")
        );
        assert_eq!(
            needs_of("/admin/v1/tenants/a/tokens", Get),
            Some("tenants:read")
        );
        assert_eq!(
            needs_of("/admin/v1/tenants/a/tokens", Post),
            Some("credentials:write")
        );
        assert_eq!(
            needs_of("/admin/v1/tenants/a/console-links", Post),
            Some("credentials:write")
        );
        assert_eq!(
            needs_of("/admin/v1/tenants/a/groups/g/members", Get),
            Some("directory:read")
        );
        assert_eq!(needs_of("/admin/v1/events", Get), Some("events:read"));
        assert_eq!(
            needs_of("/admin/v1/tenants/a/summary", Get),
            Some("logs:read")
        );
        assert_eq!(needs_of("/admin/v1/keys", Get), Some("keys:write"));
        assert_eq!(needs_of("/admin/v1/keys/k", Delete), Some("keys:write"));
        // A method no route serves asks no scope: it is answered 405, whoever asks.
        assert_eq!(needs_of("/admin/v1/tenants/a/users", Post), None);
        assert_eq!(needs_of("/admin/v1/openapi.json", Get), None);
        assert_eq!(needs_of("/admin/v1/nothing", Get), None);
    }

    #[test]
    fn the_document_is_json_of_openapi_3_1() {
        let doc: Value = serde_json::from_str(include_str!("../../assets/openapi.json"))
            .expect("openapi.json parses");
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn bodies_reject_unknown_fields_and_bad_json() {
        assert_eq!(
            decode::<CreateToken>(b"{\"revokeExisting\": true}").map(|b| b.revoke_existing),
            Ok(true)
        );
        let typo = decode::<UpdateTenant>(b"{\"provisioningEnable\": false}")
            .err()
            .unwrap();
        assert_eq!(typo.status, 400);
        assert!(
            typo.detail.contains("provisioningEnable"),
            "{}",
            typo.detail
        );
        assert_eq!(decode::<CreateTenant>(b"{").err().unwrap().status, 400);
        assert_eq!(
            decode::<CreateTenant>(b"{\"subdomain\": 5}")
                .err()
                .unwrap()
                .status,
            400
        );
    }
}
