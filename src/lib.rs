//! scim-edge: a multi-tenant SCIM 2.0 provisioning endpoint for Cloudflare Workers.
//!
//! Layers, each in its own folder, and the one direction a request flows through them:
//!
//! | module | owns | imports `worker`? |
//! |---|---|---|
//! | [`http`] | the router, SCIM handlers, authentication, the one error-to-response mapping | yes |
//! | [`admin`] | the operator's API: tenants and Secret Tokens | yes |
//! | [`store`] | every SQL statement, behind an executor seam (D1 / SQLite in tests) | D1 adapter only |
//! | [`scim`] | the pure SCIM core: errors, messages (and later schemas, filters, PATCH) | no |
//! | [`tenancy`] | Host/path tenant routing, subdomain rules, token crypto | no |
//! | [`time`] | RFC 3339 timestamps without a date crate | no |
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

pub mod admin;
pub mod http;
pub mod scim;
pub mod store;
pub mod tenancy;
pub mod time;

use worker::{event, Context, Env, Request, Response};

/// The Worker's fetch handler: every request, on every host.
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    // A panic aborts the isolate; make sure the reason reaches the log if one ever happens.
    console_error_panic_hook::set_once();
    http::handle(req, env, ctx).await
}
