//! The tenant admin's console: the vendor's app asks for a one-time link (admin API),
//! the admin follows it, and a session for that tenant alone lets the page show the
//! Tenant URL, generate and revoke Secret Tokens and client secrets, set the federated
//! credential, and read the provisioning log.
//!
//! Every secret here is stored only as its SHA-256: the link and the session are 32 random
//! bytes (getrandom), found by their hash; the CSRF token is derived from the session's secret
//! ([`csrf_of`], so the page can be given it again without keeping it anywhere) and compared
//! by hash in constant time.
//! A link is valid once and for the time its creator gives (10 minutes by default); a session [`SESSION_TTL_MS`], until sign-out, or
//! until its tenant is deleted. While provisioning is disabled the session can read and revoke
//! but not mint credentials.

use serde_json::Value;

use super::Runtime;
use super::{oauth, tenants};
use crate::store::console::{self as store, NewSession};
use crate::store::directory::Page;
use crate::store::log::{self, LogQuery};
use crate::store::Executor;
use scim_core::scim::error::{quote, Error, Result};
use scim_core::tenancy::token;
use scim_core::time::DAY_MS;

/// How long a console session lasts: 4 hours (hours, not days).
pub const SESSION_TTL_MS: i64 = 4 * 60 * 60 * 1000;

/// Prefixes that tell the secrets apart in a leak report.
const LINK_PREFIX: &str = "scl_";
const SESSION_PREFIX: &str = "scs_";

/// A new link: its secret (shown once, in the URL) and when it expires.
pub struct Link {
    pub secret: String,
    pub expires_at: i64,
}

/// A one-time link to tenant `sub`'s console, valid `ttl_ms`.
pub async fn create_link<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    sub: &str,
    ttl_ms: i64,
) -> Result<Link> {
    let secret = super::new_secret(LINK_PREFIX)?;
    let expires_at = rt.now().saturating_add(ttl_ms);
    if !store::create_link(db, sub, &token::hash(&secret), rt.now(), expires_at).await? {
        return Err(Error::not_found(format!(
            "no tenant with subdomain '{}'",
            quote(sub)
        )));
    }
    Ok(Link { secret, expires_at })
}

/// A started session: its secret (the cookie) and its CSRF token (for the page).
pub struct Started {
    pub secret: String,
    pub expires_at: i64,
}

/// The CSRF token of the session whose secret is `session`: a SHA-256 of the secret under a
/// label of its own, so it is as unguessable as the cookie and reveals nothing of it, and the
/// page can be given it on every load although only its hash is stored.
pub fn csrf_of(session: &str) -> String {
    token::hash(&format!("console-csrf:{session}"))
}

/// What a link that cannot be used says (unknown, used or expired alike).
pub const LINK_UNUSABLE: &str =
    "this console link has expired or has already been used; ask for a new one";

/// Open link `secret`: a session, or 410 when the link is unknown, used or expired (which of
/// them is not said).
pub async fn open_link<E: Executor, R: Runtime>(db: &E, rt: &R, secret: &str) -> Result<Started> {
    let session = super::new_secret(SESSION_PREFIX)?;
    let csrf = token::hash(&csrf_of(&session));
    let expires_at = rt.now().saturating_add(SESSION_TTL_MS);
    let started = store::open_link(
        db,
        &token::hash(secret),
        NewSession {
            hash: &token::hash(&session),
            csrf: &csrf,
            now: rt.now(),
            expires_at,
        },
    )
    .await?;
    if !started {
        return Err(Error::new(410, LINK_UNUSABLE));
    }
    Ok(Started {
        secret: session,
        expires_at,
    })
}

/// The tenant a console request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub tenant_id: String,
    pub subdomain: String,
    pub name: String,
    pub provisioning_enabled: bool,
    /// The session's CSRF token, for its page ([`csrf_of`]).
    pub csrf: String,
    pub expires_at: i64,
}

