//! Roles from groups, as the vendor and the tenant's admin set them: the app's roles
//! (deployment-wide, in precedence order), each tenant's group → role mappings and default
//! role. The rule and the statements that keep every user's effective role (and the feed)
//! up to date are the store's ([`crate::store::roles`]).
//!
//! A new declaration of the app's roles reaches each tenant in a batch of its own (its users
//! re-roled with it), so each tenant's directory and feed agree at every moment; the request
//! that declares applies it to as many tenants as its budget allows, the Cron Trigger to the
//! rest ([`apply_pending`]).

use std::collections::HashSet;

use crate::service::shards::Databases;
use crate::service::Runtime;
use crate::store::roles as store;
use crate::store::row;
use crate::store::Executor;
use scim_core::scim::error::{quote, Error, Result};

pub use crate::store::roles::Mapping;

/// Most roles an app declares.
pub const MAX_ROLES: usize = 50;
/// Longest role name, in characters.
pub const MAX_ROLE_CHARS: usize = 100;
/// Most mappings a tenant has.
pub const MAX_MAPPINGS: usize = 500;

/// The app's roles as declared, with their version and how many tenants still apply an
/// earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub roles: Vec<String>,
    pub version: i64,
    pub pending: usize,
}

fn check_roles(roles: &[String]) -> Result<()> {
    if roles.len() > MAX_ROLES {
        return Err(Error::invalid(format!("at most {MAX_ROLES} roles")));
    }
    let mut seen = HashSet::new();
    for r in roles {
        let n = r.chars().count();
        if r.trim() != r || n == 0 || n > MAX_ROLE_CHARS || r.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "a role is 1 to {MAX_ROLE_CHARS} characters, without control characters or \
                 surrounding spaces, not '{}'",
                quote(r)
            )));
        }
        if !seen.insert(r.as_str()) {
            return Err(Error::invalid(format!(
                "role '{}' is listed twice",
                quote(r)
            )));
        }
    }
    Ok(())
}

/// Declare the app's roles (highest precedence first) and apply them to as many tenants as
/// `budget_ms` allows.
pub async fn declare<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    roles: &[String],
    budget_ms: i64,
) -> Result<Declared> {
    check_roles(roles)?;
    let version = store::declare(&s.catalog()?, roles).await?;
    let pending = apply_pending(s, rt, budget_ms).await?;
    Ok(Declared {
        roles: roles.to_vec(),
        version,
        pending,
    })
}

/// The app's roles as declared, and how many tenants still apply an earlier declaration.
pub async fn declared<S: Databases>(s: &S) -> Result<Declared> {
    let (roles, version) = store::declared(&s.catalog()?).await?;
    let mut pending: usize = 0;
    for b in s.bindings() {
        pending = pending.saturating_add(store::count_behind(&s.shard(b)?, version).await?);
    }
    Ok(Declared {
        roles,
        version,
        pending,
    })
}

/// Tenants per shard one round of [`apply_pending`] lists.
const ROUND: i64 = 50;

/// Apply the current declaration to the tenants that have an earlier one, shard by shard,
/// until done or `budget_ms` have passed: how many are left.
pub async fn apply_pending<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    budget_ms: i64,
) -> Result<usize> {
    let (roles, version) = store::declared(&s.catalog()?).await?;
    if version == 0 {
        // Nothing declared yet: no tenant can be behind (every scheduled run asks).
        return Ok(0);
    }
    let deadline = rt.clock().saturating_add(budget_ms);
    let mut left: usize = 0;
    for b in s.bindings() {
        let db = s.shard(b)?;
        loop {
            let behind = store::behind(&db, version, ROUND).await?;
            if behind.is_empty() {
                break;
            }
            let mut applied: usize = 0;
            for id in &behind {
                if rt.clock() >= deadline {
                    break;
                }
                let tag = rt.random_id("w_")?;
                if store::apply_declared(&db, id, &roles, version, &tag, rt.now()).await? {
                    applied = applied.saturating_add(1);
                }
            }
            if applied == 0 || rt.clock() >= deadline {
                left = left.saturating_add(store::count_behind(&db, version).await?);
                break;
            }
        }
    }
    Ok(left)
}

