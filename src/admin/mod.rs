//! The admin API (`/admin/v1`): the operator's and the admin console's side.
//!
//! Served only on non-tenant hosts and authenticated with `Authorization: Bearer <ADMIN_TOKEN>`
//! (compared in constant time). JSON in and out, camelCase; errors are
//! `{"status", "error", "message"}`.
//!
//! ```text
//! POST   /admin/v1/tenants                          create {subdomain, name?, provisioningEnabled?}
//! GET    /admin/v1/tenants                          list
//! GET    /admin/v1/tenants/{sub}                    read
//! PATCH  /admin/v1/tenants/{sub}                    {name?, provisioningEnabled?}
//! DELETE /admin/v1/tenants/{sub}                    the tenant with all its data and tokens
//! POST   /admin/v1/tenants/{sub}/tokens             "Generate new" {revokeExisting?}: plaintext once
//! GET    /admin/v1/tenants/{sub}/tokens             [{id, createdAt, lastUsedAt, hint}]
//! DELETE /admin/v1/tenants/{sub}/tokens/{id}        revoke
//! ```

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Method, Request};

use crate::http::{auth, read_body, App, Reply};
use crate::scim::error::{quote, Error, Result};
use crate::store::tenants::{self as store, NewTenant, NewToken, Tenant, TokenRefusal};
use crate::tenancy::host::{tenant_url, validate_subdomain};
use crate::tenancy::token;
use crate::time::rfc3339;

/// Longest organisation name accepted.
const MAX_NAME_LEN: usize = 200;

/// A parsed admin path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route<'a> {
    Tenants,
    Tenant(&'a str),
    Tokens(&'a str),
    Token(&'a str, &'a str),
    Unknown,
}

fn parse(path: &str) -> Route<'_> {
    let rest = path.trim_start_matches("/admin/v1").trim_matches('/');
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["tenants"] => Route::Tenants,
        ["tenants", sub] if !sub.is_empty() => Route::Tenant(sub),
        ["tenants", sub, "tokens"] if !sub.is_empty() => Route::Tokens(sub),
        ["tenants", sub, "tokens", id] if !sub.is_empty() && !id.is_empty() => {
            Route::Token(sub, id)
        }
        _ => Route::Unknown,
    }
}

pub async fn serve(app: &App, mut req: Request, path: &str) -> Result<Reply> {
    authorize(app, &req)?;
    let method = req.method();
    match parse(path) {
        Route::Tenants => match method {
            Method::Get => list_tenants(app).await,
            Method::Post => create_tenant(app, body(&mut req).await?).await,
            _ => Err(Error::method_not_allowed("GET, POST")),
        },
        Route::Tenant(sub) => match method {
            Method::Get => get_tenant(app, sub).await,
            Method::Patch => update_tenant(app, sub, body(&mut req).await?).await,
            Method::Delete => delete_tenant(app, sub).await,
            _ => Err(Error::method_not_allowed("GET, PATCH, DELETE")),
        },
        Route::Tokens(sub) => match method {
            Method::Get => list_tokens(app, sub).await,
            Method::Post => create_token(app, sub, optional_body(&mut req).await?).await,
            _ => Err(Error::method_not_allowed("GET, POST")),
        },
        Route::Token(sub, id) => match method {
            Method::Delete => revoke_token(app, sub, id).await,
            _ => Err(Error::method_not_allowed("DELETE")),
        },
        Route::Unknown => Err(Error::not_found(format!("no admin route {}", quote(path)))),
    }
}

fn authorize(app: &App, req: &Request) -> Result<()> {
    if app.config.admin_token.is_empty() {
        return Err(Error::unauthorized(
            "the admin API is closed: no ADMIN_TOKEN is configured",
        ));
    }
    let header = req.headers().get("authorization").ok().flatten();
    match header.as_deref().and_then(token::bearer) {
        Some(presented) if token::secrets_equal(presented, &app.config.admin_token) => Ok(()),
        Some(_) => Err(Error::unauthorized("invalid admin token")),
        None => Err(Error::unauthorized(
            "missing or malformed Authorization header; expected 'Bearer <ADMIN_TOKEN>'",
        )),
    }
}

/// Largest admin request body: its bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T> {
    let bytes = read_body(req, MAX_BODY_BYTES).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("a JSON request body is required"));
    }
    decode(&bytes)
}

/// A body that may be absent (token creation): empty means the defaults.
async fn optional_body<T: DeserializeOwned + Default>(req: &mut Request) -> Result<T> {
    let bytes = read_body(req, MAX_BODY_BYTES).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    decode(&bytes)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateTenant {
    subdomain: String,
    name: Option<String>,
    provisioning_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateTenant {
    name: Option<String>,
    provisioning_enabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateToken {
    #[serde(default)]
    revoke_existing: bool,
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid("name must not be empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "name must be at most {MAX_NAME_LEN} characters"
        )));
    }
    Ok(())
}

fn url_of(app: &App, sub: &str) -> String {
    tenant_url(
        sub,
        &app.config.base_domain,
        &app.origin,
        app.config.path_form_urls,
    )
}

