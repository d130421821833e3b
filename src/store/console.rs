//! SQL for the tenant admin's console: one-time links and sessions, each stored as the
//! SHA-256 of its secret (the service hashes; nothing here sees a secret).
//!
//! Opening a link is one batch: a session is inserted from the link's row only while the link
//! is unexpired, and the link is deleted. D1 runs one write at a time, so of two requests that
//! race with the same link exactly one finds it.

use crate::store::row::from_row;

use super::tenants::TENANT_OF;
use super::{Executor, Result, Stmt};

/// Store a link for tenant `subdomain`; `false` when there is no such tenant.
pub async fn create_link<E: Executor>(
    db: &E,
    subdomain: &str,
    hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool> {
    let out = db
        .query(Stmt::new(
            format!(
                "INSERT INTO console_links (hash, tenant_id, created_at, expires_at) \
                 SELECT ?, {TENANT_OF}, ?, ? WHERE {TENANT_OF} IS NOT NULL"
            ),
            vec![
                hash.into(),
                subdomain.into(),
                now.into(),
                expires_at.into(),
                subdomain.into(),
            ],
        ))
        .await?;
    Ok(out.changes > 0)
}

/// A session to start from a link.
pub struct NewSession<'a> {
    pub hash: &'a str,
    /// The SHA-256 of the session's CSRF token.
    pub csrf: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Use link `link_hash` once: start session `s` for its tenant if the link is unexpired,
/// and delete the link either way. `false` when the link is unknown, used or expired.
pub async fn open_link<E: Executor>(db: &E, link_hash: &str, s: NewSession<'_>) -> Result<bool> {
    let outs = db
        .batch(vec![
            Stmt::new(
                "INSERT INTO console_sessions (hash, tenant_id, csrf, created_at, expires_at) \
                 SELECT ?, l.tenant_id, ?, ?, ? FROM console_links l JOIN tenants t \
                 ON t.id = l.tenant_id AND t.deleted_at IS NULL WHERE l.hash = ? AND l.expires_at > ?",
                vec![
                    s.hash.into(),
                    s.csrf.into(),
                    s.now.into(),
                    s.expires_at.into(),
                    link_hash.into(),
                    s.now.into(),
                ],
            ),
            Stmt::new(
                "DELETE FROM console_links WHERE hash = ?",
                vec![link_hash.into()],
            ),
        ])
        .await?;
    Ok(outs.first().is_some_and(|o| o.changes > 0))
}

/// A live session and its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub tenant_id: String,
    pub subdomain: String,
    pub name: String,
    pub provisioning_enabled: i64,
    /// The SHA-256 of the session's CSRF token.
    pub csrf: String,
    pub expires_at: i64,
}
from_row!(Session {
    tenant_id,
    subdomain,
    name,
    provisioning_enabled,
    csrf,
    expires_at
});

/// The session of `hash`, if it is unexpired and its tenant is not deleted.
pub async fn session<E: Executor>(db: &E, hash: &str, now: i64) -> Result<Option<Session>> {
    db.query(Stmt::new(
        "SELECT s.tenant_id, t.subdomain, t.name, t.provisioning_enabled, s.csrf, s.expires_at \
         FROM console_sessions s JOIN tenants t ON t.id = s.tenant_id AND t.deleted_at IS NULL \
         WHERE s.hash = ? AND s.expires_at > ?",
        vec![hash.into(), now.into()],
    ))
    .await?
    .first()
}

/// End a session (sign out).
pub async fn end_session<E: Executor>(db: &E, hash: &str) -> Result<()> {
    db.query(Stmt::new(
        "DELETE FROM console_sessions WHERE hash = ?",
        vec![hash.into()],
    ))
    .await?;
    Ok(())
}
