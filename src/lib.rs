//! scim-edge: a multi-tenant SCIM 2.0 provisioning endpoint for Cloudflare Workers.
//!
//! Layers, each in its own folder, top to bottom; a request flows down through them:
//!
//! | module | owns | imports `worker`? |
//! |---|---|---|
//! | [`http`] | the edge: routing, request parsing, rendering, the rate limit; the SCIM routes ([`http::scim`]) and the operator's admin API ([`http::admin`]) | yes |
//! | [`service`] | what a request does: the write loop and its retry, preconditions, member resolution, authentication, tenant administration; generic over the store's executor and a runtime seam (clock, ids) | no |
//! | [`store`] | every SQL statement, behind an executor seam (D1 / SQLite in tests), and the map of where each attribute is stored | D1 adapter only |
//! | [`scim`] | the pure SCIM core: schemas, filters, PATCH, resources, ETags, errors, case folding | no |
//! | [`tenancy`] | Host/path tenant routing, subdomain rules, token crypto | no |
//! | [`time`] | RFC 3339 timestamps without a date crate | no |
//!
//! The rule, which `farm-studio look` checks (no circles, no arrow up): a module imports only
//! the layers below it. `scim`, `tenancy` and `time` import nothing of ours above them; `store`
//! imports only the `scim` types it persists; `service` imports `store` and `scim`; the edge
//! imports `service` (and the core types it parses and renders). So every rule of a request
//! below the edge runs in host tests on SQLite (`cargo test --lib`), without `wrangler dev`.
//!
//! # No panics, by construction
//!
//! A panic aborts the isolate and every request in flight on it, whichever organisation sent
//! it. Outside tests the crate denies the lints that find the ways safe Rust panics:
//! `unwrap_used`, `expect_used`, `panic`, `todo`, `unimplemented`; `string_slice` and
//! `indexing_slicing` (text is split with `split_at_checked`/`get`, never sliced at a byte
//! index that could fall inside a character; collections are read with `get`); and
//! `arithmetic_side_effects` (counters saturate, client numbers are clamped, date arithmetic
//! uses checked operations; the two calendar conversions in [`time`] allow it, each with the
//! bound that makes overflow impossible). `tests/fuzz` drives the request paths with generated
//! input to catch what the lints cannot.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented,
        clippy::string_slice,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod http;
pub mod service;
pub mod store;

pub use scim_edge_core::{scim, tenancy, time};

use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

/// The Worker's fetch handler: every request, on every host.
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    // A panic aborts the isolate; make sure the reason reaches the log if one ever happens.
    console_error_panic_hook::set_once();
    http::handle(req, env, ctx).await
}

/// The Cron Trigger (`[triggers] crons` in wrangler.toml): retention of the change feed and the
/// provisioning log, the log cap, and purging deleted organisations.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    http::upkeep(env).await;
}
