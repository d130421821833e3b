//! SQL for tenants and their Secret Tokens (the admin API's data and the SCIM auth lookup).
//! The access tokens of `super::oauth` share the `tokens` table (`minted_by` is set); every
//! statement on Secret Tokens here leaves them alone.

use crate::store::row::from_row;

use super::{Executor, Param, Result, Stmt, StoreError};
use scim_core::time::DAY_MS;

/// At most this many live tokens per tenant: one in use and one being rotated in.
pub const MAX_ACTIVE_TOKENS: i64 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub subdomain: String,
    pub name: String,
    pub provisioning_enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}
from_row!(Tenant {
    id,
    subdomain,
    name,
    provisioning_enabled,
    created_at,
    updated_at
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub hint: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}
from_row!(TokenInfo {
    id,
    hint,
    created_at,
    last_used_at
});

const TENANT_COLUMNS: &str = "id, subdomain, name, provisioning_enabled, created_at, updated_at";

/// How long a retired credential's hash is kept (`migrations/0015_retired_credentials.sql`).
pub const RETIRED_KEEP_MS: i64 = 30 * DAY_MS;

/// The statement that keeps, as retired at `now`, the hashes of the credentials `from` selects
/// (`FROM <table with tenant_id and hash> WHERE …`, bound by `params`): put before the
/// statement that deletes them, in its batch.
pub(crate) fn retire(from: &str, now: i64, params: Vec<Param>) -> Stmt {
    let mut all: Vec<Param> = vec![now.into(), now.saturating_add(RETIRED_KEEP_MS).into()];
    all.extend(params);
    Stmt::new(
        format!(
            "INSERT OR IGNORE INTO retired_credentials (tenant_id, hash, retired_at, expires_at) \
             SELECT tenant_id, hash, ?, ? {from}"
        ),
        all,
    )
}

/// The tenant id of a subdomain, as a sub-select, so tenant-scoped statements need no lookup first.
///
/// A deleted tenant (its `subdomain` is its id until its purge ends) is no tenant
/// here: every statement that finds one by subdomain says `deleted_at IS NULL`.
pub(crate) const TENANT_OF: &str =
    "(SELECT id FROM tenants WHERE subdomain = ? AND deleted_at IS NULL)";

pub struct NewTenant<'a> {
    pub id: &'a str,
    pub subdomain: &'a str,
    pub name: &'a str,
    pub provisioning_enabled: bool,
    pub now: i64,
}

/// Insert a tenant; a taken subdomain is `StoreError::Unique` on `subdomain` (the UNIQUE index decides, not check-then-insert).
pub async fn create_tenant<E: Executor>(db: &E, t: NewTenant<'_>) -> Result<Tenant> {
    let stmt = Stmt::new(
        format!(
            "INSERT INTO tenants ({TENANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) RETURNING {TENANT_COLUMNS}"
        ),
        vec![
            t.id.into(),
            t.subdomain.into(),
            t.name.into(),
            t.provisioning_enabled.into(),
            t.now.into(),
            t.now.into(),
        ],
    );
    match db.query(stmt).await {
        Ok(out) => out
            .first()?
            .ok_or_else(|| StoreError::Other("INSERT … RETURNING gave no row".into())),
        Err(e) => Err(e),
    }
}

/// Whether this database holds a row for tenant `id` (deleted or not).
pub async fn exists<E: Executor>(db: &E, id: &str) -> Result<bool> {
    let stmt = Stmt::new("SELECT 1 FROM tenants WHERE id = ?", vec![id.into()]);
    Ok(!db.query(stmt).await?.rows.is_empty())
}

pub async fn get_tenant<E: Executor>(db: &E, subdomain: &str) -> Result<Option<Tenant>> {
    let sql =
        format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE subdomain = ? AND deleted_at IS NULL");
    db.query(Stmt::new(sql, vec![subdomain.into()]))
        .await?
        .first()
}

/// Change a tenant's name and/or provisioning switch; `None` for an unknown tenant. Its
/// tokens' next requests see the change (their gate reads the switch).
pub async fn update_tenant<E: Executor>(
    db: &E,
    subdomain: &str,
    name: Option<&str>,
    provisioning_enabled: Option<bool>,
    now: i64,
) -> Result<Option<Tenant>> {
    let update = Stmt::new(
        format!(
            "UPDATE tenants SET name = COALESCE(?, name), \
             provisioning_enabled = COALESCE(?, provisioning_enabled), updated_at = ? \
             WHERE subdomain = ? AND deleted_at IS NULL RETURNING {TENANT_COLUMNS}"
        ),
        vec![
            name.into(),
            provisioning_enabled.into(),
            now.into(),
            subdomain.into(),
        ],
    );
    db.query(update).await?.first::<Tenant>()
}

