//! SQL for a tenant's OAuth client (its id, client secrets, federated credential) and for the
//! access tokens the token endpoint issues.
//!
//! An access token is a row of `tokens` with an `expires_at` and a `minted_by` (the client
//! secret's id, or [`FEDERATION`]), so the gate of every SCIM batch (`super::gate`) checks it
//! as it checks a Secret Token, in the operation's own batch. Revoking a secret or changing the
//! federation deletes the tokens minted from it in the same batch: they stop at the next
//! statement. Every write here is conditional on the tenant being live in this shard and not
//! frozen by a move (a row written during a move's switch could miss its copy).

use crate::store::row::from_row;

use super::tenants::retire;
use super::{Executor, Param, Result, Stmt};

/// At most this many live client secrets per tenant: one in use and one being rotated in
/// (Microsoft's gallery asks for several active at once for rotation).
pub const MAX_ACTIVE_SECRETS: i64 = 2;

/// `minted_by` of an access token issued for a client assertion.
pub const FEDERATION: &str = "federation";

/// The tenant live here and not frozen at the request's time: binds the tenant id, then the
/// time.
const WRITABLE: &str = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = ? AND t.deleted_at IS NULL \
     AND coalesce(t.frozen_until, 0) <= ?)";

fn writable(tenant_id: &str, now: i64) -> Vec<Param> {
    vec![tenant_id.into(), now.into()]
}

/// The federated credential an assertion must match (what Entra shows for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub jwks_uri: String,
}

/// A tenant's OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub federation: Option<Federation>,
}

/// A client secret as listed (never its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub id: String,
    pub hint: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}
from_row!(SecretInfo {
    id,
    hint,
    created_at,
    expires_at,
    last_used_at
});

/// The tenant's client, if it has one yet.
pub async fn client<E: Executor>(db: &E, tenant_id: &str) -> Result<Option<Client>> {
    struct Row {
        client_id: String,
        issuer: Option<String>,
        subject: Option<String>,
        audience: Option<String>,
        jwks_uri: Option<String>,
    }
    from_row!(Row {
        client_id,
        issuer,
        subject,
        audience,
        jwks_uri
    });
    let row: Option<Row> = db
        .query(Stmt::new(
            "SELECT client_id, issuer, subject, audience, jwks_uri FROM oauth_clients \
             WHERE tenant_id = ?",
            vec![tenant_id.into()],
        ))
        .await?
        .first()?;
    Ok(row.map(|r| Client {
        client_id: r.client_id,
        federation: match (r.issuer, r.subject, r.audience, r.jwks_uri) {
            (Some(issuer), Some(subject), Some(audience), Some(jwks_uri)) => Some(Federation {
                issuer,
                subject,
                audience,
                jwks_uri,
            }),
            _ => None,
        },
    }))
}

/// The tenant's client secrets (expired ones too, until upkeep removes them), oldest first.
pub async fn secrets<E: Executor>(db: &E, tenant_id: &str) -> Result<Vec<SecretInfo>> {
    db.query(Stmt::new(
        "SELECT id, hint, created_at, expires_at, last_used_at FROM oauth_secrets \
         WHERE tenant_id = ? ORDER BY created_at, id",
        vec![tenant_id.into()],
    ))
    .await?
    .decode()
}

/// Give the tenant a client with id `client_id` unless it has one.
fn ensure_client(tenant_id: &str, client_id: &str, now: i64) -> Stmt {
    let mut params: Vec<Param> = vec![tenant_id.into(), client_id.into(), now.into(), now.into()];
    params.extend(writable(tenant_id, now));
    Stmt::new(
        format!(
            "INSERT OR IGNORE INTO oauth_clients (tenant_id, client_id, created_at, updated_at) \
             SELECT ?, ?, ?, ? WHERE {WRITABLE}"
        ),
        params,
    )
}

/// The tenant's state as a write sees it: whether it is frozen, and its client's id.
fn state(tenant_id: &str, now: i64) -> Stmt {
    Stmt::new(
        "SELECT coalesce(t.frozen_until, 0) > ? AS frozen, c.client_id \
         FROM tenants t LEFT JOIN oauth_clients c ON c.tenant_id = t.id \
         WHERE t.id = ? AND t.deleted_at IS NULL",
        vec![now.into(), tenant_id.into()],
    )
}

#[derive(Debug)]
struct State {
    frozen: i64,
    client_id: Option<String>,
}
from_row!(State { frozen, client_id });

