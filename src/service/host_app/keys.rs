//! The admin API's keys: least-privilege credentials for the host app's jobs.
//!
//! A key is `scim_ak_` and 32 random bytes (getrandom), shown once, stored as its SHA-256 in
//! the catalog, found by that hash and compared again in constant time. It carries
//! [`Scopes`] and may be **bound to one tenant**: then every other tenant is 404 to it, as if
//! it did not exist, and what is not one tenant's (shards, purges, creating tenants, the
//! deployment's roles) is 403. `ADMIN_TOKEN` is the bootstrap key: every scope, no tenant.
//!
//! A key never makes a key stronger than itself: the scopes it grants are a subset of its own,
//! and a bound key makes keys bound to its own tenant only.

use crate::service::shards::{self, Databases};
use crate::service::Runtime;
use crate::store::keys as store;
/// A key as stored, without its hash.
pub use crate::store::keys::Key;
use scim_core::host_app::scope::{Scope, Scopes};
use scim_core::scim::error::{quote, Error, Result};
use scim_core::tenancy::token;

/// The prefix that tells an admin key apart in a leak report.
pub const PREFIX: &str = "scim_ak_";

/// Longest key name, in characters.
pub const MAX_NAME: usize = 200;

/// Who an admin request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id; `None` for `ADMIN_TOKEN`.
    pub key_id: Option<String>,
    pub scopes: Scopes,
    /// The tenant it is bound to: (id, subdomain).
    pub tenant: Option<(String, String)>,
}

impl Principal {
    /// `ADMIN_TOKEN`: every scope, every tenant.
    pub fn bootstrap() -> Principal {
        Principal {
            key_id: None,
            scopes: Scopes::EVERY,
            tenant: None,
        }
    }

    /// 403 naming `scope` unless the key has it.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.scopes.has(scope) {
            return Ok(());
        }
        Err(Error::forbidden(format!(
            "this key lacks the scope '{}'",
            scope.name()
        )))
    }

    /// The subdomain of the tenant it is bound to.
    pub fn bound_to(&self) -> Option<&str> {
        self.tenant.as_ref().map(|(_, sub)| sub.as_str())
    }

    /// 404, exactly as for a tenant that does not exist, unless it may see tenant `sub`.
    pub fn may_see(&self, sub: &str) -> Result<()> {
        match self.bound_to() {
            Some(own) if own != sub => Err(shards::not_found(sub)),
            _ => Ok(()),
        }
    }

    /// 403 for a key bound to one tenant: `what` is not that tenant's.
    pub fn unbound(&self, what: &str) -> Result<()> {
        match self.bound_to() {
            Some(own) => Err(Error::forbidden(format!(
                "this key is bound to tenant '{}' and cannot {what}",
                quote(own)
            ))),
            None => Ok(()),
        }
    }
}

/// The principal key `presented` authenticates, if any (one call to the catalog, which also
/// records the key's use).
pub async fn authenticate<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    presented: &str,
) -> Result<Option<Principal>> {
    if !presented.starts_with(PREFIX) {
        return Ok(None);
    }
    let hash = token::hash(presented);
    let found = store::by_hash(&s.catalog()?, &hash, rt.now()).await?;
    Ok(found
        .filter(|k| {
            k.hash
                .as_deref()
                .is_some_and(|h| token::hashes_equal(h, &hash))
        })
        .map(|k| Principal {
            key_id: Some(k.id),
            scopes: Scopes::from_stored(&k.scopes),
            tenant: k.tenant_id.zip(k.tenant_subdomain),
        }))
}

/// What a client asks a new key to be.
pub struct Request<'a> {
    pub name: &'a str,
    pub scopes: Vec<&'a str>,
    /// The subdomain of the tenant to bind it to.
    pub tenant: Option<&'a str>,
}

/// A new key: its row, and its plaintext (shown once).
pub struct Created {
    pub key: Key,
    pub plaintext: String,
}

