//! The admin API's logic: tenants (tenants) and their Secret Tokens.
//!
//! Every change that can revoke access (disabling provisioning, deleting a tenant,
//! revoking a token, or rotating with `revokeExisting`) takes effect with the next request:
//! each SCIM request checks its token in its own D1 batch (`store::gate`), nothing is cached.

use crate::store::catalog::{self, Entry};
use crate::store::tenants::{self as store, NewTenant, NewToken, Tenant, TokenInfo, TokenRefusal};
use crate::store::{Executor, StoreError};
use scim_core::scim::error::{quote, Error, Result};
use scim_core::tenancy::host::validate_subdomain;
use scim_core::tenancy::token;

use super::shards::{self, Databases};
use super::Runtime;

/// Longest tenant name accepted.
pub const MAX_NAME_LEN: usize = 200;

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

fn not_found(sub: &str) -> Error {
    Error::not_found(format!("no tenant with subdomain '{}'", quote(sub)))
}

/// Create a tenant on the shard `shard` names, or where [`shards::place`] puts it;
/// its name defaults to the subdomain, provisioning to enabled.
///
/// The catalog's row comes first: it claims the subdomain across every shard (a taken one is
/// 409 there, before anything is written to a shard). Should the shard's row then fail for
/// good, the catalog's is taken back. Should it fail in a way D1 says to retry (503), it may or
/// may not have been written, and taking the catalog's row back could fail the same way: the
/// catalog's row stays, and the retry of the same create finishes the tenant on its shard
/// ([`unfinished`]) instead of answering 409 for a tenant that was never made. A create that
/// is never retried is taken off the list by the Cron Trigger ([`sweep_unfinished`]).
pub async fn create<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    subdomain: &str,
    name: Option<&str>,
    provisioning_enabled: Option<bool>,
    shard: Option<&str>,
) -> Result<Entry> {
    let subdomain = subdomain.trim();
    validate_subdomain(subdomain).map_err(Error::invalid)?;
    let name = name.unwrap_or(subdomain);
    check_name(name)?;
    let name = name.trim();
    let provisioning_enabled = provisioning_enabled.unwrap_or(true);
    let binding = shards::place(s, shard).await?;
    let org = Entry {
        id: rt.random_id("ten_")?,
        subdomain: subdomain.to_string(),
        name: name.to_string(),
        provisioning_enabled,
        shard: binding,
        created_at: rt.now(),
        updated_at: rt.now(),
        moving: None,
    };
    let catalog_db = s.catalog()?;
    let same = |o: &Entry| {
        o.name == name
            && o.provisioning_enabled == provisioning_enabled
            && shard.is_none_or(|b| o.shard == b)
    };
    // Twice at most: once more when the sweep took an unfinished listing off meanwhile.
    let mut swept = false;
    let org = loop {
        match catalog::insert(&catalog_db, &org).await {
            Ok(()) => break org,
            Err(e) if e.is_unique_on("subdomain") => match unfinished(s, subdomain).await? {
                Some(listed) if same(&listed) => {
                    if catalog::claim_unmade(&catalog_db, &listed.id, rt.now()).await? {
                        break listed;
                    }
                    if swept {
                        return Err(subdomain_taken(e, subdomain));
                    }
                    swept = true;
                }
                _ => return Err(subdomain_taken(e, subdomain)),
            },
            Err(e) => return Err(e.into()),
        }
    };
    let db = s.shard(&org.shard)?;
    let created = store::create_tenant(
        &db,
        NewTenant {
            id: &org.id,
            subdomain: &org.subdomain,
            name: &org.name,
            provisioning_enabled: org.provisioning_enabled,
            now: org.created_at,
        },
    )
    .await;
    match created {
        Ok(_) => {}
        // Another attempt at the same create finished it first.
        Err(e) if e.is_unique_on("id") => {}
        Err(e @ StoreError::Unavailable(_)) => return Err(e.into()),
        Err(e) => {
            catalog::remove(&catalog_db, &org.id).await?;
            return Err(subdomain_taken(e, subdomain));
        }
    }
    // The tenant is made whether or not this mark is written: should D1 refuse it, the
    // tenant still answers, and the sweep finds its row and marks it then.
    let _ = catalog::mark_made(&catalog_db, &org.id).await;
    // It starts with the app's declared roles (the Cron Trigger would apply them otherwise).
    super::roles::adopt(s, rt, &db, &org.id).await?;
    Ok(org)
}

/// The catalog's entry for `subdomain` if its tenant was never made on its shard: a create
/// that failed after listing it (see [`create`]). A tenant on the move is never one.
async fn unfinished<S: Databases>(s: &S, subdomain: &str) -> Result<Option<Entry>> {
    let Some(listed) = catalog::by_subdomain(&s.catalog()?, subdomain).await? else {
        return Ok(None);
    };
    if listed.moving.is_some() {
        return Ok(None);
    }
    let made = store::exists(&s.shard(&listed.shard)?, &listed.id).await?;
    Ok((!made).then_some(listed))
}

/// A listing is unfinished for this long before the sweep may take it off: far longer than a
/// create takes, so that only one that failed, and was not retried since, is taken off.
pub const UNFINISHED_AFTER_MS: i64 = 10 * 60 * 1000;

/// Listings the sweep looks at in one run (the Cron Trigger runs every 15 minutes).
const SWEEP_LIMIT: i64 = 100;

