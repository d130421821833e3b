//! Tenants: which tenant a request is for, and the secrets that open it.
//!
//! Pure functions (no `worker` import): the Host/path routing rules and subdomain syntax in
//! [`host`], token generation, hashing and constant-time comparison in [`token`].

pub mod host;
pub mod token;