/// What a request without a live session is told.
pub fn signed_out() -> Error {
    Error::unauthorized(
        "no console session: open the console from your vendor's admin settings again",
    )
}

/// The session of cookie `secret` (401 when there is none, it expired, or its tenant is
/// gone), checked against the CSRF token the page sent when `csrf` is given.
pub async fn session<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    secret: Option<&str>,
    csrf: Option<Option<&str>>,
) -> Result<Admin> {
    let secret = secret.ok_or_else(signed_out)?;
    let s = store::session(db, &token::hash(secret), rt.now())
        .await?
        .ok_or_else(signed_out)?;
    if let Some(sent) = csrf {
        if !sent.is_some_and(|c| token::hashes_equal(&token::hash(c), &s.csrf)) {
            return Err(Error::forbidden(
                "the console's request lacks its CSRF token; reload the page",
            ));
        }
    }
    Ok(Admin {
        tenant_id: s.tenant_id,
        subdomain: s.subdomain,
        name: s.name,
        provisioning_enabled: s.provisioning_enabled != 0,
        csrf: csrf_of(secret),
        expires_at: s.expires_at,
    })
}

/// "Generate new": as the admin API's (409 with two tokens active: the page then offers to
/// revoke the older first), refused while provisioning is disabled.
pub async fn create_token<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    admin: &Admin,
) -> Result<tenants::Generated> {
    enabled(admin)?;
    tenants::create_token(db, rt, &admin.subdomain, false).await
}

/// While provisioning is disabled the console mints no credential (it may still revoke).
fn enabled(admin: &Admin) -> Result<()> {
    if admin.provisioning_enabled {
        return Ok(());
    }
    Err(Error::forbidden(
        "provisioning is disabled for this organisation; the vendor can enable it",
    ))
}

/// "Generate new" client secret, as the admin API's (two years), refused while provisioning
/// is disabled.
pub async fn create_secret<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    admin: &Admin,
) -> Result<oauth::NewSecret> {
    enabled(admin)?;
    oauth::create_secret(db, rt, &admin.tenant_id, None).await
}

/// Set the tenant's federated credential, as the admin API does, refused while provisioning
/// is disabled.
pub async fn set_federation<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    admin: &Admin,
    f: &oauth::Federation,
    allow_loopback: bool,
) -> Result<()> {
    enabled(admin)?;
    oauth::set_federation(db, rt, &admin.tenant_id, f, allow_loopback)
        .await
        .map(|_| ())
}

/// The session's tenant's log, newest first: its id is the session's, so no lookup.
pub async fn logs<E: Executor>(db: &E, admin: &Admin, q: &LogQuery) -> Result<Page> {
    Ok(log::read(db, &admin.tenant_id, q).await?)
}

/// The session's tenant's summary, the last day's counts up to `now`, and its alerts raised.
pub async fn summary<E: Executor>(db: &E, admin: &Admin, now: i64) -> Result<Value> {
    let mut summary = log::summary(db, &admin.tenant_id, now.saturating_sub(DAY_MS)).await?;
    // The page shows them as a banner: the admin is the one who can fix the credential.
    let alerts = crate::service::host_app::alerts::of(db, &admin.tenant_id).await?;
    if let Some(o) = summary.as_object_mut() {
        o.insert("alerts".into(), alerts.into());
    }
    Ok(summary)
}