/// What one sweep did: listings taken off (their creates had not finished), and listings
/// found made (their create's mark was lost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub dropped: u64,
    pub made: u64,
}

/// Finish the books on creates that did not finish ([`create`]): a listing left unfinished for
/// [`UNFINISHED_AFTER_MS`] whose shard has the tenant's row is marked made; one whose shard has
/// none is taken off the list, with the API keys and webhooks limited to it, so that its
/// subdomain is free and the list shows no tenant that does not answer. A create retried
/// meanwhile claims its listing first ([`catalog::claim_unmade`]), and the listing is then
/// left to it.
pub async fn sweep_unfinished<S: Databases, R: Runtime>(s: &S, rt: &R) -> Result<Swept> {
    let catalog_db = s.catalog()?;
    let before = rt.now().saturating_sub(UNFINISHED_AFTER_MS);
    let mut swept = Swept::default();
    for listed in catalog::unmade(&catalog_db, before, SWEEP_LIMIT).await? {
        if listed.moving.is_some() {
            continue;
        }
        if store::exists(&s.shard(&listed.shard)?, &listed.id).await? {
            catalog::mark_made(&catalog_db, &listed.id).await?;
            swept.made = swept.made.saturating_add(1);
        } else if catalog::remove_unmade(&catalog_db, &listed).await? {
            swept.dropped = swept.dropped.saturating_add(1);
        }
    }
    Ok(swept)
}

/// A UNIQUE refusal on a subdomain: the name is another tenant's (409).
fn subdomain_taken(e: StoreError, subdomain: &str) -> Error {
    if e.is_unique_on("subdomain") {
        Error::state_conflict(format!(
            "a tenant with subdomain '{}' already exists",
            quote(subdomain)
        ))
    } else {
        e.into()
    }
}

/// A page of tenants in subdomain order, after subdomain `after`, and the subdomain to
/// pass as `after` for the next page when there is one.
pub async fn list<S: Databases>(
    s: &S,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<Entry>, Option<String>)> {
    let (orgs, more) = catalog::page(&s.catalog()?, after.unwrap_or(""), limit).await?;
    let next = if more {
        orgs.last().map(|o| o.subdomain.clone())
    } else {
        None
    };
    Ok((orgs, next))
}

pub async fn get<S: Databases>(s: &S, sub: &str) -> Result<Entry> {
    catalog::by_subdomain(&s.catalog()?, sub)
        .await?
        .ok_or_else(|| not_found(sub))
}

/// Rename a tenant and/or switch its provisioning: in its shard first (its tokens'
/// next requests see it there), then in the catalog's list.
pub async fn update<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    sub: &str,
    name: Option<&str>,
    provisioning_enabled: Option<bool>,
) -> Result<Entry> {
    if let Some(name) = name {
        check_name(name)?;
    }
    if name.is_none() && provisioning_enabled.is_none() {
        return Err(Error::invalid(
            "nothing to change: give name and/or provisioningEnabled",
        ));
    }
    let at = shards::locate(s, sub).await?;
    let t: Tenant = store::update_tenant(
        &at.db,
        sub,
        name.map(str::trim),
        provisioning_enabled,
        rt.now(),
    )
    .await?
    .ok_or_else(|| not_found(sub))?;
    catalog::update(
        &s.catalog()?,
        &t.id,
        &t.name,
        t.provisioning_enabled,
        t.updated_at,
    )
    .await?
    .ok_or_else(|| not_found(sub))
}

/// A new Secret Token: its row id and the token itself (shown once, never stored).
pub struct Generated {
    pub id: String,
    pub token: token::NewToken,
}

/// "Generate new": at most [`store::MAX_ACTIVE_TOKENS`] live tokens, unless `revoke_existing`
/// revokes the others in the same write.
pub async fn create_token<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    sub: &str,
    revoke_existing: bool,
) -> Result<Generated> {
    let new = token::generate().map_err(|e| Error::internal(format!("getrandom: {}", e.0)))?;
    let id = rt.random_id("tok_")?;
    let outcome = store::create_token(
        db,
        sub,
        NewToken {
            id: &id,
            hash: &new.hash,
            hint: &new.hint,
            now: rt.now(),
        },
        revoke_existing,
    )
    .await?;
    match outcome {
        Ok(()) => Ok(Generated { id, token: new }),
        Err(TokenRefusal::UnknownTenant) => Err(not_found(sub)),
        Err(TokenRefusal::LimitReached) => Err(Error::state_conflict(format!(
            "tenant '{}' already has {} active tokens; revoke one, or pass {{\"revokeExisting\": true}}",
            quote(sub),
            store::MAX_ACTIVE_TOKENS
        ))),
    }
}

pub async fn list_tokens<E: Executor>(db: &E, sub: &str) -> Result<Vec<TokenInfo>> {
    store::list_tokens(db, sub)
        .await?
        .ok_or_else(|| not_found(sub))
}

/// Revoke one token at `now`: the next request that presents it is refused, everywhere (and
/// counts toward the provisioning_failing alert, as its hash is kept as retired).
pub async fn revoke_token<E: Executor>(db: &E, sub: &str, id: &str, now: i64) -> Result<()> {
    if store::revoke_token(db, sub, id, now).await? {
        return Ok(());
    }
    Err(Error::not_found(format!(
        "tenant '{}' has no token '{}'",
        quote(sub),
        quote(id)
    )))
}
