//! OAuth 2.0 client credentials for a tenant: its client (id, secrets, federated credential)
//! as the admin API and the console manage it, and the token endpoint's grant.
//!
//! Microsoft's gallery requirements ("Submit a request to publish your application in
//! Microsoft Entra application gallery"): a client id and secret per customer, secrets that
//! expire after one to three years with several active for rotation, access tokens valid 60
//! minutes to 6 hours. The access token is a bearer credential the SCIM gate checks like a
//! Secret Token, in the operation's own batch (`store::oauth`), so a SCIM read stays one D1
//! call. Workload identity federation ("Workload Identity Federation: A New Authentication
//! Method for SCIM Provisioning") replaces the secret by an assertion Entra signs, checked
//! against the customer's Entra key set ([`KeySet`], WebCrypto at the edge).
//!
//! Every refusal of the grant says only `invalid_client` (RFC 6749 §5.2), whatever was wrong;
//! why is kept for the provisioning log ([`Refused::why`]).

use crate::store::oauth::{self as store, Minted, Proof, Wrote};
use crate::store::Executor;
use scim_core::oauth::jwt::{self, Assertion, Expected};
use scim_core::oauth::{Client as Credential, OAuthError};
use scim_core::scim::error::{Error, Result, ScimType};
use scim_core::tenancy::token;
use scim_core::time::DAY_MS;

use super::auth::{moving, MOVING_RETRY_SECONDS};
use super::Runtime;

pub use crate::store::oauth::{Client, Federation, SecretInfo, MAX_ACTIVE_SECRETS};

/// Access-token lifetimes the gallery accepts (`OAUTH_TOKEN_MINUTES`): never under an hour,
/// at most six.
pub const TOKEN_MINUTES: std::ops::RangeInclusive<i64> = 60..=360;

/// The lifetime when `OAUTH_TOKEN_MINUTES` is not set.
pub const DEFAULT_TOKEN_MINUTES: i64 = 60;

/// Client-secret lifetimes accepted (`expiresInDays`), and the default: two years.
pub const SECRET_DAYS: std::ops::RangeInclusive<i64> = 365..=1095;
pub const DEFAULT_SECRET_DAYS: i64 = 730;

/// A secret expiring within this many days is flagged in the tenant's summary.
pub const EXPIRING_DAYS: i64 = 30;

/// The lifetime of the access tokens issued, in milliseconds, from `OAUTH_TOKEN_MINUTES`
/// (`None`: unset) and, for tests only, a lifetime in seconds that development settings may
/// give (`dev_seconds`, honoured as it is).
pub fn token_lifetime_ms(minutes: Option<&str>, dev_seconds: Option<i64>) -> Result<i64> {
    if let Some(s) = dev_seconds.filter(|s| *s > 0) {
        return Ok(s.saturating_mul(1000));
    }
    let minutes = match minutes.map(str::trim).filter(|m| !m.is_empty()) {
        None => DEFAULT_TOKEN_MINUTES,
        Some(m) => m
            .parse::<i64>()
            .ok()
            .filter(|m| TOKEN_MINUTES.contains(m))
            .ok_or_else(|| {
                Error::internal(format!(
                    "OAUTH_TOKEN_MINUTES must be a whole number from {} to {} (Entra's gallery \
                     accepts access tokens valid one to six hours); it is '{m}'",
                    TOKEN_MINUTES.start(),
                    TOKEN_MINUTES.end()
                ))
            })?,
    };
    Ok(minutes.saturating_mul(60_000))
}

/// A tenant's OAuth set-up as the admin API shows it.
pub struct Status {
    pub client: Option<Client>,
    pub secrets: Vec<SecretInfo>,
}

pub async fn status<E: Executor>(db: &E, tenant_id: &str) -> Result<Status> {
    Ok(Status {
        client: store::client(db, tenant_id).await?,
        secrets: store::secrets(db, tenant_id).await?,
    })
}

