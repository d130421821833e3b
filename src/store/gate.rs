//! Authentication inside the request's own D1 round trips: every batch a SCIM request sends
//! starts with the gate, a statement that fails, and so rolls the whole batch back, unless the
//! presented token's hash is a live token of this tenant with provisioning enabled: a Secret
//! Token, or an unexpired access token of the token endpoint (`super::oauth`).
//!
//! A bad token therefore neither reads nor writes anything: its batch returns no rows and
//! commits nothing. A valid one costs no round trip of its own: a read is still one D1 call,
//! a create one, a PATCH two (read, conditional write), each carrying the gate. Revoking a
//! token, disabling provisioning or deleting the tenant is seen by the very next
//! statement, everywhere, with no cache to invalidate.
//!
//! The gate cannot say *why* it stayed shut (SQLite has no `RAISE` outside triggers; it fails
//! through `json('')`, "malformed JSON"), so after any failed batch the caller asks
//! [`standing`] once, which names the first condition of the same rule that fails (or none:
//! the failure was something else), or that the tenant is unknown.
//!
//! The rule is written once, in [`RULE`]: the gate requires every condition, [`standing`]
//! evaluates each. So what opens the gate and what a refusal says cannot drift apart.

use crate::store::row::from_row;
use std::cell::{Cell, RefCell};

use super::{Executor, Outcome, Param, Stmt, StoreError};

/// The token that opened the gate, as the batch saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub token_id: String,
    pub last_used_at: Option<i64>,
    /// 1 for an access token of the token endpoint, 0 for a Secret Token.
    pub oauth: i64,
}
from_row!(Pass {
    token_id,
    last_used_at,
    oauth
});

/// One condition of the credential rule, over the live tenant `t` and the token `k` of
/// the presented hash within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// A live token of the tenant has the presented hash.
    Token,
    /// The token has not expired: an access token of the token endpoint ends; a Secret Token
    /// does not.
    Unexpired,
    /// Provisioning is enabled for the tenant.
    Enabled,
    /// The tenant is not frozen at the request's time (a move is switching it to another
    /// shard); only a batch that writes needs it.
    Thawed,
}

/// The credential rule, in the order a refusal names the first condition that fails. Each
/// SQL text binds the request's time for every `?` it has.
pub const RULE: [(Condition, &str); 4] = [
    (Condition::Token, "k.id IS NOT NULL"),
    (Condition::Unexpired, "coalesce(k.expires_at, ? + 1) > ?"),
    (Condition::Enabled, "t.provisioning_enabled = 1"),
    (Condition::Thawed, "coalesce(t.frozen_until, 0) <= ?"),
];

/// The rule's conditions for a batch (`write`: one that writes) and their parameters.
fn conditions(
    write: bool,
    now: i64,
) -> impl Iterator<Item = (Condition, &'static str, Vec<Param>)> {
    RULE.into_iter()
        .filter(move |(c, _)| write || *c != Condition::Thawed)
        .map(move |(c, sql)| (c, sql, vec![Param::Int(now); sql.matches('?').count()]))
}

/// The gate for `hash` on tenant `tenant_id`: one row (the token) when it opens; an error
/// that aborts the batch when it does not. A batch that writes (`write`) needs the whole
/// [`RULE`], one that reads all of it but [`Condition::Thawed`].
pub fn gate(tenant_id: &str, hash: &str, write: bool, now: i64) -> Stmt {
    let mut params: Vec<Param> = vec![hash.into(), tenant_id.into()];
    let mut rule = String::new();
    for (_, sql, bound) in conditions(write, now) {
        rule.push_str(" AND ");
        rule.push_str(sql);
        params.extend(bound);
    }
    Stmt::new(
        format!(
            "SELECT json(CASE WHEN g.token_id IS NULL THEN '' ELSE '0' END) AS open, \
             g.token_id, g.last_used_at, g.oauth FROM (SELECT 1) LEFT JOIN (\
             SELECT k.id AS token_id, k.last_used_at, k.minted_by IS NOT NULL AS oauth \
             FROM tokens k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.hash = ? AND k.tenant_id = ? AND t.deleted_at IS NULL{rule}) g ON 1"
        ),
        params,
    )
}

/// Where a presented token stands with tenant `subdomain`: what [`standing`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub tenant_id: String,
    /// The hash of the tenant's token that matched, for a constant-time comparison.
    pub token_hash: Option<String>,
    /// The first condition of [`RULE`] that fails at the request's time; `None`: the token
    /// would open the gate of a write.
    pub failing: Option<Condition>,
}