/// How a write of the tenant's client went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wrote {
    /// Written; the client's id.
    Done(String),
    /// The tenant is not live in this shard.
    Gone,
    /// A move is switching the tenant to another shard: retry in a moment.
    Frozen,
    /// [`MAX_ACTIVE_SECRETS`] secrets are already live.
    Full,
}

/// What a write did, from the tenant's state before it and its client's id after it.
fn wrote(before: Option<State>, client_id: Option<String>, done: bool) -> Wrote {
    match (before, client_id) {
        (None, _) => Wrote::Gone,
        (Some(s), _) if s.frozen != 0 => Wrote::Frozen,
        (Some(_), Some(id)) if done => Wrote::Done(id),
        _ => Wrote::Full,
    }
}

/// A new client secret: its id, hash, hint and lifetime.
pub struct NewSecret<'a> {
    pub id: &'a str,
    pub hash: &'a str,
    pub hint: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Add a client secret (and the client, with id `client_id`, if the tenant has none), unless
/// [`MAX_ACTIVE_SECRETS`] unexpired ones are live: the count and the insert are one statement.
pub async fn create_secret<E: Executor>(
    db: &E,
    tenant_id: &str,
    client_id: &str,
    s: NewSecret<'_>,
) -> Result<Wrote> {
    let mut params: Vec<Param> = vec![
        s.id.into(),
        tenant_id.into(),
        s.hash.into(),
        s.hint.into(),
        s.now.into(),
        s.expires_at.into(),
        tenant_id.into(),
        s.now.into(),
        MAX_ACTIVE_SECRETS.into(),
    ];
    params.extend(writable(tenant_id, s.now));
    let insert = Stmt::new(
        format!(
            "INSERT INTO oauth_secrets (id, tenant_id, hash, hint, created_at, expires_at) \
             SELECT ?, ?, ?, ?, ?, ? WHERE (SELECT count(*) FROM oauth_secrets \
             WHERE tenant_id = ? AND expires_at > ?) < ? AND {WRITABLE} RETURNING id"
        ),
        params,
    );
    let outs = db
        .batch(vec![
            state(tenant_id, s.now),
            ensure_client(tenant_id, client_id, s.now),
            insert,
            state(tenant_id, s.now),
        ])
        .await?;
    let mut outs = outs.into_iter();
    let before: Option<State> = outs.next().unwrap_or_default().first()?;
    let done = !outs.nth(1).unwrap_or_default().rows.is_empty();
    let after: Option<State> = outs.next().unwrap_or_default().first()?;
    Ok(wrote(before, after.and_then(|a| a.client_id), done))
}

/// Revoke a client secret and every access token issued for it at `now`, keeping their
/// hashes as retired; `false` if the tenant has no such secret.
pub async fn revoke_secret<E: Executor>(
    db: &E,
    tenant_id: &str,
    id: &str,
    now: i64,
) -> Result<bool> {
    let tokens = "FROM tokens WHERE tenant_id = ? AND minted_by = ?";
    let secret = "FROM oauth_secrets WHERE tenant_id = ? AND id = ?";
    let params = || vec![tenant_id.into(), id.into()];
    let outs = db
        .batch(vec![
            retire(tokens, now, params()),
            retire(secret, now, params()),
            Stmt::new(format!("DELETE {tokens}"), params()),
            Stmt::new(format!("DELETE {secret}"), params()),
        ])
        .await?;
    Ok(outs.last().is_some_and(|o| o.changes > 0))
}

/// Set the tenant's federated credential (`None`: remove it), creating the client with id
/// `client_id` if it has none. Every access token issued for an assertion of the previous
/// credential is deleted in the same batch.
pub async fn set_federation<E: Executor>(
    db: &E,
    tenant_id: &str,
    client_id: &str,
    federation: Option<&Federation>,
    now: i64,
) -> Result<Wrote> {
    let field = |f: fn(&Federation) -> &str| -> Param { federation.map(f).into() };
    let mut params = vec![
        field(|f| &f.issuer),
        field(|f| &f.subject),
        field(|f| &f.audience),
        field(|f| &f.jwks_uri),
        now.into(),
        tenant_id.into(),
    ];
    params.extend(writable(tenant_id, now));
    let mut revoke = vec![tenant_id.into(), FEDERATION.into()];
    revoke.extend(writable(tenant_id, now));
    let mut stmts = vec![state(tenant_id, now)];
    if federation.is_some() {
        stmts.push(ensure_client(tenant_id, client_id, now));
    }
    stmts.extend([
        Stmt::new(
            format!(
                "UPDATE oauth_clients SET issuer = ?, subject = ?, audience = ?, jwks_uri = ?, \
                 updated_at = ? WHERE tenant_id = ? AND {WRITABLE} RETURNING client_id"
            ),
            params,
        ),
        Stmt::new(
            format!("DELETE FROM tokens WHERE tenant_id = ? AND minted_by = ? AND {WRITABLE}"),
            revoke,
        ),
    ]);
    let outs = db.batch(stmts).await?;
    struct Updated {
        client_id: String,
    }
    from_row!(Updated { client_id });
    let updated = outs.len().saturating_sub(2);
    let mut outs = outs.into_iter();
    let before: Option<State> = outs.next().unwrap_or_default().first()?;
    let after: Option<Updated> = outs
        .nth(updated.saturating_sub(1))
        .unwrap_or_default()
        .first()?;
    let done = after.is_some();
    Ok(match wrote(before, after.map(|u| u.client_id), done) {
        // Removing a federation the tenant never had: nothing to do, nothing wrong.
        Wrote::Full if federation.is_none() => Wrote::Done(String::new()),
        w => w,
    })
}

