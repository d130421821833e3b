//! A [`Runtime`] for host tests: a clock that only moves when told, ids from a counter, no
//! waiting.

use std::cell::Cell;

use super::Runtime;
use scim_core::scim::error::Result;

#[derive(Debug, Default)]
pub struct TestRuntime {
    pub now: Cell<i64>,
    next: Cell<u64>,
    /// How many times a write paused before retrying.
    pub pauses: Cell<u32>,
    /// How far the clock moves each time it is read (0: only when told).
    pub step: Cell<i64>,
}

impl TestRuntime {
    pub fn at(now: i64) -> TestRuntime {
        TestRuntime {
            now: Cell::new(now),
            ..TestRuntime::default()
        }
    }

    fn next(&self) -> u64 {
        let n = self.next.get().wrapping_add(1);
        self.next.set(n);
        n
    }
}

impl Runtime for TestRuntime {
    fn now(&self) -> i64 {
        self.now.get()
    }

    fn clock(&self) -> i64 {
        let t = self.now.get().saturating_add(self.step.get());
        self.now.set(t);
        t
    }

    async fn sleep(&self, ms: i64) {
        self.now.set(self.now.get().saturating_add(ms));
    }

    fn random_id(&self, prefix: &str) -> Result<String> {
        Ok(format!("{prefix}{}", self.next()))
    }

    fn random_uuid(&self) -> Result<String> {
        Ok(format!("00000000-0000-4000-8000-{:012}", self.next()))
    }

    async fn pause(&self, _attempt: u32) {
        self.pauses.set(self.pauses.get().saturating_add(1));
    }
}

/// Databases for host tests: `DB` (the catalog, and a shard) and any number of further
/// shards, each a migrated SQLite database.
pub struct TestShards {
    bindings: Vec<String>,
    dbs: Vec<crate::store::sqlite::Sqlite>,
}

impl TestShards {
    /// `DB` as given, and `extra` more shards (`SHARD_2`, `SHARD_3`, …), freshly migrated.
    pub fn new(db: crate::store::sqlite::Sqlite, extra: usize) -> TestShards {
        let mut bindings = vec![super::shards::CATALOG.to_string()];
        let mut dbs = vec![db];
        for i in 0..extra {
            bindings.push(format!(
                "{}{}",
                super::shards::SHARD_PREFIX,
                i.saturating_add(2)
            ));
            dbs.push(crate::store::sqlite::Sqlite::migrated());
        }
        TestShards { bindings, dbs }
    }
}

impl super::shards::Databases for TestShards {
    type Db = crate::store::sqlite::Sqlite;

    fn catalog(&self) -> Result<Self::Db> {
        self.shard(super::shards::CATALOG)
    }

    fn bindings(&self) -> &[String] {
        &self.bindings
    }

    fn shard(&self, binding: &str) -> Result<Self::Db> {
        self.bindings
            .iter()
            .position(|b| b == binding)
            .and_then(|i| self.dbs.get(i))
            .cloned()
            .ok_or_else(|| scim_core::scim::error::Error::internal(format!("no shard {binding}")))
    }
}
