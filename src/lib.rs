//! scim-edge: a multi-tenant SCIM 2.0 provisioning endpoint for Cloudflare Workers.
//!
//! Layers, each in its own folder, top to bottom; a request flows down through them:
//!
//! | layer | owns | imports `worker`? |
//! |---|---|---|
//! | [`http`] (the edge) | routing, request parsing, rendering, the rate limit, the D1 executor and the per-request meter; the SCIM routes ([`http::scim`]), the operator's admin API ([`http::admin`]), the console | yes |
//! | [`service`] | what a request does: the write loop and its retry, preconditions, member resolution, authentication, tenants and shards, the host app's reads; generic over the store's executor and a runtime seam (clock, ids) | no |
//! | [`store`] | every SQL statement, behind an executor seam (D1 at the edge, SQLite in host tests), and the map of where each attribute is stored | no |
//! | `scim_core` (the crate in `core/`) | the pure core: SCIM schemas, filters, PATCH, resources, ETags, errors, case folding; tenant routing and token crypto; RFC 3339 timestamps | no |
//!
//! # The rule
//!
//! A layer imports only the layers below it: the edge names the services (which re-export the
//! few store types the edge renders, and the executor seam it plugs D1 into), never the store;
//! the services name the store and the core; the store names the core's types and nothing
//! above. Only the edge imports `worker`. Two checks make it true by construction rather than
//! by convention: the core is a crate of its own that depends on no runtime and on nothing
//! above it (the compiler refuses anything else), and `layers.rs` fails `make test` when a file
//! of this crate names a layer above it or the runtime below the edge (`farm-studio look`
//! draws the same: no circle, no arrow up). So every rule of a request below the edge runs in
//! host tests on SQLite (`cargo test --lib`), without `wrangler dev`.
//!
//! # No panics, by construction
//!
//! A panic aborts the isolate and every request in flight on it, whichever tenant sent
//! it. Outside tests the crate denies the lints that find the ways safe Rust panics:
//! `unwrap_used`, `expect_used`, `panic`, `todo`, `unimplemented`; `string_slice` and
//! `indexing_slicing` (text is split with `split_at_checked`/`get`, never sliced at a byte
//! index that could fall inside a character; collections are read with `get`); and
//! `arithmetic_side_effects` (counters saturate, client numbers are clamped, date arithmetic
//! uses checked operations; the core's two calendar conversions allow it, each with the
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
#[cfg(test)]
mod layers;
pub mod service;
pub mod store;

use worker::{
    event, Context, Env, MessageBatch, Request, Response, ScheduleContext, ScheduledEvent,
};

/// The Worker's fetch handler: every request, on every host.
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    // A panic aborts the isolate; make sure the reason reaches the log if one ever happens.
    console_error_panic_hook::set_once();
    http::handle(req, env, ctx).await
}

/// The Cron Trigger (`[triggers] crons` in wrangler.toml): moves carried on, tenant creates that
/// never finished taken off the list, roles and alerts, retention of the change feed and the
/// provisioning log, the log cap, and purging deleted tenants (`http::upkeep`).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    http::upkeep(env).await;
}

/// The webhook Queue's consumer (`[[queues.consumers]]` in wrangler.toml), and its
/// dead-letter queue's.
#[event(queue)]
async fn queue(
    batch: MessageBatch<serde_json::Value>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    console_error_panic_hook::set_once();
    http::host_app::webhooks::consume(batch, env).await
}
