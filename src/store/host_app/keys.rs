//! SQL for the admin API's keys (table `api_keys`, in the catalog `DB`).
//!
//! A key is found by its hash (the UNIQUE index), and its last use is recorded in the same
//! batch, at most once a minute, so that authenticating a request stays one D1 call and a busy
//! key does not make every read a write.

use crate::store::row::from_row;

use crate::store::{Executor, Param, Result, Stmt};

/// A key as stored, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub name: String,
    pub hint: String,
    /// Scope names, space-separated.
    pub scopes: String,
    pub tenant_id: Option<String>,
    pub tenant_subdomain: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Read only to authenticate ([`by_hash`]); lists leave it out.
    pub hash: Option<String>,
}
from_row!(Key {
    id,
    name,
    hint,
    scopes,
    tenant_id,
    tenant_subdomain,
    created_at,
    last_used_at,
    hash
});

const COLUMNS: &str =
    "id, name, hint, scopes, tenant_id, tenant_subdomain, created_at, last_used_at";

/// How stale a recorded last use may get before a request records a new one.
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// Store `k` with hash `hash`. A key bound to a tenant is stored only while the catalog lists
/// that tenant (in the same statement, so a tenant deleted meanwhile leaves no key behind):
/// `false` when it is not listed.
pub async fn insert<E: Executor>(db: &E, k: &Key, hash: &str) -> Result<bool> {
    let params: Vec<Param> = vec![
        k.id.as_str().into(),
        k.name.as_str().into(),
        hash.into(),
        k.hint.as_str().into(),
        k.scopes.as_str().into(),
        k.tenant_id.clone().into(),
        k.tenant_subdomain.clone().into(),
        k.created_at.into(),
    ];
    let sql = format!(
        "INSERT INTO api_keys ({COLUMNS}, hash) \
         SELECT ?1, ?2, ?4, ?5, ?6, ?7, ?8, NULL, ?3 \
         WHERE ?6 IS NULL OR EXISTS (SELECT 1 FROM catalog WHERE id = ?6)"
    );
    Ok(db.query(Stmt::new(sql, params)).await?.changes == 1)
}

/// The key whose hash is `hash`, with that hash (for the constant-time comparison); its last
/// use becomes `now` unless it was recorded within [`TOUCH_EVERY_MS`].
pub async fn by_hash<E: Executor>(db: &E, hash: &str, now: i64) -> Result<Option<Key>> {
    let touch = Stmt::new(
        "UPDATE api_keys SET last_used_at = ?1 WHERE hash = ?2 \
         AND coalesce(last_used_at, 0) <= ?1 - ?3",
        vec![now.into(), hash.into(), TOUCH_EVERY_MS.into()],
    );
    let read = Stmt::new(
        format!("SELECT {COLUMNS}, hash FROM api_keys WHERE hash = ?"),
        vec![hash.into()],
    );
    match db.batch(vec![touch, read]).await?.pop() {
        Some(rows) => rows.first(),
        None => Ok(None),
    }
}

/// Up to `limit` keys after id `after`, in id order: every key (`tenant` `None`) or those bound
/// to tenant `tenant`; and whether more follow.
pub async fn page<E: Executor>(
    db: &E,
    tenant: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<(Vec<Key>, bool)> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE id > ?1 AND (?2 IS NULL OR tenant_id = ?2) \
         ORDER BY id LIMIT ?3"
    );
    let params = vec![
        after.into(),
        tenant.map(str::to_string).into(),
        i64::from(limit).saturating_add(1).into(),
    ];
    let mut rows: Vec<Key> = db.query(Stmt::new(sql, params)).await?.decode()?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// Delete key `id` (when `tenant` is given, only if bound to it): whether it existed.
pub async fn delete<E: Executor>(db: &E, id: &str, tenant: Option<&str>) -> Result<bool> {
    let stmt = Stmt::new(
        "DELETE FROM api_keys WHERE id = ?1 AND (?2 IS NULL OR tenant_id = ?2)",
        vec![id.into(), tenant.map(str::to_string).into()],
    );
    Ok(db.query(stmt).await?.changes == 1)
}

/// The statement that deletes every key bound to tenant `id` (it leaves the catalog with
/// them) where `gone` (a condition on `?1`, the id: that the tenant is no longer listed) holds.
pub fn delete_of_tenant(id: &str, gone: &str) -> Stmt {
    Stmt::new(
        format!("DELETE FROM api_keys WHERE tenant_id = ?1 AND {gone}"),
        vec![id.into()],
    )
}