/// Apply the current declaration to new tenant `tenant_id` on `db`, before anybody is
/// provisioned into it.
pub async fn adopt<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    db: &S::Db,
    tenant_id: &str,
) -> Result<()> {
    let (roles, version) = store::declared(&s.catalog()?).await?;
    if version > 0 {
        let tag = rt.random_id("w_")?;
        store::apply_declared(db, tenant_id, &roles, version, &tag, rt.now()).await?;
    }
    Ok(())
}

/// A tenant's roles as it applies them, its default role and its mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRoles {
    pub roles: Vec<String>,
    pub default_role: Option<String>,
    pub mappings: Vec<Mapping>,
}

pub async fn of_tenant<E: Executor>(db: &E, tenant_id: &str) -> Result<TenantRoles> {
    let (roles, default_role) = settings(db, tenant_id).await?;
    Ok(TenantRoles {
        roles,
        default_role,
        mappings: store::mappings(db, tenant_id).await?,
    })
}

/// The tenant's declared roles as it applies them, and its default role.
async fn settings<E: Executor>(db: &E, tenant_id: &str) -> Result<(Vec<String>, Option<String>)> {
    let settings = store::settings(db, tenant_id)
        .await?
        .ok_or_else(|| Error::not_found("the tenant is no longer here"))?;
    let roles = row::strings(&settings.roles);
    Ok((roles, settings.default_role))
}

/// 409 unless `role` is one of the tenant's declared roles.
fn check_declared(declared: &[String], role: &str) -> Result<()> {
    if declared.is_empty() {
        return Err(Error::state_conflict(
            "no roles are declared: declare the app's roles first (PUT /admin/v1/roles)",
        ));
    }
    if !declared.iter().any(|r| r == role) {
        return Err(Error::invalid(format!(
            "'{}' is not one of the app's roles: {}",
            quote(role),
            declared.join(", ")
        )));
    }
    Ok(())
}

/// Make the tenant's mappings exactly `pairs` (group id, role): each group the tenant's, each
/// role declared, each group once. Its users are re-roled in the same batch.
pub async fn set_mappings<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    tenant_id: &str,
    pairs: &[(String, String)],
) -> Result<TenantRoles> {
    if pairs.len() > MAX_MAPPINGS {
        return Err(Error::invalid(format!("at most {MAX_MAPPINGS} mappings")));
    }
    let (declared, _) = settings(db, tenant_id).await?;
    let mut groups = HashSet::new();
    for (group, role) in pairs {
        check_declared(&declared, role)?;
        if !groups.insert(group.as_str()) {
            return Err(Error::invalid(format!(
                "group '{}' is mapped twice",
                quote(group)
            )));
        }
    }
    let ids: Vec<&str> = groups.iter().copied().collect();
    let kinds = crate::store::memberships::kinds(db, tenant_id, &ids).await?;
    if let Some(missing) = ids
        .iter()
        .find(|id| kinds.get(**id) != Some(&scim_core::scim::resource::RefType::Group))
    {
        return Err(Error::invalid(format!(
            "no group with id '{}' in this tenant",
            quote(missing)
        )));
    }
    let tag = rt.random_id("w_")?;
    store::set_mappings(db, tenant_id, pairs, &tag, rt.now())
        .await?
        .ok_or_else(crate::service::auth::moving)?;
    of_tenant(db, tenant_id).await
}

/// Set the tenant's default role (`None`: none); its users without another role are re-roled
/// in the same batch.
pub async fn set_default<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    tenant_id: &str,
    role: Option<&str>,
) -> Result<TenantRoles> {
    if let Some(r) = role {
        check_declared(&settings(db, tenant_id).await?.0, r)?;
    }
    let tag = rt.random_id("w_")?;
    if !store::set_default(db, tenant_id, role, &tag, rt.now()).await? {
        return Err(crate::service::auth::moving());
    }
    of_tenant(db, tenant_id).await
}