/// A new client secret, shown once.
pub struct NewSecret {
    pub id: String,
    pub client_id: String,
    pub secret: String,
    pub expires_at: i64,
}

fn written(w: Wrote) -> Result<String> {
    match w {
        Wrote::Done(client_id) => Ok(client_id),
        Wrote::Gone => Err(Error::not_found(
            "the organisation is not served here any more",
        )),
        Wrote::Frozen => Err(moving()),
        Wrote::Full => Err(Error::state_conflict(format!(
            "the organisation already has {MAX_ACTIVE_SECRETS} active client secrets; revoke one first"
        ))),
    }
}

/// "Generate new" client secret, expiring after `days` (default two years), at most
/// [`MAX_ACTIVE_SECRETS`] active.
pub async fn create_secret<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    tenant_id: &str,
    days: Option<i64>,
) -> Result<NewSecret> {
    let days = days.unwrap_or(DEFAULT_SECRET_DAYS);
    if !SECRET_DAYS.contains(&days) {
        return Err(Error::bad_request(
            ScimType::InvalidValue,
            format!(
                "expiresInDays must be from {} to {} (one to three years)",
                SECRET_DAYS.start(),
                SECRET_DAYS.end()
            ),
        ));
    }
    let secret = super::new_secret("scim_cs_")?;
    let id = rt.random_id("sec_")?;
    let now = rt.now();
    let expires_at = now.saturating_add(days.saturating_mul(DAY_MS));
    let client_id = written(
        store::create_secret(
            db,
            tenant_id,
            &rt.random_id("cli_")?,
            store::NewSecret {
                id: &id,
                hash: &token::hash(&secret),
                hint: &token::hint(&secret),
                now,
                expires_at,
            },
        )
        .await?,
    )?;
    Ok(NewSecret {
        id,
        client_id,
        secret,
        expires_at,
    })
}

/// Revoke a client secret at `now`: it and every access token issued for it stop at once.
pub async fn revoke_secret<E: Executor>(db: &E, tenant_id: &str, id: &str, now: i64) -> Result<()> {
    if store::revoke_secret(db, tenant_id, id, now).await? {
        return Ok(());
    }
    Err(Error::not_found(format!(
        "the organisation has no client secret '{}'",
        scim_core::scim::error::quote(id)
    )))
}

/// Whether `uri` may be fetched as a key set: `https`, or with `allow_loopback` (the
/// development setting) `http` on this machine.
pub fn jwks_uri_allowed(uri: &str, allow_loopback: bool) -> bool {
    let host_of = |rest: &str| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        (!authority.is_empty() && !authority.contains('@')).then(|| {
            authority
                .rsplit_once(':')
                .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                .map_or(authority, |(h, _)| h)
                .to_ascii_lowercase()
        })
    };
    if uri.len() > 2000 || uri.contains(char::is_whitespace) {
        return false;
    }
    if let Some(rest) = uri.strip_prefix("https://") {
        return host_of(rest).is_some_and(|h| !h.is_empty());
    }
    match uri.strip_prefix("http://") {
        Some(rest) if allow_loopback => {
            host_of(rest).is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]")
        }
        _ => false,
    }
}

/// Set the tenant's federated credential (what Entra shows: Issuer, Subject, Audience, and
/// the key set's URL); the tenant's client is made if it has none. Access tokens issued for
/// the previous credential stop at once.
pub async fn set_federation<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    tenant_id: &str,
    f: &Federation,
    allow_loopback: bool,
) -> Result<String> {
    for (name, value) in [
        ("issuer", &f.issuer),
        ("subject", &f.subject),
        ("audience", &f.audience),
    ] {
        if value.trim().is_empty() || value.len() > 1000 {
            return Err(Error::bad_request(
                ScimType::InvalidValue,
                format!("{name} is required (at most 1,000 characters), as Entra shows it"),
            ));
        }
    }
    if !jwks_uri_allowed(&f.jwks_uri, allow_loopback) {
        return Err(Error::bad_request(
            ScimType::InvalidValue,
            "jwksUri must be an https URL, such as \
             https://login.microsoftonline.com/<tenant id>/discovery/v2.0/keys",
        ));
    }
    let client = rt.random_id("cli_")?;
    written(store::set_federation(db, tenant_id, &client, Some(f), rt.now()).await?)
}

