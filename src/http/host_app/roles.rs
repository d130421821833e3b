//! Roles from groups at the edge: the app's declared roles and each tenant's mappings and
//! default role, rendered for the admin API and the console.
//!
//! ```text
//! GET /admin/v1/roles                          {roles, version, pending}
//! PUT /admin/v1/roles                          ["Admin", "Writer", "Reader"] (precedence order)
//! GET /admin/v1/tenants/{sub}/role-mappings    {roles, defaultRole, items: [{groupId, displayName, role}]}
//! PUT /admin/v1/tenants/{sub}/role-mappings    [{groupId, role}]
//! PUT /admin/v1/tenants/{sub}/default-role     {role: "Reader" | null}
//! ```

use crate::http::body::from_body;
use serde_json::{json, Value};

use crate::http::app::App;
use crate::http::reply::Reply;
use crate::service::roles::{self, Declared, TenantRoles};
use crate::service::Executor;
use scim_core::scim::error::Result;

/// How long the request that declares roles applies them to tenants; the Cron Trigger does
/// the rest.
const DECLARE_BUDGET_MS: i64 = 5_000;

fn declared_json(d: &Declared) -> Value {
    json!({"roles": d.roles, "version": d.version, "pending": d.pending})
}

/// A tenant's roles as the admin API and the console show them.
pub fn tenant_json(t: &TenantRoles) -> Value {
    let items: Vec<Value> = t
        .mappings
        .iter()
        .map(|m| json!({"groupId": m.group_id, "displayName": m.display_name, "role": m.role}))
        .collect();
    json!({"roles": t.roles, "defaultRole": t.default_role, "items": items})
}

pub async fn declared(app: &App) -> Result<Reply> {
    Ok(Reply::json(
        200,
        declared_json(&roles::declared(&app.databases()).await?),
    ))
}

pub async fn declare(app: &App, names: Vec<String>) -> Result<Reply> {
    let d = roles::declare(&app.databases(), &app.rt, &names, DECLARE_BUDGET_MS).await?;
    Ok(Reply::json(200, declared_json(&d)))
}

/// One mapping as a client sends it.
pub struct MappingBody {
    group_id: String,
    role: String,
}
from_body!(MappingBody { group_id = "groupId", role });

/// The mappings as (group id, role) pairs.
pub fn pairs(body: Vec<MappingBody>) -> Vec<(String, String)> {
    body.into_iter().map(|m| (m.group_id, m.role)).collect()
}

/// A default role as a client sends it (`null`: none).
pub struct DefaultBody {
    role: Option<String>,
}
from_body!(DefaultBody { role });

pub async fn of_tenant<E: Executor>(db: &E, tenant_id: &str) -> Result<Reply> {
    Ok(Reply::json(
        200,
        tenant_json(&roles::of_tenant(db, tenant_id).await?),
    ))
}

pub async fn set_mappings<E: Executor>(
    app: &App,
    db: &E,
    tenant_id: &str,
    body: Vec<MappingBody>,
) -> Result<Reply> {
    let t = roles::set_mappings(db, &app.rt, tenant_id, &pairs(body)).await?;
    Ok(Reply::json(200, tenant_json(&t)))
}

pub async fn set_default<E: Executor>(
    app: &App,
    db: &E,
    tenant_id: &str,
    body: DefaultBody,
) -> Result<Reply> {
    let t = roles::set_default(db, &app.rt, tenant_id, body.role.as_deref()).await?;
    Ok(Reply::json(200, tenant_json(&t)))
}
