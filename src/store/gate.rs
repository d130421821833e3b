//! Authentication inside the request's own D1 round trips: every batch a SCIM request sends
//! starts with the gate, a statement that fails, and so rolls the whole batch back, unless the
//! presented token's hash is a live token of this organisation with provisioning enabled.
//!
//! A bad token therefore neither reads nor writes anything: its batch returns no rows and
//! commits nothing. A valid one costs no round trip of its own: a read is still one D1 call,
//! a create one, a PATCH two (read, conditional write), each carrying the gate. Revoking a
//! token, disabling provisioning or deleting the organisation is seen by the very next
//! statement, everywhere, with no cache to invalidate.
//!
//! The gate cannot say *why* it stayed shut (SQLite has no `RAISE` outside triggers; it fails
//! through `json('')`, "malformed JSON"), so after any failed batch the caller asks
//! [`super::tenants::authorize`] once, which tells an unknown organisation (404), a wrong token
//! (401) and disabled provisioning (403) apart, or that the failure was something else.

use serde::Deserialize;
use std::cell::{Cell, RefCell};

use super::{Executor, Outcome, Param, Stmt, StoreError};

/// The token that opened the gate, as the batch saw it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Pass {
    pub token_id: String,
    pub last_used_at: Option<i64>,
}

/// The gate for `hash` on organisation `tenant_id`: one row (the token) when it opens; an error
/// that aborts the batch when it does not. A batch that writes (`write`) also needs the
/// organisation not to be frozen at `now` (a move is switching it to another shard).
pub fn gate(tenant_id: &str, hash: &str, write: bool, now: i64) -> Stmt {
    let (frozen, mut params): (&str, Vec<Param>) = (
        if write {
            " AND coalesce(t.frozen_until, 0) <= ?"
        } else {
            ""
        },
        vec![hash.into(), tenant_id.into()],
    );
    if write {
        params.push(now.into());
    }
    Stmt::new(
        format!(
            "SELECT json(CASE WHEN g.token_id IS NULL THEN '' ELSE '0' END) AS open, \
             g.token_id, g.last_used_at FROM (SELECT 1) LEFT JOIN (\
             SELECT k.id AS token_id, k.last_used_at FROM tokens k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.hash = ? AND k.tenant_id = ? AND t.deleted_at IS NULL \
             AND t.provisioning_enabled = 1{frozen}) g ON 1"
        ),
        params,
    )
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
    /// The gate of `hash` on organisation `tenant_id`, for a request at `now`.
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
    use crate::store::fixture::{organisations, T};
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
        let db = organisations();
        token(&db, "a", "tok_a", "hash-a");
        token(&db, "b", "tok_b", "hash-b");

        let good = Gated::new(&db, T, "hash-a", 0);
        block_on(good.batch(vec![insert("l1")])).expect("opens");
        assert_eq!(good.pass().map(|p| p.token_id), Some("tok_a".into()));
        assert!(!good.shut());
        assert_eq!(links(&db), 1);

        // Another organisation's token, an unknown one: the write is rolled back with the gate.
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
}