/// Why the gate of `hash` on tenant `subdomain` would stay shut at `now`, in one
/// statement: the live tenant of that subdomain (`None`: there is none) with the first
/// condition of [`RULE`] it fails.
pub async fn standing<E: Executor>(
    db: &E,
    subdomain: &str,
    hash: &str,
    now: i64,
) -> Result<Option<Standing>, StoreError> {
    struct Row {
        tenant_id: String,
        hash: Option<String>,
        failing: Option<i64>,
    }
    from_row!(Row {
        tenant_id,
        hash,
        failing
    });
    let mut params = Vec::new();
    let mut cases = String::new();
    for (i, (_, sql, bound)) in conditions(true, now).enumerate() {
        cases.push_str(&format!(" WHEN NOT ({sql}) THEN {i}"));
        params.extend(bound);
    }
    params.extend([hash.into(), subdomain.into()]);
    let row: Option<Row> = db
        .query(Stmt::new(
            format!(
                "SELECT t.id AS tenant_id, k.hash, CASE{cases} END AS failing FROM tenants t \
                 LEFT JOIN tokens k ON k.tenant_id = t.id AND k.hash = ? WHERE t.subdomain = ? \
                 AND t.deleted_at IS NULL"
            ),
            params,
        ))
        .await?
        .first()?;
    Ok(row.map(|r| Standing {
        tenant_id: r.tenant_id,
        token_hash: r.hash,
        failing: r
            .failing
            .and_then(|i| RULE.get(usize::try_from(i).ok()?))
            .map(|(c, _)| *c),
    }))
}

/// Whether a batch writes: any statement that is not a read.
fn writes(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| {
        let head = s.sql.trim_start().get(..7).unwrap_or_default();
        ["INSERT ", "UPDATE ", "DELETE ", "REPLACE"]
            .iter()
            .any(|w| head.eq_ignore_ascii_case(w))
    })
}

/// An [`Executor`] that sends the gate first in every call, and remembers how the last call
/// went.
pub struct Gated<'a, E> {
    db: &'a E,
    tenant_id: String,
    hash: String,
    now: i64,
    pass: RefCell<Option<Pass>>,
    /// The last call failed for a reason other than D1 being briefly unavailable: perhaps the
    /// gate, perhaps not (see [`super::tenants::authorize`]).
    failed: Cell<bool>,
}

impl<'a, E: Executor> Gated<'a, E> {
    /// The gate of `hash` on tenant `tenant_id`, for a request at `now`.
    pub fn new(db: &'a E, tenant_id: &str, hash: &str, now: i64) -> Gated<'a, E> {
        Gated {
            db,
            tenant_id: tenant_id.to_string(),
            hash: hash.to_string(),
            now,
            pass: RefCell::new(None),
            failed: Cell::new(false),
        }
    }

    /// The database behind the gate.
    pub fn db(&self) -> &'a E {
        self.db
    }

    /// The tenant, the presented token's hash and the request's time the gate checks.
    pub fn checks(&self) -> (&str, &str, i64) {
        (&self.tenant_id, &self.hash, self.now)
    }

    /// The token, once a call has passed the gate.
    pub fn pass(&self) -> Option<Pass> {
        self.pass.borrow().clone()
    }

    /// Whether the last call failed (not for D1's brief unavailability), or none got through.
    pub fn shut(&self) -> bool {
        self.failed.get() || self.pass.borrow().is_none()
    }

    /// Whether the last call failed for a reason other than D1's brief unavailability.
    pub fn shut_by_failure(&self) -> bool {
        self.failed.get()
    }

    /// Open the gate alone: for a request that has made no call (or whose calls all failed).
    pub async fn open(&self) -> Result<(), StoreError> {
        self.batch(Vec::new()).await.map(|_| ())
    }
}