/// Remove the tenant's federated credential; its access tokens stop at once.
pub async fn clear_federation<E: Executor, R: Runtime>(
    db: &E,
    rt: &R,
    tenant_id: &str,
) -> Result<()> {
    written(store::set_federation(db, tenant_id, "", None, rt.now()).await?).map(|_| ())
}

/// The key set behind a federated credential: whether a key of the set at a URL verifies an
/// assertion's signature. The edge fetches and caches the set and verifies with WebCrypto.
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait KeySet {
    /// `Ok(None)`: verified; `Ok(Some(why))`: not (no key of that id, even after a refetch,
    /// or a signature that does not verify).
    async fn verify(&self, jwks_uri: &str, assertion: &Assertion) -> Result<Option<&'static str>>;
}

/// An access token issued.
pub struct Granted {
    pub access_token: String,
    pub expires_in_seconds: i64,
    /// What it was issued for, in words, for the log ("client secret …abcd").
    pub via: String,
    /// The federated credential an assertion matched.
    pub federation: Option<Federation>,
}

/// A grant refused: the answer, and why, for the log only.
pub struct Refused {
    pub error: OAuthError,
    pub why: &'static str,
    /// The tenant is not in this shard (it moved): the edge may look again.
    pub gone: bool,
}

fn refuse(basic: bool, why: &'static str) -> Refused {
    Refused {
        error: OAuthError::invalid_client(basic),
        why,
        gone: false,
    }
}

fn failed(e: Error) -> Refused {
    let status = if e.status == 503 { 503 } else { 500 };
    Refused {
        error: OAuthError::unavailable(
            status,
            e.retry_after.unwrap_or(MOVING_RETRY_SECONDS),
            "the token endpoint could not answer; retry in a moment",
        ),
        why: "the token endpoint failed",
        gone: false,
    }
}

/// A client assertion read, its claims checked against federated credential `f` at `now`,
/// and its signature against the credential's key set (RFC 7523 §3), with no D1 call: why
/// not, if not. (The edge also uses it, from a credential it remembers, to let a valid
/// assertion through while a refusal budget is spent.)
pub async fn assertion_valid<K: KeySet>(
    keys: &K,
    f: &Federation,
    jwt: &str,
    now: i64,
) -> std::result::Result<Assertion, Refused> {
    // An assertion never comes with Basic: its refusals carry no `WWW-Authenticate`.
    let assertion = jwt::decode(jwt).map_err(|why| refuse(false, why))?;
    let expected = Expected {
        issuer: &f.issuer,
        subject: &f.subject,
        audience: &f.audience,
    };
    jwt::check(&assertion.claims, expected, now).map_err(|why| refuse(false, why))?;
    if let Some(why) = keys.verify(&f.jwks_uri, &assertion).await.map_err(failed)? {
        return Err(refuse(false, why));
    }
    Ok(assertion)
}

/// A client assertion for tenant `tenant_id`, checked against the tenant's federated
/// credential (read first: one D1 call): the assertion and the credential it matched.
async fn federated<E: Executor, K: KeySet>(
    db: &E,
    keys: &K,
    tenant_id: &str,
    jwt: &str,
    now: i64,
) -> std::result::Result<(Assertion, Federation), Refused> {
    let client = store::client(db, tenant_id)
        .await
        .map_err(|e| failed(e.into()))?;
    let Some(f) = client.and_then(|c| c.federation) else {
        return Err(refuse(
            false,
            "the organisation has no federated credential",
        ));
    };
    Ok((assertion_valid(keys, &f, jwt, now).await?, f))
}