/// Delete a tenant: at once, its tokens and console sessions go and its subdomain is freed (it becomes the
/// tenant's id, which no subdomain can equal), so no SCIM request reaches it and the name can
/// be taken again; its data is purged afterwards in chunks ([`super::upkeep`]), because one
/// statement over 100,000 users would pass D1's limits. Returns the tenant's id, or `None` for
/// an unknown tenant.
pub async fn delete_tenant<E: Executor>(
    db: &E,
    subdomain: &str,
    now: i64,
) -> Result<Option<String>> {
    let stmts = vec![
        Stmt::new(
            format!("DELETE FROM tokens WHERE tenant_id = {TENANT_OF}"),
            vec![subdomain.into()],
        ),
        Stmt::new(
            format!("DELETE FROM console_sessions WHERE tenant_id = {TENANT_OF}"),
            vec![subdomain.into()],
        ),
        Stmt::new(
            format!("DELETE FROM console_links WHERE tenant_id = {TENANT_OF}"),
            vec![subdomain.into()],
        ),
        Stmt::new(
            "UPDATE tenants SET deleted_at = ?, deleted_subdomain = subdomain, subdomain = id, \
             provisioning_enabled = 0, updated_at = ? WHERE subdomain = ? AND deleted_at IS NULL RETURNING id",
            vec![now.into(), now.into(), subdomain.into()],
        ),
    ];
    let outs = db.batch(stmts).await?;
    struct Row {
        id: String,
    }
    from_row!(Row { id });
    Ok(match outs.into_iter().last() {
        Some(o) => o.first::<Row>()?.map(|r| r.id),
        None => None,
    })
}

pub struct NewToken<'a> {
    pub id: &'a str,
    pub hash: &'a str,
    pub hint: &'a str,
    pub now: i64,
}

/// Why a token could not be created.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    UnknownTenant,
    LimitReached,
}

/// Insert a token for a tenant. Without `revoke_existing` the insert is conditional on the tenant
/// having fewer than [`MAX_ACTIVE_TOKENS`], in the same statement (no race between check and
/// insert). With it, the tenant's other tokens are deleted in the same batch (one transaction).
pub async fn create_token<E: Executor>(
    db: &E,
    subdomain: &str,
    token: NewToken<'_>,
    revoke_existing: bool,
) -> Result<std::result::Result<(), TokenRefusal>> {
    let insert = Stmt::new(
        "INSERT INTO tokens (id, tenant_id, hash, hint, created_at) \
         SELECT ?, t.id, ?, ?, ? FROM tenants t WHERE t.subdomain = ? AND t.deleted_at IS NULL \
         AND (SELECT COUNT(*) FROM tokens k WHERE k.tenant_id = t.id AND k.minted_by IS NULL) < ? \
         RETURNING id",
        vec![
            token.id.into(),
            token.hash.into(),
            token.hint.into(),
            token.now.into(),
            subdomain.into(),
            MAX_ACTIVE_TOKENS.into(),
        ],
    );
    let inserted = if revoke_existing {
        let mine = format!("FROM tokens WHERE tenant_id = {TENANT_OF} AND minted_by IS NULL");
        let kept = retire(&mine, token.now, vec![subdomain.into()]);
        let revoke = Stmt::new(format!("DELETE {mine}"), vec![subdomain.into()]);
        let outs = db.batch(vec![kept, revoke, insert]).await?;
        outs.last().is_some_and(|o| !o.rows.is_empty())
    } else {
        !db.query(insert).await?.rows.is_empty()
    };
    if inserted {
        return Ok(Ok(()));
    }
    Ok(Err(match get_tenant(db, subdomain).await? {
        None => TokenRefusal::UnknownTenant,
        Some(_) => TokenRefusal::LimitReached,
    }))
}

