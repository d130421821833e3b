//! The one typed error of the service and its rendering as a SCIM Error message.
//!
//! Every failure in a request path becomes an [`Error`]; the HTTP layer turns it into a response in
//! exactly one place. On the SCIM surface the body is the RFC 7644 §3.12 Error message; the admin
//! surface renders the same value as plain JSON ([`Error::admin_body`]). An internal cause is kept
//! for the log and never echoed to the client.

use serde_json::{json, Value};

/// Media type of every SCIM response (RFC 7644 §8.1). Entra and its validator reject others.
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// URN of the SCIM Error message (RFC 7644 §3.12).
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` keywords of RFC 7644 §3.12, Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

/// A failed request: HTTP status, optional `scimType`, a client-facing `detail`, and (for 500s)
/// an internal cause that is logged but never sent.
///
/// The error knows which parts of its detail are the client's own text: every value a detail
/// quotes passes through [`quote`], and [`Error::new`] keeps where each one lies
/// ([`Error::quoted`]). The provisioning log stores the detail without them
/// ([`Error::redacted`]), whatever punctuation surrounds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
    /// Byte ranges of `detail` that quote the client (see [`quote`]), in order.
    pub quoted: Vec<std::ops::Range<usize>>,
    /// Methods for the `Allow` header of a 405 (RFC 9110 §15.5.6).
    pub allow: Option<&'static str>,
    /// Seconds for the `Retry-After` header of a 429 or 503, when not the surface's default.
    pub retry_after: Option<u32>,
    /// The real cause of an internal error, for the log only.
    pub cause: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Most characters of client input quoted back in a detail: enough to recognise it, never
/// the whole of a large body.
pub const QUOTE_CHARS: usize = 64;

/// Longest detail of any error, as a backstop for details that quote more than one value.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// Where [`quote`]d client text starts and ends inside a detail being built: two characters of
/// Unicode's private use area that [`quote`] removes from the client's own text, so only it
/// can write them. [`Error::new`] takes them out again; no response or log carries them.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// Client text for a detail: the first [`QUOTE_CHARS`] characters, then `…` if there was more,
/// marked as the client's (so that the log can leave it out, [`Error::redacted`]).
pub fn quote(s: &str) -> String {
    format!("{OPEN}{}{CLOSE}", cut(&plain(s), QUOTE_CHARS))
}

/// `s` cut to `n` characters, with `…` when something was cut.
pub fn cut(s: &str, n: usize) -> String {
    let mut chars = s.chars();
    let mut out: String = chars.by_ref().take(n).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Text built with [`quote`] for somewhere other than an [`Error`] (a log warning): the
/// marks removed, the text kept.
pub fn plain(s: &str) -> String {
    s.chars().filter(|&c| c != OPEN && c != CLOSE).collect()
}

/// A detail without its marks, and where the marked parts lie in it.
fn unmark(marked: &str) -> (String, Vec<std::ops::Range<usize>>) {
    let mut text = String::with_capacity(marked.len());
    let mut quoted = Vec::new();
    let mut start = None;
    for c in marked.chars() {
        match c {
            OPEN => start = start.or(Some(text.len())),
            CLOSE => {
                if let Some(s) = start.take() {
                    quoted.push(s..text.len());
                }
            }
            c => text.push(c),
        }
    }
    if let Some(s) = start {
        // An unclosed mark: everything after it is the client's.
        quoted.push(s..text.len());
    }
    (text, quoted)
}

/// A client JSON value for a detail, quoted like [`quote`].
pub fn quote_json(v: &Value) -> String {
    quote(&v.to_string())
}

/// Cut a detail to [`MAX_DETAIL_BYTES`] at a character boundary; a quoted part that was cut
/// keeps what is left of it, with the `…`.
fn bounded(
    mut detail: String,
    mut quoted: Vec<std::ops::Range<usize>>,
) -> (String, Vec<std::ops::Range<usize>>) {
    if detail.len() > MAX_DETAIL_BYTES {
        let mut end = MAX_DETAIL_BYTES;
        while !detail.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        detail.truncate(end);
        quoted.retain(|r| r.start < end);
        let cut_inside = quoted.last().is_some_and(|r| r.end > end);
        detail.push('…');
        if let Some(r) = quoted.last_mut().filter(|_| cut_inside) {
            r.end = detail.len();
        }
    }
    (detail, quoted)
}

impl Error {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        let (detail, quoted) = unmark(&detail.into());
        let (detail, quoted) = bounded(detail, quoted);
        Error {
            status,
            scim_type: None,
            detail,
            quoted,
            allow: None,
            retry_after: None,
            cause: None,
        }
    }

    /// The detail with its quoted parts marked again, to build another detail around it.
    pub fn marked(&self) -> String {
        let mut out = String::with_capacity(self.detail.len().saturating_add(8));
        let mut at = 0;
        for r in &self.quoted {
            out.push_str(self.detail.get(at..r.start).unwrap_or_default());
            out.push(OPEN);
            out.push_str(self.detail.get(r.clone()).unwrap_or_default());
            out.push(CLOSE);
            at = r.end;
        }
        out.push_str(self.detail.get(at..).unwrap_or_default());
        out
    }

    /// The same error with `prefix` before its detail (which operation of several failed).
    pub fn prefixed(self, prefix: &str) -> Error {
        let (detail, quoted) = unmark(&format!("{prefix}{}", self.marked()));
        let (detail, quoted) = bounded(detail, quoted);
        Error {
            detail,
            quoted,
            ..self
        }
    }

    /// The detail with every quoted part the client sent replaced by `…`, except those `keep`
    /// accepts (an attribute's name says which attribute was wrong and is no value).
    pub fn redacted(&self, keep: impl Fn(&str) -> bool) -> String {
        let mut out = String::with_capacity(self.detail.len());
        let mut at = 0;
        for r in &self.quoted {
            out.push_str(self.detail.get(at..r.start).unwrap_or_default());
            let part = self.detail.get(r.clone()).unwrap_or_default();
            out.push_str(if !part.is_empty() && keep(part) {
                part
            } else {
                "…"
            });
            at = r.end;
        }
        out.push_str(self.detail.get(at..).unwrap_or_default());
        out
    }

    /// 400 with a `scimType` (RFC 7644 §3.12).
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Error {
            scim_type: Some(scim_type),
            ..Error::new(400, detail)
        }
    }

    /// 400 without a `scimType`: for the admin API and for malformed requests the RFC has no
    /// keyword for.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Error::new(400, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Error::new(401, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Error::new(403, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Error::new(404, detail)
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Error {
            allow: Some(allow),
            ..Error::new(405, format!("method not allowed; allowed: {allow}"))
        }
    }

    /// 409 `uniqueness` (RFC 7644 §3.3: a duplicate on create).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Error {
            scim_type: Some(ScimType::Uniqueness),
            ..Error::new(409, detail)
        }
    }

    /// 409 without a `scimType`: a state conflict that is not about uniqueness (admin API).
    pub fn state_conflict(detail: impl Into<String>) -> Self {
        Error::new(409, detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Error::new(415, detail)
    }

    /// 500: the cause goes to the log; the client learns only that it was internal.
    pub fn internal(cause: impl Into<String>) -> Self {
        Error {
            cause: Some(cause.into()),
            ..Error::new(500, "internal server error")
        }
    }

    /// The RFC 7644 §3.12 body: `status` is a string, `scimType` only where set.
    pub fn scim_body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(map)) = (self.scim_type, body.as_object_mut()) {
            map.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        body
    }

    /// The admin API's error body: `{"status": 400, "error": "...", "message": "..."}`.
    pub fn admin_body(&self) -> Value {
        let code = match self.status {
            400 => "badRequest",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "notFound",
            405 => "methodNotAllowed",
            409 => "conflict",
            413 => "payloadTooLarge",
            415 => "unsupportedMediaType",
            429 => "tooManyRequests",
            _ => "internal",
        };
        json!({ "status": self.status, "error": code, "message": self.detail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scim_body_has_string_status_and_optional_scim_type() {
        let e = Error::conflict("userName taken");
        assert_eq!(
            e.scim_body(),
            json!({"schemas": [ERROR_SCHEMA], "status": "409", "scimType": "uniqueness", "detail": "userName taken"})
        );
        let e = Error::not_found("no such user");
        assert_eq!(e.scim_body().get("scimType"), None);
        assert_eq!(e.scim_body()["status"], "404");
    }

    #[test]
    fn details_quote_client_input_briefly() {
        assert_eq!(plain(&quote("short")), "short");
        let long = "é".repeat(500);
        assert_eq!(plain(&quote(&long)).chars().count(), QUOTE_CHARS + 1);
        assert!(plain(&quote(&long)).ends_with('…'));
        let e = Error::invalid("x".repeat(5000) + "é");
        assert!(e.detail.len() <= MAX_DETAIL_BYTES + '…'.len_utf8());
        let e = Error::invalid("é".repeat(1000));
        assert!(e.detail.ends_with('…'), "cut at a character boundary");
    }

    #[test]
    fn an_error_knows_which_parts_are_the_clients() {
        let e = Error::invalid(format!(
            "'{}' must be an object, not {} (and {})",
            "addresses",
            quote("\"12 Secret Lane\""),
            quote("x\u{E001}y")
        ));
        assert_eq!(
            e.detail,
            "'addresses' must be an object, not \"12 Secret Lane\" (and xy)"
        );
        assert_eq!(e.quoted.len(), 2);
        assert_eq!(
            e.redacted(|_| false),
            "'addresses' must be an object, not … (and …)"
        );
        assert_eq!(
            e.redacted(|q| q == "xy"),
            "'addresses' must be an object, not … (and xy)"
        );
        // Built into another detail, the parts stay the client's.
        let outer = Error::invalid(format!("operation 2: {}", e.marked()));
        assert_eq!(
            outer.redacted(|_| false),
            "operation 2: 'addresses' must be an object, not … (and …)"
        );
        // Cut by the detail's bound, a quoted part is still left out.
        let long = Error::invalid(format!(
            "{} {}",
            "a".repeat(MAX_DETAIL_BYTES - 3),
            quote("secret")
        ));
        assert!(
            !long.redacted(|_| false).contains("se"),
            "{}",
            long.redacted(|_| false)
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = Error::internal("D1_ERROR: disk on fire");
        let body = e.scim_body().to_string();
        assert!(!body.contains("disk on fire"), "{body}");
        assert_eq!(e.cause.as_deref(), Some("D1_ERROR: disk on fire"));
        assert!(!e.admin_body().to_string().contains("disk on fire"));
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let e = Error::method_not_allowed("GET, POST");
        assert_eq!(e.status, 405);
        assert_eq!(e.allow, Some("GET, POST"));
        assert_eq!(e.admin_body()["error"], "methodNotAllowed");
    }
}
