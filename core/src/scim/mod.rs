//! The pure SCIM core: protocol types and rules with no `worker` import, so that everything here
//! compiles and is tested on the host in milliseconds.
//!
//! - [`discovery`]: ServiceProviderConfig, ResourceTypes and Schemas, from the schema tables.
//! - [`error`]: the typed error and the RFC 7644 §3.12 Error message.
//! - [`etag`]: `meta.version` as a weak ETag, and `If-Match` / `If-None-Match`.
//! - [`filter`]: the filter language, parsed into a schema-resolved AST.
//! - [`fold`]: Unicode case folding, how `caseExact: false` strings compare.
//! - [`list`]: the RFC 7644 §3.4.2 ListResponse.
//! - [`patch`]: PatchOp parsing and application, RFC 7644 §3.5.2 plus Entra's dialect.
//! - [`query`]: list/search parameters and ETag preconditions.
//! - [`resource`]: request bodies to stored form, stored form to SCIM JSON, projection.
//! - [`schema`]: attribute metadata, the one source of truth for every engine.
//! - [`value`]: the leniencies of reading JSON values (string booleans, numbers as text).

pub mod discovery;
pub mod error;
pub mod etag;
pub mod filter;
pub mod fold;
pub mod list;
pub mod patch;
pub mod query;
pub mod resource;
pub mod schema;
pub mod value;
