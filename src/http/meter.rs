//! What a request spent on its bindings: how many calls to D1 and to the rate limiter, and how
//! long it waited on them. At the edge every D1 call is a round trip (tens to hundreds of
//! milliseconds from a far location), so these counts are the request's cost; every response
//! reports them in a `Server-Timing` header (W3C Server Timing), for example
//! `d1;dur=3;desc="1 call", rl;dur=0;desc="1 call"` (whole milliseconds: the Worker's clock
//! has no finer grain, and formatting floats would cost the wasm 14 KB). (The rate limiter answers from the
//! Worker's own location.)
//!
//! The one place that calls each binding records into the request's meter: the D1 executor
//! ([`super::d1`]) and the rate limiter on the Worker. Calls made after the
//! response (`waitUntil`: the provisioning log of reads, `lastUsedAt`) are not on the response's
//! path and are recorded after its header was written.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

/// The Worker's clock; it advances while a request waits on I/O, which is what is timed here.
#[cfg(target_arch = "wasm32")]
fn clock_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// Host builds (tests) count calls; their durations are not measured.
#[cfg(not(target_arch = "wasm32"))]
fn clock_ms() -> u64 {
    0
}

/// A binding that costs a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    D1,
    RateLimit,
}

const BINDINGS: [(Binding, &str); 2] = [(Binding::D1, "d1"), (Binding::RateLimit, "rl")];

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    calls: u32,
    ms: u64,
}

/// The calls of one request, shared by everything that serves it (cheap to clone).
#[derive(Debug, Default, Clone)]
pub struct Meter(Rc<RefCell<[Tally; 2]>>);

fn slot(binding: Binding) -> usize {
    BINDINGS
        .iter()
        .position(|(b, _)| *b == binding)
        .unwrap_or_default()
}

impl Meter {
    /// One call to `binding` that took `ms` milliseconds.
    pub fn record(&self, binding: Binding, ms: u64) {
        let mut tallies = self.0.borrow_mut();
        if let Some(t) = tallies.get_mut(slot(binding)) {
            t.calls = t.calls.saturating_add(1);
            t.ms = t.ms.saturating_add(ms);
        }
    }

    /// Run one call to `binding` and record it with the time it took.
    pub async fn timed<T>(&self, binding: Binding, call: impl Future<Output = T>) -> T {
        let started = clock_ms();
        let result = call.await;
        self.record(binding, clock_ms().saturating_sub(started));
        result
    }

    /// How many calls to `binding` so far.
    pub fn calls(&self, binding: Binding) -> u32 {
        self.0.borrow().get(slot(binding)).map_or(0, |t| t.calls)
    }

    /// The `Server-Timing` header's value: every binding, called or not.
    pub fn server_timing(&self) -> String {
        let tallies = *self.0.borrow();
        BINDINGS
            .iter()
            .zip(tallies)
            .map(|((_, name), t)| {
                let plural = if t.calls == 1 { "" } else { "s" };
                format!("{name};dur={};desc=\"{} call{plural}\"", t.ms, t.calls)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_times_each_binding_apart() {
        let meter = Meter::default();
        let shared = meter.clone();
        shared.record(Binding::D1, 3);
        shared.record(Binding::D1, 1);
        assert_eq!(meter.calls(Binding::D1), 2);
        assert_eq!(meter.calls(Binding::RateLimit), 0);
        assert_eq!(
            meter.server_timing(),
            "d1;dur=4;desc=\"2 calls\", rl;dur=0;desc=\"0 calls\""
        );
        meter.record(Binding::RateLimit, 1);
        assert!(meter.server_timing().ends_with("rl;dur=1;desc=\"1 call\""));
    }
}