/// The tenant's live tokens, oldest first; `None` for an unknown tenant.
pub async fn list_tokens<E: Executor>(db: &E, subdomain: &str) -> Result<Option<Vec<TokenInfo>>> {
    struct Row {
        id: Option<String>,
        hint: Option<String>,
        created_at: Option<i64>,
        last_used_at: Option<i64>,
    }
    from_row!(Row {
        id,
        hint,
        created_at,
        last_used_at
    });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT k.id, k.hint, k.created_at, k.last_used_at FROM tenants t \
             LEFT JOIN tokens k ON k.tenant_id = t.id AND k.minted_by IS NULL \
             WHERE t.subdomain = ? AND t.deleted_at IS NULL ORDER BY k.created_at, k.id",
            vec![subdomain.into()],
        ))
        .await?
        .decode()?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .filter_map(|r| {
                Some(TokenInfo {
                    id: r.id?,
                    hint: r.hint?,
                    created_at: r.created_at?,
                    last_used_at: r.last_used_at,
                })
            })
            .collect(),
    ))
}

/// Revoke (delete) one token of a tenant at `now`, keeping its hash as retired; `false` if the
/// tenant has no such token.
pub async fn revoke_token<E: Executor>(
    db: &E,
    subdomain: &str,
    id: &str,
    now: i64,
) -> Result<bool> {
    let it = format!("FROM tokens WHERE id = ? AND tenant_id = {TENANT_OF} AND minted_by IS NULL");
    let params = || vec![id.into(), subdomain.into()];
    let outs = db
        .batch(vec![
            retire(&it, now, params()),
            Stmt::new(format!("DELETE {it}"), params()),
        ])
        .await?;
    Ok(outs.last().is_some_and(|o| o.changes > 0))
}

/// The hashes of every live credential of tenant `subdomain` at `now` (its Secret Tokens,
/// unexpired access tokens and client secrets; none when it is unknown or deleted): what lets
/// the edge tell a valid credential from a stranger's without the gate or the token endpoint.
pub async fn live_token_hashes<E: Executor>(
    db: &E,
    subdomain: &str,
    now: i64,
) -> Result<Vec<String>> {
    struct Row {
        hash: String,
    }
    from_row!(Row { hash });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT k.hash FROM tenants t JOIN tokens k ON k.tenant_id = t.id \
             WHERE t.subdomain = ? AND t.deleted_at IS NULL AND coalesce(k.expires_at, ? + 1) > ? \
             UNION ALL SELECT s.hash FROM tenants t JOIN oauth_secrets s ON s.tenant_id = t.id \
             WHERE t.subdomain = ? AND t.deleted_at IS NULL AND s.expires_at > ?",
            vec![
                subdomain.into(),
                now.into(),
                now.into(),
                subdomain.into(),
                now.into(),
            ],
        ))
        .await?
        .decode()?;
    Ok(rows.into_iter().map(|r| r.hash).collect())
}