/// Make a key as `by` may: 400 for a bad name or scope, 403 for a scope `by` lacks, 404 for a
/// tenant it cannot see or that does not exist.
pub async fn create<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    by: &Principal,
    req: &Request<'_>,
) -> Result<Created> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "name must be 1 to {MAX_NAME} characters, without control characters"
        )));
    }
    let scopes = Scopes::parse(req.scopes.iter().copied()).map_err(|unknown| {
        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
        Error::invalid(format!(
            "unknown scope '{}'; the scopes are {}",
            quote(unknown),
            known.join(", ")
        ))
    })?;
    if scopes.is_empty() {
        return Err(Error::invalid("scopes must name at least one scope"));
    }
    if let Some(lacking) = by.scopes.missing(scopes).next() {
        return Err(Error::forbidden(format!(
            "a key cannot grant a scope it lacks: '{}'",
            lacking.name()
        )));
    }
    let tenant = match (req.tenant, &by.tenant) {
        (None, own) => own.clone(),
        (Some(sub), _) => {
            by.may_see(sub)?;
            let at = shards::locate(s, sub).await?;
            Some((at.org.id, at.org.subdomain))
        }
    };
    let plaintext = crate::service::new_secret(PREFIX)?;
    let key = Key {
        id: rt.random_id("key_")?,
        name: name.to_string(),
        hint: token::hint(&plaintext),
        scopes: scopes.stored(),
        tenant_id: tenant.as_ref().map(|(id, _)| id.clone()),
        tenant_subdomain: tenant.map(|(_, sub)| sub),
        created_at: rt.now(),
        last_used_at: None,
        hash: None,
    };
    if !store::insert(&s.catalog()?, &key, &token::hash(&plaintext)).await? {
        return Err(shards::not_found(req.tenant.unwrap_or_default()));
    }
    Ok(Created { key, plaintext })
}

/// A page of the keys `by` may see (a bound key: those bound to its tenant), and the cursor of
/// the next page.
pub async fn list<S: Databases>(
    s: &S,
    by: &Principal,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<Key>, Option<String>)> {
    let tenant = by.tenant.as_ref().map(|(id, _)| id.as_str());
    let (keys, more) = store::page(&s.catalog()?, tenant, after.unwrap_or(""), limit).await?;
    let next = more.then(|| keys.last().map(|k| k.id.clone())).flatten();
    Ok((keys, next))
}

/// Revoke key `id`, effective on the next request; 404 when `by` cannot see it.
pub async fn revoke<S: Databases>(s: &S, by: &Principal, id: &str) -> Result<()> {
    let tenant = by.tenant.as_ref().map(|(id, _)| id.as_str());
    if store::delete(&s.catalog()?, id, tenant).await? {
        return Ok(());
    }
    Err(Error::not_found(format!("no key with id '{}'", quote(id))))
}

#[cfg(test)]
mod tests {
    use pollster::block_on;

    use super::*;
    use crate::service::testing::{TestRuntime, TestShards};
    use crate::service::{tenants, upkeep};
    use crate::store::sqlite::Sqlite;

