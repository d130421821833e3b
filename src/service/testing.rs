//! A [`Runtime`] for host tests: a clock that only moves when told, ids from a counter, no
//! waiting.

use std::cell::Cell;

use super::Runtime;
use crate::scim::error::Result;

#[derive(Debug, Default)]
pub struct TestRuntime {
    pub now: Cell<i64>,
    next: Cell<u64>,
    /// How many times a write paused before retrying.
    pub pauses: Cell<u32>,
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