/// What an access token is issued for.
pub enum Proof<'a> {
    /// A client secret of this hash.
    Secret { hash: &'a str },
    /// An assertion (its id, kept until `expires_at`) matching this federated credential.
    Assertion {
        id: &'a str,
        expires_at: i64,
        federation: &'a Federation,
    },
}

/// An access token to issue.
pub struct Mint<'a> {
    pub tenant_id: &'a str,
    /// The client id presented (an assertion may omit it).
    pub client_id: Option<&'a str>,
    pub proof: Proof<'a>,
    pub token_id: &'a str,
    pub token_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// How an issue went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Minted {
    /// Issued; for a secret, its id, hint and stored hash (the caller compares it with the
    /// presented one in constant time).
    Issued {
        secret: Option<(String, String, String)>,
    },
    /// Not issued: the client id, the secret, its expiry or the assertion (replayed, or its
    /// credential changed) did not match. The reason is for the log only.
    Refused(&'static str),
    Gone,
    Frozen,
}

/// The presented secret's hash (none for an assertion).
fn presented<'a>(m: &Mint<'a>) -> &'a str {
    match m.proof {
        Proof::Secret { hash } => hash,
        Proof::Assertion { .. } => "",
    }
}

/// The conditions of an issue, as `FROM … WHERE …` over `t` and `c` (and `s`, the secret),
/// with their parameters: the tenant live and thawed, the client id, the secret unexpired or
/// the federated credential unchanged.
fn issue_conditions(m: &Mint<'_>) -> (String, Vec<Param>) {
    let now = m.now;
    let mut from = String::from("FROM tenants t JOIN oauth_clients c ON c.tenant_id = t.id");
    let mut params: Vec<Param> = Vec::new();
    if let Proof::Secret { hash } = m.proof {
        from.push_str(
            " JOIN oauth_secrets s ON s.tenant_id = t.id AND s.hash = ? AND s.expires_at > ?",
        );
        params.extend([hash.into(), now.into()]);
    }
    from.push_str(
        " WHERE t.id = ? AND t.deleted_at IS NULL AND coalesce(t.frozen_until, 0) <= ? \
         AND (? IS NULL OR c.client_id = ?)",
    );
    params.extend([
        m.tenant_id.into(),
        now.into(),
        m.client_id.into(),
        m.client_id.into(),
    ]);
    if let Proof::Assertion { federation: f, .. } = &m.proof {
        from.push_str(" AND c.issuer = ? AND c.subject = ? AND c.audience = ? AND c.jwks_uri = ?");
        params.extend([
            f.issuer.as_str().into(),
            f.subject.as_str().into(),
            f.audience.as_str().into(),
            f.jwks_uri.as_str().into(),
        ]);
    }
    (from, params)
}

