//! The host app's contract: what the vendor's backend may ask of the admin API.
//!
//! [`scope`]: the least-privilege scopes an API key carries, and how they are stored and named.
//! [`webhook`]: Standard Webhooks' secrets and signatures, which URLs may receive them, retries.
//! Pure, so that the rules (a key never grants what its maker lacks; a stored key with a scope
//! this build does not know loses it rather than gaining anything) are tested on the host.

pub mod scope;
pub mod webhook;