/// Sign out: the session ends at once.
pub async fn sign_out<E: Executor>(db: &E, secret: &str) -> Result<()> {
    Ok(store::end_session(db, &token::hash(secret)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::TestRuntime;
    use crate::store::fixture::two_tenants;
    use pollster::block_on;

    const MINUTE: i64 = 60_000;

    #[test]
    fn a_link_opens_one_session_once_and_only_in_time() {
        let db = two_tenants();
        let rt = TestRuntime::at(1_000_000);
        let link = block_on(create_link(&db, &rt, "a", 10 * MINUTE)).expect("link");
        assert!(link.secret.starts_with(LINK_PREFIX) && link.secret.len() > 40);
        assert_eq!(link.expires_at, 1_000_000 + 10 * MINUTE);
        // Only the hash is stored.
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM console_links WHERE hash = '{}'",
                token::hash(&link.secret)
            )),
            1
        );
        let started = block_on(open_link(&db, &rt, &link.secret)).expect("opens");
        let again = block_on(open_link(&db, &rt, &link.secret)).map(|_| ());
        assert_eq!(again.map_err(|e| e.status), Err(410), "once");
        let s = block_on(session(&db, &rt, Some(&started.secret), None)).expect("session");
        assert_eq!((s.tenant_id.as_str(), s.subdomain.as_str()), ("ten_a", "a"));
        // The CSRF token must come with every call that asks for it.
        let csrf = s.csrf.clone();
        // Stored only as its hash, like the link and the session.
        let stored = |v: &str| {
            db.count(&format!(
                "SELECT COUNT(*) FROM console_sessions WHERE csrf = '{v}'"
            ))
        };
        assert_eq!((stored(&csrf), stored(&token::hash(&csrf))), (0, 1));
        for (sent, ok) in [
            (None, false),
            (Some("wrong"), false),
            (Some(csrf.as_str()), true),
        ] {
            let r = block_on(session(&db, &rt, Some(&started.secret), Some(sent)));
            assert_eq!(r.is_ok(), ok, "{sent:?}");
        }
        // A link not opened in time is refused, and says the same as a used one.
        let late = block_on(create_link(&db, &rt, "a", 10 * MINUTE)).expect("link");
        rt.now.set(1_000_000 + 10 * MINUTE);
        let e = block_on(open_link(&db, &rt, &late.secret))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.status, 410);
        // A session ends when its time is up.
        rt.now.set(started.expires_at);
        let r = block_on(session(&db, &rt, Some(&started.secret), None)).map(|_| ());
        assert_eq!(r.map_err(|e| e.status), Err(401));
        assert_eq!(
            block_on(create_link(&db, &rt, "nope", MINUTE))
                .map(|_| ())
                .map_err(|e| e.status),
            Err(404)
        );
    }

    #[test]
    fn sign_out_deletion_and_the_switch_end_a_sessions_power() {
        let db = two_tenants();
        let rt = TestRuntime::at(5_000);
        let open = |sub: &str| {
            let link = block_on(create_link(&db, &rt, sub, MINUTE)).expect("link");
            block_on(open_link(&db, &rt, &link.secret))
                .expect("open")
                .secret
        };
        let a = open("a");
        let admin = block_on(session(&db, &rt, Some(&a), None)).expect("session");
        let token = block_on(create_token(&db, &rt, &admin)).expect("token");
        assert!(token.token.plaintext.starts_with("scim_"));
        // Disabled provisioning: the session still reads, but mints nothing.
        let all = crate::service::testing::TestShards::new(db.clone(), 0);
        block_on(tenants::update(&all, &rt, "a", None, Some(false))).expect("disable");
        let admin = block_on(session(&db, &rt, Some(&a), None)).expect("still a session");
        assert!(!admin.provisioning_enabled);
        let e = block_on(create_token(&db, &rt, &admin))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.status, 403);
        // Sign out ends it at once.
        block_on(sign_out(&db, &a)).expect("sign out");
        let r = block_on(session(&db, &rt, Some(&a), None)).map(|_| ());
        assert_eq!(r.map_err(|e| e.status), Err(401));
        // Deleting the tenant ends its sessions; another tenant's stays.
        let b = open("b");
        let a2 = open("a");
        block_on(crate::store::tenants::delete_tenant(&db, "a", 6_000)).expect("delete");
        let r = block_on(session(&db, &rt, Some(&a2), None)).map(|_| ());
        assert_eq!(r.map_err(|e| e.status), Err(401));
        let other = block_on(session(&db, &rt, Some(&b), None)).expect("b's session");
        assert_eq!(other.subdomain, "b");
    }
}