/// The client credentials grant (RFC 6749 §4.4) for tenant `tenant_id`: the credential
/// checked, and an access token valid `lifetime_ms` issued, in one D1 call for a secret and
/// two for an assertion (its credential is read first, for the key set's URL).
pub async fn grant<E: Executor, R: Runtime, K: KeySet>(
    db: &E,
    rt: &R,
    keys: &K,
    tenant_id: &str,
    credential: &Credential,
    lifetime_ms: i64,
) -> std::result::Result<Granted, Refused> {
    let basic = credential.basic();
    let access = token::secret("scim_at_").map_err(|e| failed(Error::internal(e.0)))?;
    let token_hash = token::hash(&access);
    let token_id = rt.random_id("tok_").map_err(failed)?;
    let now = rt.now();
    let mint = |client_id, proof| store::Mint {
        tenant_id,
        client_id,
        proof,
        token_id: &token_id,
        token_hash: &token_hash,
        now,
        expires_at: now.saturating_add(lifetime_ms),
    };
    let mut federation = None;
    let (minted, presented, via) = match credential {
        Credential::Secret { id, secret, .. } => {
            let hash = token::hash(secret);
            let m = store::mint(db, mint(Some(id.as_str()), Proof::Secret { hash: &hash }));
            (m.await, Some(hash), String::new())
        }
        Credential::Assertion { id, jwt } => {
            let (assertion, f) = federated(db, keys, tenant_id, jwt, now).await?;
            let proof = Proof::Assertion {
                id: &assertion.claims.id,
                expires_at: assertion.claims.exp.saturating_add(jwt::SKEW_MS),
                federation: &f,
            };
            let via = format!("a federated assertion of subject '{}'", f.subject);
            let minted = store::mint(db, mint(id.as_deref(), proof)).await;
            federation = Some(f.clone());
            (minted, None, via)
        }
    };
    let via = match minted.map_err(|e| failed(e.into()))? {
        Minted::Issued { secret } => match (secret, presented) {
            // The statement matched the hash in SQL; compare it again in constant time.
            (Some((_, hint, stored)), Some(hash)) if token::hashes_equal(&stored, &hash) => {
                format!("client secret …{hint}")
            }
            (None, None) => via,
            _ => return Err(refuse(basic, "the client secret was not accepted")),
        },
        Minted::Refused(why) => return Err(refuse(basic, why)),
        Minted::Frozen => return Err(failed(moving())),
        Minted::Gone => {
            return Err(Refused {
                gone: true,
                ..refuse(basic, "the organisation is not in this database")
            })
        }
    };
    Ok(Granted {
        access_token: access,
        expires_in_seconds: lifetime_ms / 1000,
        via,
        federation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_lifetime_is_one_to_six_hours() {
        assert_eq!(token_lifetime_ms(None, None).ok(), Some(3_600_000));
        assert_eq!(token_lifetime_ms(Some(" "), None).ok(), Some(3_600_000));
        assert_eq!(token_lifetime_ms(Some("360"), None).ok(), Some(21_600_000));
        for bad in ["59", "361", "0", "x", "-60"] {
            assert!(token_lifetime_ms(Some(bad), None).is_err(), "{bad}");
        }
        assert_eq!(token_lifetime_ms(Some("60"), Some(3)).ok(), Some(3_000));
    }

    #[test]
    fn a_key_set_is_fetched_over_https_only_but_loopback_in_development() {
        assert!(jwks_uri_allowed(
            "https://login.microsoftonline.com/t/discovery/v2.0/keys",
            false
        ));
        for bad in [
            "http://login.microsoftonline.com/keys",
            "https://",
            "https://user@host/keys",
            "ftp://x",
            "https://a b",
            "http://127.0.0.1:9/keys",
        ] {
            assert!(!jwks_uri_allowed(bad, false), "{bad}");
        }
        assert!(jwks_uri_allowed("http://127.0.0.1:9/keys", true));
        assert!(jwks_uri_allowed("http://localhost/keys", true));
        assert!(!jwks_uri_allowed("http://10.0.0.1/keys", true));
    }
}

#[cfg(test)]
mod grant_tests {
    use super::*;
    use crate::service::testing::TestRuntime;
    use crate::store::fixture::{two_tenants, T};
    use crate::store::gate::Gated;
    use crate::store::sqlite::Sqlite;
    use crate::store::tenants::{delete_tenant, update_tenant};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use pollster::block_on;
    use serde_json::json;
    use std::cell::Cell;

    /// A key set whose every signature verifies unless told otherwise.
    #[derive(Default)]
    struct Keys {
        refuse: Cell<bool>,
        asked: Cell<u32>,
    }

    impl KeySet for Keys {
        async fn verify(&self, _: &str, _: &Assertion) -> Result<Option<&'static str>> {
            self.asked.set(self.asked.get() + 1);
            Ok(self.refuse.get().then_some("no key of the set verifies it"))
        }
    }

    const HOUR: i64 = 3_600_000;

    fn secret(id: &str, secret: &str) -> Credential {
        Credential::Secret {
            id: id.into(),
            secret: secret.into(),
            basic: true,
        }
    }

    fn grant_at(
        db: &Sqlite,
        rt: &TestRuntime,
        keys: &Keys,
        tenant: &str,
        c: &Credential,
    ) -> std::result::Result<Granted, &'static str> {
        block_on(grant(db, rt, keys, tenant, c, HOUR)).map_err(|r| {
            assert_eq!(r.error.code.as_str(), "invalid_client", "{}", r.why);
            assert_eq!(r.error.basic, c.basic());
            r.why
        })
    }

    /// Whether `access` opens tenant `tenant`'s gate at `now` (a read).
    fn opens(db: &Sqlite, tenant: &str, access: &str, now: i64) -> bool {
        let gated = Gated::new(db, tenant, &token::hash(access), now);
        block_on(gated.open()).is_ok()
    }

    #[test]
    fn a_client_secret_buys_an_access_token_that_the_gate_accepts_until_it_ends() {
        let db = two_tenants();
        let rt = TestRuntime::at(1_000);
        let keys = Keys::default();
        let s1 = block_on(create_secret(&db, &rt, T, None)).expect("secret");
        assert_eq!(s1.expires_at, 1_000 + 730 * DAY_MS);
        let s2 = block_on(create_secret(&db, &rt, T, Some(365))).expect("second");
        assert_eq!(s1.client_id, s2.client_id, "one client per tenant");
        let third = block_on(create_secret(&db, &rt, T, None)).map(|_| ());
        assert_eq!(third.map_err(|e| e.status), Err(409));
        for bad in [364, 1096] {
            let e = block_on(create_secret(&db, &rt, T, Some(bad))).map(|_| ());
            assert_eq!(e.map_err(|e| e.status), Err(400));
        }

        let g = grant_at(&db, &rt, &keys, T, &secret(&s1.client_id, &s1.secret)).expect("granted");
        assert_eq!(g.expires_in_seconds, 3600);
        assert!(g.via.starts_with("client secret …"));
        assert!(opens(&db, T, &g.access_token, 1_000 + HOUR - 1));
        assert!(!opens(&db, T, &g.access_token, 1_000 + HOUR), "expired");
        assert!(
            !opens(&db, "ten_b", &g.access_token, 1_000),
            "another tenant's"
        );
        let listed = block_on(status(&db, T)).expect("status");
        assert_eq!(listed.secrets.len(), 2);
        assert_eq!(listed.secrets[0].last_used_at, Some(1_000));
        // Access tokens are no Secret Tokens: the token list does not show them.
        let tokens = block_on(crate::store::tenants::list_tokens(&db, "a")).expect("list");
        assert_eq!(tokens.map(|t| t.len()), Some(0));

        // Wrong id, wrong secret, another tenant's client: refused alike.
        assert!(grant_at(&db, &rt, &keys, T, &secret("cli_x", &s1.secret)).is_err());
        assert!(grant_at(&db, &rt, &keys, T, &secret(&s1.client_id, "scim_cs_nope")).is_err());
        assert!(grant_at(&db, &rt, &keys, "ten_b", &secret(&s1.client_id, &s1.secret)).is_err());

        // Revoking the secret stops its tokens at once; the other secret's live on.
        let g2 = grant_at(&db, &rt, &keys, T, &secret(&s2.client_id, &s2.secret)).expect("g2");
        block_on(revoke_secret(&db, T, &s1.id, 0)).expect("revoke");
        assert!(!opens(&db, T, &g.access_token, 1_000));
        assert!(opens(&db, T, &g2.access_token, 1_000));
        assert!(grant_at(&db, &rt, &keys, T, &secret(&s1.client_id, &s1.secret)).is_err());
        assert_eq!(
            block_on(revoke_secret(&db, T, &s1.id, 0)).map_err(|e| e.status),
            Err(404)
        );

        // An expired secret buys nothing.
        rt.now.set(1_000 + 365 * DAY_MS);
        let why = grant_at(&db, &rt, &keys, T, &secret(&s2.client_id, &s2.secret));
        assert_eq!(why.err(), Some("the client secret has expired"));

        // Disabling provisioning shuts the gate; deleting the tenant refuses the grant too.
        rt.now.set(2_000);
        let s3 = block_on(create_secret(&db, &rt, T, None)).expect("s3");
        let g3 = grant_at(&db, &rt, &keys, T, &secret(&s3.client_id, &s3.secret)).expect("g3");
        block_on(update_tenant(&db, "a", None, Some(false), 3)).expect("disable");
        assert!(!opens(&db, T, &g3.access_token, 2_000));
        block_on(update_tenant(&db, "a", None, Some(true), 4)).expect("enable");
        assert!(opens(&db, T, &g3.access_token, 2_000));
        block_on(delete_tenant(&db, "a", 5)).expect("delete");
        assert!(!opens(&db, T, &g3.access_token, 2_000));
        let gone = block_on(grant(
            &db,
            &rt,
            &keys,
            T,
            &secret(&s3.client_id, &s3.secret),
            HOUR,
        ));
        assert!(gone.is_err_and(|r| r.gone));
    }

    #[test]
    fn upkeep_removes_expired_access_tokens_and_secrets_but_no_secret_token() {
        let db = two_tenants();
        let rt = TestRuntime::at(1_000);
        let keys = Keys::default();
        block_on(crate::service::tenants::create_token(&db, &rt, "a", false)).expect("token");
        let s = block_on(create_secret(&db, &rt, T, Some(365))).expect("secret");
        grant_at(&db, &rt, &keys, T, &secret(&s.client_id, &s.secret)).expect("granted");
        let count = |table: &str| db.count(&format!("SELECT count(*) FROM {table}"));
        assert_eq!((count("tokens"), count("oauth_secrets")), (2, 1));
        let lapsed = |now| block_on(crate::store::upkeep::expire_lapsed(&db, now)).expect("upkeep");
        assert_eq!(lapsed(1_000 + HOUR - 1), 0, "nothing has expired yet");
        assert_eq!(lapsed(1_000 + HOUR), 1, "the access token");
        assert_eq!(lapsed(1_000 + 365 * DAY_MS), 1, "the secret");
        assert_eq!(
            (count("tokens"), count("oauth_secrets")),
            (1, 0),
            "the Secret Token stays"
        );
        // The summary flags a secret 30 days before it expires.
        rt.now.set(2_000);
        let s2 = block_on(create_secret(&db, &rt, T, Some(365))).expect("secret");
        let soon = 2_000 + (365 - EXPIRING_DAYS) * DAY_MS;
        let flagged = |now| {
            let v = block_on(crate::service::host_app::summary(&db, "a", now)).expect("summary");
            v["clientSecretsExpiring"].as_array().map_or(0, Vec::len)
        };
        assert_eq!(flagged(soon - 1), 0);
        assert_eq!(flagged(soon + 1), 1);
        let _ = s2;
    }

    fn assertion(claims: serde_json::Value) -> String {
        let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            part(json!({"alg": "RS256", "kid": "k1"})),
            part(claims)
        )
    }

    #[test]
    fn a_federated_assertion_is_accepted_once_and_only_as_configured() {
        let db = two_tenants();
        let rt = TestRuntime::at(1_000_000);
        let keys = Keys::default();
        let f = Federation {
            issuer: "https://login.microsoftonline.com/t/v2.0".into(),
            subject: "sub-1".into(),
            audience: "api://scim".into(),
            jwks_uri: "https://login.microsoftonline.com/t/discovery/v2.0/keys".into(),
        };
        let claims = |jti: &str| json!({"iss": f.issuer, "sub": f.subject, "aud": f.audience, "exp": 2_000, "nbf": 900, "uti": jti});
        let by = |jwt: String| Credential::Assertion { id: None, jwt };
        assert!(
            grant_at(&db, &rt, &keys, T, &by(assertion(claims("j0")))).is_err(),
            "no federation yet"
        );
        let client_id = block_on(set_federation(&db, &rt, T, &f, false)).expect("set");
        let bad_uri = Federation {
            jwks_uri: "http://evil/keys".into(),
            ..f.clone()
        };
        assert_eq!(
            block_on(set_federation(&db, &rt, T, &bad_uri, false)).map_err(|e| e.status),
            Err(400)
        );

        let g = grant_at(&db, &rt, &keys, T, &by(assertion(claims("j1")))).expect("granted");
        assert!(opens(&db, T, &g.access_token, 1_000_000));
        assert_eq!(
            grant_at(&db, &rt, &keys, T, &by(assertion(claims("j1")))).err(),
            Some("the assertion was already used, or the federation changed meanwhile"),
            "a replay"
        );
        let with_id = Credential::Assertion {
            id: Some(client_id.clone()),
            jwt: assertion(claims("j2")),
        };
        assert!(grant_at(&db, &rt, &keys, T, &with_id).is_ok());
        let wrong_id = Credential::Assertion {
            id: Some("cli_other".into()),
            jwt: assertion(claims("j3")),
        };
        assert_eq!(
            grant_at(&db, &rt, &keys, T, &wrong_id).err(),
            Some("unknown client id")
        );
        for (field, value) in [
            ("aud", "api://other"),
            ("sub", "sub-2"),
            ("iss", "https://evil"),
        ] {
            let mut c = claims("j4");
            c[field] = json!(value);
            assert!(
                grant_at(&db, &rt, &keys, T, &by(assertion(c))).is_err(),
                "{field}"
            );
        }
        let mut late = claims("j5");
        late["exp"] = json!(600);
        assert_eq!(
            grant_at(&db, &rt, &keys, T, &by(assertion(late))).err(),
            Some("the assertion has expired")
        );
        keys.refuse.set(true);
        assert!(grant_at(&db, &rt, &keys, T, &by(assertion(claims("j6")))).is_err());
        keys.refuse.set(false);
        // The same assertion is not this tenant's for another tenant.
        assert!(grant_at(&db, &rt, &keys, "ten_b", &by(assertion(claims("j7")))).is_err());

        // Removing the federation stops its tokens at once.
        block_on(clear_federation(&db, &rt, T)).expect("clear");
        assert!(!opens(&db, T, &g.access_token, 1_000_000));
        assert!(grant_at(&db, &rt, &keys, T, &by(assertion(claims("j8")))).is_err());
        let after = block_on(status(&db, T)).expect("status");
        assert_eq!(
            after.client.map(|c| (c.client_id, c.federation)),
            Some((client_id, None))
        );
    }
}
