//! The pure core of scim-edge: what a SCIM request means, independent of where it runs.
//!
//! | module | owns |
//! |---|---|
//! | [`scim`] | schemas, filters, PATCH, resources, ETags, errors, case folding (RFC 7643, RFC 7644) |
//! | [`host_app`] | the host app's contract: API key scopes |
//! | [`tenancy`] | Host/path tenant routing, subdomain rules, token crypto |
//! | [`oauth`] | the token endpoint's request and errors, JWT client assertions (RFC 6749, RFC 7523) |
//! | [`time`] | RFC 3339 timestamps without a date crate |
//!
//! A crate of its own so that the rule is the compiler's, not a convention: it depends on no
//! Worker runtime (`worker`) and on nothing of the crates above it (the store, the services,
//! the edge), so everything here runs and is tested on the host as it is.
//!
//! # No panics, by construction
//!
//! A panic aborts the isolate and every request in flight on it. Outside tests this crate denies
//! the lints that find the ways safe Rust panics, as the Worker crate does: `unwrap_used`,
//! `expect_used`, `panic`, `todo`, `unimplemented`; `string_slice` and `indexing_slicing` (text
//! is split with `split_at_checked`/`get`; collections are read with `get`); and
//! `arithmetic_side_effects` (the two calendar conversions in [`time`] allow it, each with the
//! bound that makes overflow impossible).
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

pub mod host_app;
pub mod oauth;
pub mod scim;
pub mod tenancy;
pub mod time;