/// Record that a token was used, unless it was already recorded after `not_before` (so a burst
/// of requests makes one write, not one each).
pub async fn touch_token<E: Executor>(
    db: &E,
    tenant_id: &str,
    token_id: &str,
    now: i64,
    not_before: i64,
) -> Result<()> {
    db.query(Stmt::new(
        "UPDATE tokens SET last_used_at = ? WHERE tenant_id = ? AND id = ? \
         AND (last_used_at IS NULL OR last_used_at < ?)",
        vec![
            now.into(),
            tenant_id.into(),
            token_id.into(),
            not_before.into(),
        ],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::Sqlite;
    use pollster::block_on;

    fn tenant(db: &Sqlite, sub: &str) -> Tenant {
        block_on(create_tenant(
            db,
            NewTenant {
                id: &format!("ten_{sub}"),
                subdomain: sub,
                name: "Acme Corp",
                provisioning_enabled: true,
                now: 1000,
            },
        ))
        .expect("create tenant")
    }

    fn token(
        db: &Sqlite,
        sub: &str,
        id: &str,
        revoke: bool,
    ) -> std::result::Result<(), TokenRefusal> {
        block_on(create_token(
            db,
            sub,
            NewToken {
                id,
                hash: &format!("hash_{id}"),
                hint: "abcd",
                now: 2000,
            },
            revoke,
        ))
        .expect("create token")
    }

    #[test]
    fn tenant_crud_round_trips() {
        let db = Sqlite::migrated();
        let t = tenant(&db, "piedpiper.us");
        assert_eq!(t.subdomain, "piedpiper.us");
        assert!(t.provisioning_enabled);
        assert_eq!(
            block_on(get_tenant(&db, "piedpiper.us")).unwrap(),
            Some(t.clone())
        );

        let dup = block_on(create_tenant(
            &db,
            NewTenant {
                id: "ten_other",
                subdomain: "piedpiper.us",
                name: "x",
                provisioning_enabled: true,
                now: 1,
            },
        ));
        assert!(dup.unwrap_err().is_unique_on("subdomain"));

        token(&db, "piedpiper.us", "tok_1", false).unwrap();
        let updated = block_on(update_tenant(&db, "piedpiper.us", None, Some(false), 5000))
            .unwrap()
            .expect("known tenant");
        assert!(!updated.provisioning_enabled);
        assert_eq!(updated.name, "Acme Corp", "name is kept when not given");
        assert_eq!(updated.updated_at, 5000);
        assert_eq!(
            block_on(update_tenant(&db, "nope", Some("n"), None, 1)).unwrap(),
            None
        );

        assert_eq!(
            block_on(delete_tenant(&db, "piedpiper.us", 9)).unwrap(),
            Some(t.id.clone())
        );
        assert_eq!(block_on(get_tenant(&db, "piedpiper.us")).unwrap(), None);
        assert_eq!(block_on(list_tokens(&db, "piedpiper.us")).unwrap(), None);
        assert_eq!(
            db.count("SELECT count(*) FROM tenants WHERE deleted_at IS NULL"),
            0
        );
        // Its id, which its subdomain now is, finds nothing either.
        assert_eq!(block_on(get_tenant(&db, &t.id)).unwrap(), None);
        assert_eq!(block_on(list_tokens(&db, &t.id)).unwrap(), None);
        assert_eq!(
            block_on(delete_tenant(&db, "piedpiper.us", 10)).unwrap(),
            None
        );
        // The subdomain is free again, and the row goes with the purge's first round.
        assert_eq!(
            block_on(crate::store::upkeep::purge_round(&db, &t.id)).unwrap(),
            0
        );
        assert_eq!(db.count("SELECT COUNT(*) FROM tenants"), 0);
        tenant(&db, "piedpiper.us");
    }

    #[test]
    fn at_most_two_tokens_unless_revoking() {
        let db = Sqlite::migrated();
        tenant(&db, "acme");
        tenant(&db, "other");
        token(&db, "other", "tok_o", false).unwrap();
        assert_eq!(token(&db, "acme", "tok_1", false), Ok(()));
        assert_eq!(token(&db, "acme", "tok_2", false), Ok(()));
        assert_eq!(
            token(&db, "acme", "tok_3", false),
            Err(TokenRefusal::LimitReached)
        );
        assert_eq!(
            token(&db, "nope", "tok_x", false),
            Err(TokenRefusal::UnknownTenant)
        );
        assert_eq!(token(&db, "acme", "tok_4", true), Ok(()));
        let live = block_on(list_tokens(&db, "acme")).unwrap().unwrap();
        assert_eq!(
            live.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            vec!["tok_4"]
        );
        // The other tenant's token is untouched by acme's revokeExisting.
        assert_eq!(
            block_on(list_tokens(&db, "other")).unwrap().unwrap().len(),
            1
        );
        assert_eq!(block_on(list_tokens(&db, "nope")).unwrap(), None);
        assert_eq!(
            block_on(list_tokens(&db, "acme")).unwrap().unwrap()[0].last_used_at,
            None
        );
    }

    #[test]
    fn revoke_is_tenant_scoped() {
        let db = Sqlite::migrated();
        tenant(&db, "acme");
        tenant(&db, "other");
        token(&db, "acme", "tok_a", false).unwrap();
        assert!(!block_on(revoke_token(&db, "other", "tok_a", 0)).unwrap());
        assert!(block_on(revoke_token(&db, "acme", "tok_a", 0)).unwrap());
        assert!(!block_on(revoke_token(&db, "acme", "tok_a", 0)).unwrap());
    }

    #[test]
    fn a_token_s_use_is_recorded_once_per_window_and_only_by_its_organisation() {
        let db = Sqlite::migrated();
        tenant(&db, "acme");
        tenant(&db, "other");
        token(&db, "acme", "tok_a", false).unwrap();
        let g = block_on(get_tenant(&db, "acme")).unwrap().expect("acme");
        block_on(touch_token(&db, &g.id, "tok_a", 10_000, 0)).unwrap();
        // A second touch within the window writes nothing.
        block_on(touch_token(&db, &g.id, "tok_a", 20_000, 10_000 - 60_000)).unwrap();
        let live = block_on(list_tokens(&db, "acme")).unwrap().unwrap();
        assert_eq!(live[0].last_used_at, Some(10_000));
        // Another tenant's id cannot touch it.
        block_on(touch_token(&db, "ten_other", "tok_a", 90_000, 80_000)).unwrap();
        assert_eq!(
            block_on(list_tokens(&db, "acme")).unwrap().unwrap()[0].last_used_at,
            Some(10_000)
        );
    }
}