fn tenant_json(app: &App, t: &Tenant) -> Value {
    json!({
        "subdomain": t.subdomain,
        "name": t.name,
        "provisioningEnabled": t.provisioning_enabled,
        "createdAt": rfc3339(t.created_at),
        "updatedAt": rfc3339(t.updated_at),
        "tenantUrl": url_of(app, &t.subdomain),
    })
}

fn tenant_not_found(sub: &str) -> Error {
    Error::not_found(format!("no tenant with subdomain '{}'", quote(sub)))
}

fn random_id(prefix: &str) -> Result<String> {
    token::random_id(prefix).map_err(|e| Error::internal(format!("getrandom: {}", e.0)))
}

async fn create_tenant(app: &App, req: CreateTenant) -> Result<Reply> {
    let subdomain = req.subdomain.trim();
    validate_subdomain(subdomain).map_err(Error::invalid)?;
    let name = req.name.as_deref().unwrap_or(subdomain);
    check_name(name)?;
    let tenant = store::create_tenant(
        &app.db,
        NewTenant {
            id: &random_id("ten_")?,
            subdomain,
            name: name.trim(),
            provisioning_enabled: req.provisioning_enabled.unwrap_or(true),
            now: app.now,
        },
    )
    .await?;
    let body = tenant_json(app, &tenant);
    Ok(Reply::json(201, body).with_header(
        "location",
        format!("/admin/v1/tenants/{}", tenant.subdomain),
    ))
}

async fn list_tenants(app: &App) -> Result<Reply> {
    let tenants = store::list_tenants(&app.db).await?;
    let items: Vec<Value> = tenants.iter().map(|t| tenant_json(app, t)).collect();
    Ok(Reply::json(200, Value::Array(items)))
}

async fn get_tenant(app: &App, sub: &str) -> Result<Reply> {
    match store::get_tenant(&app.db, sub).await? {
        Some(t) => Ok(Reply::json(200, tenant_json(app, &t))),
        None => Err(tenant_not_found(sub)),
    }
}

async fn update_tenant(app: &App, sub: &str, req: UpdateTenant) -> Result<Reply> {
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    if req.name.is_none() && req.provisioning_enabled.is_none() {
        return Err(Error::invalid(
            "nothing to change: give name and/or provisioningEnabled",
        ));
    }
    let name = req.name.as_deref().map(str::trim);
    let (tenant, hashes) =
        store::update_tenant(&app.db, sub, name, req.provisioning_enabled, app.now)
            .await?
            .ok_or_else(|| tenant_not_found(sub))?;
    // Cached grants carry the provisioning switch: drop them so the change applies at once.
    auth::forget(app, &hashes).await;
    Ok(Reply::json(200, tenant_json(app, &tenant)))
}

async fn delete_tenant(app: &App, sub: &str) -> Result<Reply> {
    let hashes = store::delete_tenant(&app.db, sub)
        .await?
        .ok_or_else(|| tenant_not_found(sub))?;
    auth::forget(app, &hashes).await;
    Ok(Reply::no_content())
}

async fn create_token(app: &App, sub: &str, req: CreateToken) -> Result<Reply> {
    let new = token::generate().map_err(|e| Error::internal(format!("getrandom: {}", e.0)))?;
    let id = random_id("tok_")?;
    let outcome = store::create_token(
        &app.db,
        sub,
        NewToken {
            id: &id,
            hash: &new.hash,
            hint: &new.hint,
            now: app.now,
        },
        req.revoke_existing,
    )
    .await?;
    match outcome {
        Ok(revoked) => {
            auth::forget(app, &revoked).await;
            Ok(Reply::json(
                201,
                json!({
                    "id": id,
                    "token": new.plaintext,
                    "tenantUrl": url_of(app, sub),
                    "createdAt": rfc3339(app.now),
                }),
            ))
        }
        Err(TokenRefusal::UnknownTenant) => Err(tenant_not_found(sub)),
        Err(TokenRefusal::LimitReached) => Err(Error::state_conflict(format!(
            "tenant '{sub}' already has {} active tokens; revoke one, or pass {{\"revokeExisting\": true}}",
            store::MAX_ACTIVE_TOKENS
        ))),
    }
}

async fn list_tokens(app: &App, sub: &str) -> Result<Reply> {
    let tokens = store::list_tokens(&app.db, sub)
        .await?
        .ok_or_else(|| tenant_not_found(sub))?;
    let items: Vec<Value> = tokens
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
    Ok(Reply::json(200, Value::Array(items)))
}

async fn revoke_token(app: &App, sub: &str, id: &str) -> Result<Reply> {
    let hash = store::revoke_token(&app.db, sub, id)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "tenant '{}' has no token '{}'",
                quote(sub),
                quote(id)
            ))
        })?;
    auth::forget(app, &[hash]).await;
    Ok(Reply::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(parse("/admin/v1/tenants/acme/users"), Route::Unknown);
        assert_eq!(parse("/admin/v1/tenants//tokens"), Route::Unknown);
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