impl<E: Executor> Executor for Gated<'_, E> {
    async fn query(&self, stmt: Stmt) -> Result<Outcome, StoreError> {
        let mut outs = self.batch(vec![stmt]).await?;
        Ok(outs.pop().unwrap_or_default())
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, StoreError> {
        let mut all = Vec::with_capacity(stmts.len().saturating_add(1));
        all.push(gate(&self.tenant_id, &self.hash, writes(&stmts), self.now));
        all.extend(stmts);
        match self.db.batch(all).await {
            Ok(mut outs) => {
                let gate = if outs.is_empty() {
                    Outcome::default()
                } else {
                    outs.remove(0)
                };
                match gate.first::<Pass>() {
                    Ok(Some(pass)) => {
                        self.failed.set(false);
                        *self.pass.borrow_mut() = Some(pass);
                        Ok(outs)
                    }
                    _ => {
                        self.failed.set(true);
                        Err(StoreError::Other("the gate returned no token".into()))
                    }
                }
            }
            Err(e) => {
                self.failed.set(!matches!(e, StoreError::Unavailable(_)));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixture::{two_tenants, T};
    use crate::store::tenants::{create_token, delete_tenant, update_tenant, NewToken};
    use pollster::block_on;

    fn token(db: &crate::store::sqlite::Sqlite, sub: &str, id: &str, hash: &str) {
        let new = NewToken {
            id,
            hash,
            hint: "hint",
            now: 0,
        };
        block_on(create_token(db, sub, new, false))
            .expect("store")
            .expect("created");
    }

    fn insert(name: &str) -> Stmt {
        Stmt::new(
            "INSERT INTO console_links (hash, tenant_id, created_at, expires_at) VALUES (?, ?, 0, 0)",
            vec![name.into(), T.into()],
        )
    }

    fn links(db: &crate::store::sqlite::Sqlite) -> i64 {
        db.count("SELECT COUNT(*) FROM console_links")
    }

    #[test]
    fn only_a_live_token_of_the_organisation_opens_the_gate_and_a_shut_gate_commits_nothing() {
        let db = two_tenants();
        token(&db, "a", "tok_a", "hash-a");
        token(&db, "b", "tok_b", "hash-b");

        let good = Gated::new(&db, T, "hash-a", 0);
        block_on(good.batch(vec![insert("l1")])).expect("opens");
        assert_eq!(good.pass().map(|p| p.token_id), Some("tok_a".into()));
        assert!(!good.shut());
        assert_eq!(links(&db), 1);

        // Another tenant's token, an unknown one: the write is rolled back with the gate.
        for hash in ["hash-b", "nope"] {
            let bad = Gated::new(&db, T, hash, 0);
            assert!(block_on(bad.batch(vec![insert(hash)])).is_err());
            assert!(block_on(bad.query(Stmt::new("SELECT 1 AS x", vec![]))).is_err());
            assert!(bad.shut() && bad.pass().is_none());
        }
        assert_eq!(links(&db), 1, "nothing written behind a shut gate");

        block_on(update_tenant(&db, "a", None, Some(false), 1)).expect("disable");
        assert!(block_on(Gated::new(&db, T, "hash-a", 0).open()).is_err());
        block_on(update_tenant(&db, "a", None, Some(true), 2)).expect("enable");
        block_on(Gated::new(&db, T, "hash-a", 0).open()).expect("open again");
        block_on(delete_tenant(&db, "a", 3)).expect("delete");
        assert!(block_on(Gated::new(&db, T, "hash-a", 0).open()).is_err());
    }

    #[test]
    fn standing_names_the_first_condition_of_the_rule_that_fails() {
        let db = two_tenants();
        token(&db, "a", "tok_a", "hash-a");
        token(&db, "b", "tok_b", "hash-b");
        let at = |sub: &str, hash: &str, now: i64| block_on(standing(&db, sub, hash, now)).unwrap();
        assert_eq!(at("nope", "hash-a", 0), None);
        let a = at("a", "hash-a", 0).expect("a");
        assert_eq!((a.tenant_id.as_str(), a.failing), (T, None));
        assert_eq!(a.token_hash.as_deref(), Some("hash-a"));
        // Another tenant's token is no token of this one.
        let b = at("a", "hash-b", 0).expect("a");
        assert_eq!((b.failing, b.token_hash), (Some(Condition::Token), None));

        block_on(update_tenant(&db, "a", None, Some(false), 1)).expect("disable");
        assert_eq!(
            at("a", "hash-a", 0).and_then(|s| s.failing),
            Some(Condition::Enabled)
        );
        assert_eq!(
            at("a", "hash-b", 0).and_then(|s| s.failing),
            Some(Condition::Token)
        );
        block_on(update_tenant(&db, "a", None, Some(true), 2)).expect("enable");

        db.execute_batch("UPDATE tenants SET frozen_until = 100 WHERE subdomain = 'a'")
            .expect("freeze");
        assert_eq!(
            at("a", "hash-a", 99).and_then(|s| s.failing),
            Some(Condition::Thawed)
        );
        assert_eq!(at("a", "hash-a", 100).and_then(|s| s.failing), None);
        // The gate agrees: a read opens while frozen, a write does not.
        let frozen = Gated::new(&db, T, "hash-a", 99);
        block_on(frozen.query(Stmt::new("SELECT 1 AS x", vec![]))).expect("a read opens");
        assert!(block_on(frozen.batch(vec![insert("l9")])).is_err());

        block_on(delete_tenant(&db, "a", 3)).expect("delete");
        assert_eq!(at("a", "hash-a", 200), None);
    }
}
