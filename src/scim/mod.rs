//! The pure SCIM core: protocol types and rules with no `worker` import, so that everything here
//! compiles and is tested on the host in milliseconds.
//!
//! - [`error`]: the typed error and the RFC 7644 §3.12 Error message.
//! - [`list`]: the RFC 7644 §3.4.2 ListResponse.

pub mod error;
pub mod list;