    fn ask<'a>(name: &'a str, scopes: &[&'a str], tenant: Option<&'a str>) -> Request<'a> {
        Request {
            name,
            scopes: scopes.to_vec(),
            tenant,
        }
    }

    fn status<T>(r: Result<T>) -> Option<u16> {
        r.err().map(|e| e.status)
    }

    fn fails<T>(f: impl std::future::Future<Output = Result<T>>) -> Option<u16> {
        status(block_on(f))
    }

    #[test]
    fn a_key_authenticates_with_its_scopes_and_tenant_until_revoked() {
        let all = TestShards::new(Sqlite::migrated(), 1);
        let rt = TestRuntime::at(1_000_000);
        block_on(tenants::create(&all, &rt, "acme", None, None, None)).expect("acme");
        let root = Principal::bootstrap();
        let made = block_on(create(
            &all,
            &rt,
            &root,
            &ask(" mirror ", &["directory:read"], Some("acme")),
        ))
        .expect("created");
        assert!(made.plaintext.starts_with(PREFIX));
        assert_eq!(made.key.name, "mirror");
        assert_eq!(made.key.hint, token::hint(&made.plaintext));
        let p = block_on(authenticate(&all, &rt, &made.plaintext))
            .expect("ok")
            .expect("known");
        assert_eq!(p.scopes.names(), ["directory:read"]);
        assert_eq!(p.bound_to(), Some("acme"));
        assert_eq!(status(p.require(Scope::DirectoryRead)), None);
        let lacks = p.require(Scope::TenantsWrite).unwrap_err();
        assert_eq!(
            (lacks.status, lacks.detail.contains("'tenants:write'")),
            (403, true)
        );
        assert_eq!(status(p.may_see("acme")), None);
        let other = p.may_see("globex").unwrap_err();
        assert_eq!(
            other.detail,
            shards::not_found("globex").detail,
            "as if it did not exist"
        );
        assert_eq!(status(p.unbound("list shards")), Some(403));
        // Its use is recorded, at most once a minute.
        let (keys, _) = block_on(list(&all, &root, None, 10)).expect("list");
        assert_eq!(keys[0].last_used_at, Some(1_000_000));
        let later = TestRuntime::at(1_030_000);
        block_on(authenticate(&all, &later, &made.plaintext)).expect("ok");
        let (keys, _) = block_on(list(&all, &root, None, 10)).expect("list");
        assert_eq!(keys[0].last_used_at, Some(1_000_000));
        // Not a key, a near miss, a revoked key: nobody.
        assert_eq!(
            block_on(authenticate(&all, &rt, "dev-admin-token")).expect("ok"),
            None
        );
        let near = format!("{}x", made.plaintext);
        assert_eq!(block_on(authenticate(&all, &rt, &near)).expect("ok"), None);
        block_on(revoke(&all, &root, &made.key.id)).expect("revoked");
        assert_eq!(
            block_on(authenticate(&all, &rt, &made.plaintext)).expect("ok"),
            None
        );
        assert_eq!(fails(revoke(&all, &root, &made.key.id)), Some(404));
    }

    #[test]
    fn a_key_never_makes_a_stronger_key_and_a_bound_one_stays_home() {
        let all = TestShards::new(Sqlite::migrated(), 2);
        let rt = TestRuntime::at(1_000);
        for sub in ["acme", "globex"] {
            block_on(tenants::create(&all, &rt, sub, None, None, None)).expect(sub);
        }
        let root = Principal::bootstrap();
        assert_eq!(
            fails(create(&all, &rt, &root, &ask("", &["logs:read"], None))),
            Some(400)
        );
        assert_eq!(
            fails(create(
                &all,
                &rt,
                &root,
                &ask("x\u{7}y", &["logs:read"], None)
            )),
            Some(400)
        );
        let long = "k".repeat(MAX_NAME + 1);
        assert_eq!(
            fails(create(&all, &rt, &root, &ask(&long, &["logs:read"], None))),
            Some(400)
        );
        assert_eq!(
            fails(create(&all, &rt, &root, &ask("x", &[], None))),
            Some(400)
        );
        let unknown = block_on(create(&all, &rt, &root, &ask("x", &["admin"], None)))
            .err()
            .unwrap();
        assert!(unknown.detail.contains("'admin'") && unknown.detail.contains("keys:write"));
        assert_eq!(
            fails(create(
                &all,
                &rt,
                &root,
                &ask("x", &["logs:read"], Some("nope"))
            )),
            Some(404)
        );

        let maker = block_on(create(
            &all,
            &rt,
            &root,
            &ask("maker", &["keys:write", "logs:read"], Some("acme")),
        ))
        .expect("maker");
        let maker = block_on(authenticate(&all, &rt, &maker.plaintext))
            .expect("ok")
            .expect("known");
        let stronger = block_on(create(
            &all,
            &rt,
            &maker,
            &ask("x", &["logs:read", "tenants:write"], None),
        ));
        let e = stronger.err().unwrap();
        assert_eq!(
            (e.status, e.detail.contains("'tenants:write'")),
            (403, true)
        );
        assert_eq!(
            fails(create(
                &all,
                &rt,
                &maker,
                &ask("x", &["logs:read"], Some("globex"))
            )),
            Some(404)
        );
        // Without a tenant, a bound maker's key is bound to its own.
        let child = block_on(create(
            &all,
            &rt,
            &maker,
            &ask("child", &["logs:read"], None),
        ))
        .expect("child");
        assert_eq!(child.key.tenant_subdomain.as_deref(), Some("acme"));
        // A bound key lists and revokes its tenant's keys only.
        let wide = block_on(create(
            &all,
            &rt,
            &root,
            &ask("wide", &["events:read"], None),
        ))
        .expect("wide");
        let (seen, next) = block_on(list(&all, &maker, None, 10)).expect("list");
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen
            .iter()
            .all(|k| k.tenant_subdomain.as_deref() == Some("acme")));
        assert_eq!(next, None);
        assert_eq!(fails(revoke(&all, &maker, &wide.key.id)), Some(404));
        // Pages follow the id order.
        let (first, next) = block_on(list(&all, &root, None, 2)).expect("page");
        let (rest, last) = block_on(list(&all, &root, next.as_deref(), 2)).expect("page 2");
        assert_eq!((first.len(), rest.len(), last), (2, 1, None));
        // Deleting the tenant deletes its keys.
        block_on(upkeep::delete_tenant(&all, &rt, "acme", 1_000)).expect("deleted");
        assert_eq!(
            block_on(authenticate(&all, &rt, &child.plaintext)).expect("ok"),
            None
        );
        let (left, _) = block_on(list(&all, &root, None, 10)).expect("list");
        assert_eq!(
            left.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            ["wide"]
        );
    }
}