/// The statements of an issue, and the index of the token's insert among them.
fn mint_stmts(m: &Mint<'_>) -> (Vec<Stmt>, usize) {
    let now = m.now;
    let look = Stmt::new(
        "SELECT coalesce(t.frozen_until, 0) > ? AS frozen, c.client_id, s.id AS secret_id, \
         s.hint AS secret_hint, s.hash AS secret_hash, s.expires_at AS secret_expires_at \
         FROM tenants t LEFT JOIN oauth_clients c ON c.tenant_id = t.id \
         LEFT JOIN oauth_secrets s ON s.tenant_id = t.id AND s.hash = ? \
         WHERE t.id = ? AND t.deleted_at IS NULL",
        vec![now.into(), presented(m).into(), m.tenant_id.into()],
    );
    let (mut from, mut params) = issue_conditions(m);
    let mut stmts = vec![look];
    let minted_by = match &m.proof {
        Proof::Secret { .. } => "s.id".to_string(),
        Proof::Assertion { id, expires_at, .. } => {
            // Remembered when everything else matches; a replay inserts nothing, and the
            // token's insert then finds no row of this token's.
            let mut remember: Vec<Param> =
                vec![(*id).into(), (*expires_at).into(), m.token_id.into()];
            remember.extend(params.iter().cloned());
            stmts.push(Stmt::new(
                format!(
                    "INSERT OR IGNORE INTO oauth_assertions (tenant_id, jti, expires_at, token_id) \
                     SELECT t.id, ?, ?, ? {from}"
                ),
                remember,
            ));
            from.push_str(
                " AND EXISTS (SELECT 1 FROM oauth_assertions a WHERE a.tenant_id = t.id \
                 AND a.jti = ? AND a.token_id = ?)",
            );
            params.extend([(*id).into(), m.token_id.into()]);
            format!("'{FEDERATION}'")
        }
    };
    let mut insert: Vec<Param> = vec![
        m.token_id.into(),
        m.token_hash.into(),
        now.into(),
        m.expires_at.into(),
    ];
    insert.extend(params);
    stmts.push(Stmt::new(
        format!(
            "INSERT INTO tokens (id, tenant_id, hash, hint, created_at, expires_at, minted_by) \
             SELECT ?, t.id, ?, '', ?, ?, {minted_by} {from} RETURNING id"
        ),
        insert,
    ));
    let issued_at = stmts.len().saturating_sub(1);
    stmts.push(Stmt::new(
        "UPDATE oauth_secrets SET last_used_at = ? WHERE tenant_id = ? AND hash = ? \
         AND EXISTS (SELECT 1 FROM tokens WHERE tenant_id = ? AND id = ?)",
        vec![
            now.into(),
            m.tenant_id.into(),
            presented(m).into(),
            m.tenant_id.into(),
            m.token_id.into(),
        ],
    ));
    for table in ["tokens", "oauth_assertions"] {
        let mut p: Vec<Param> = vec![m.tenant_id.into(), now.into()];
        p.extend(writable(m.tenant_id, now));
        stmts.push(Stmt::new(
            format!("DELETE FROM {table} WHERE tenant_id = ? AND expires_at <= ? AND {WRITABLE}"),
            p,
        ));
    }
    (stmts, issued_at)
}

/// The tenant and the presented secret as an issue's batch found them.
struct Look {
    frozen: i64,
    client_id: Option<String>,
    secret_id: Option<String>,
    secret_hint: Option<String>,
    secret_hash: Option<String>,
    secret_expires_at: Option<i64>,
}
from_row!(Look {
    frozen,
    client_id,
    secret_id,
    secret_hint,
    secret_hash,
    secret_expires_at
});

/// Issue an access token in one batch: the tenant's state and the presented secret as the
/// batch found them, the assertion's id remembered (a replay inserts nothing, and so issues
/// nothing), the token inserted only when everything matches, the secret's use recorded, and
/// the tenant's expired access tokens and assertions removed.
pub async fn mint<E: Executor>(db: &E, m: Mint<'_>) -> Result<Minted> {
    let (stmts, issued_at) = mint_stmts(&m);
    let outs = db.batch(stmts).await?;
    let issued = outs.get(issued_at).is_some_and(|o| !o.rows.is_empty());
    let look: Option<Look> = outs.into_iter().next().unwrap_or_default().first()?;
    Ok(match look {
        None => Minted::Gone,
        Some(l) if l.frozen != 0 => Minted::Frozen,
        Some(l) if issued => Minted::Issued {
            secret: match (l.secret_id, l.secret_hint, l.secret_hash) {
                (Some(id), Some(hint), Some(hash)) => Some((id, hint, hash)),
                _ => None,
            },
        },
        Some(l) => Minted::Refused(refusal(&m, &l)),
    })
}

/// Why an issue that found its tenant issued nothing.
fn refusal(m: &Mint<'_>, l: &Look) -> &'static str {
    if l.client_id.is_none() {
        return "the organisation has no OAuth client yet";
    }
    if m.client_id
        .is_some_and(|c| l.client_id.as_deref() != Some(c))
    {
        return "unknown client id";
    }
    match m.proof {
        Proof::Secret { .. } if l.secret_id.is_none() => "unknown or revoked client secret",
        Proof::Secret { .. } if l.secret_expires_at.is_some_and(|e| e <= m.now) => {
            "the client secret has expired"
        }
        Proof::Secret { .. } => "the client secret was not accepted",
        Proof::Assertion { .. } => {
            "the assertion was already used, or the federation changed meanwhile"
        }
    }
}
