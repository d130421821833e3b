//! The provisioning log of one SCIM request: what a tenant's admin and the vendor's
//! support read to learn what the identity provider did, and why a request failed.
//!
//! The edge opens an [`RequestLog`] with what it knows of the request (method, route, resource id,
//! request id, the status a success will have). A write puts the entry in its own batch
//! ([`RequestLog::entry`], then [`RequestLog::committed`] once that batch has committed), so a write
//! costs no extra round trip for it; everything else (reads, writes that changed nothing,
//! failures) is written after the response by the edge, from [`RequestLog::finish`]. Refused
//! authentication is not logged one entry each: a [`Refusal`] adds to the aggregated entry of
//! its minute, client address and reason (`migrations/0008_refusals.sql`).
//!
//! What an entry may hold: the resource's name (userName or displayName, cut to
//! [`MAX_NAME_CHARS`]), attribute *names*, counts, statuses and error details without the
//! client's text ([`redact`]: every part the error knows the client sent, whatever quotes
//! surround it, unless it is an attribute's name). Never a token, a body, an email, an
//! address or a phone number.

use std::cell::{Cell, RefCell};

use crate::store::log;
use scim_core::scim::error::{cut, plain, Error, Result};
use scim_core::scim::schema::{Resolved, ResourceType};

pub use crate::store::log::LogEntry;
/// The log's shapes the edge fills and asks with: a request's entry, a minute's refusals, a
/// query of the log.
pub use crate::store::log::{LogQuery, Refusals};
use crate::store::Executor;

/// Write entries of one tenant on their own (after the responses), and add refusals
/// to their aggregated entries, in one batch. `false` when the tenant no longer lives
/// in `db` (a move took it elsewhere): nothing was written.
pub async fn record<E: Executor>(
    db: &E,
    tenant_id: &str,
    entries: &[LogEntry],
    refusals: &[Refusals],
) -> Result<bool> {
    let mut stmts: Vec<_> = log::insert_stmt(tenant_id, entries).into_iter().collect();
    stmts.extend(log::refusals_stmts(tenant_id, refusals));
    let outs = if stmts.len() > 1 {
        db.batch(stmts).await?
    } else if let Some(stmt) = stmts.pop() {
        vec![db.query(stmt).await?]
    } else {
        return Ok(true);
    };
    Ok(outs.iter().any(|o| o.changes > 0))
}

/// Warnings kept per entry (a push naming thousands of unknown members keeps the count).
pub const MAX_WARNINGS: usize = 20;

/// Bytes of warnings kept per entry, all of them together; the rest are counted.
pub const MAX_WARNING_BYTES: usize = 2_048;

/// Characters of a resource's name kept in an entry (then `…`), as a write's batch keeps it
/// ([`crate::store::trail::LOGGED_NAME_CHARS`]): a 100 KB userName is not logged whole.
pub const MAX_NAME_CHARS: usize = crate::store::trail::LOGGED_NAME_CHARS;

/// The log entry of one request, filled in as the request goes.
#[derive(Debug, Default)]
pub struct RequestLog {
    entry: RefCell<LogEntry>,
    /// How many warnings there were, kept or not.
    warned: Cell<usize>,
    /// Whether a committed batch carried the entry.
    logged: Cell<bool>,
}

impl RequestLog {
    /// An entry for a request, with `status` the status a success will have.
    pub fn new(entry: LogEntry) -> RequestLog {
        RequestLog {
            entry: RefCell::new(entry),
            ..RequestLog::default()
        }
    }

    /// The status a success answers with, once the edge knows the operation.
    pub fn expect_status(&self, status: u16) {
        self.entry.borrow_mut().status = status;
    }

    /// Name the resource the request touched.
    pub fn name(&self, name: Option<&str>) {
        self.entry.borrow_mut().resource_name = name.map(|n| cut(n, MAX_NAME_CHARS));
    }

    /// The resource type, when the edge did not know it from the route.
    pub fn resource(&self, resource_type: &'static str, id: &str) {
        let mut e = self.entry.borrow_mut();
        e.resource_type = Some(resource_type);
        e.resource_id = Some(id.to_string());
    }

    /// The one-line summary (`{}` stands for the resource's name).
    pub fn summary(&self, summary: String) {
        self.entry.borrow_mut().summary = Some(summary);
    }

    /// A warning in words; what it quotes of the client ([`scim_core::scim::error::quote`]) is
    /// an id it named, kept so the admin can find it.
    pub fn warn(&self, warning: String) {
        self.warned.set(self.warned.get().saturating_add(1));
        let mut e = self.entry.borrow_mut();
        let warning = plain(&warning);
        let bytes: usize = e.warnings.iter().map(String::len).sum();
        if e.warnings.len() < MAX_WARNINGS
            && bytes.saturating_add(warning.len()) <= MAX_WARNING_BYTES
        {
            e.warnings.push(warning);
        }
    }

    /// How many warnings the request had.
    pub fn warnings(&self) -> usize {
        self.warned.get()
    }

    /// The entry as a write's batch carries it, at `clock` (the time the batch is sent):
    /// `summary` with `{}` for the name the resource has in the batch.
    pub fn entry(&self, summary: String, clock: i64) -> LogEntry {
        let mut e = self.entry.borrow().clone();
        e.summary = Some(summary);
        e.duration_ms = clock.saturating_sub(e.at).max(0);
        e
    }

    /// The entry of a request that succeeded with the status it expected, at `clock`, unless a
    /// batch already carried it: for a service that writes it itself.
    pub fn succeeded(&self, types: &[&'static ResourceType], clock: i64) -> Option<LogEntry> {
        let status = self.entry.borrow().status;
        self.finish(Ok(status), types, clock)
    }

    /// A batch carrying [`RequestLog::entry`] committed.
    pub fn committed(&self) {
        self.logged.set(true);
    }

    /// The entry to write after the response, unless a batch already carried it: the
    /// request's outcome, its duration up to `clock`, its summary with `{}` filled in.
    pub fn finish(
        &self,
        outcome: std::result::Result<u16, &Error>,
        types: &[&'static ResourceType],
        clock: i64,
    ) -> Option<LogEntry> {
        if self.logged.get() {
            return None;
        }
        let mut e = self.entry.borrow().clone();
        e.duration_ms = clock.saturating_sub(e.at).max(0);
        match outcome {
            Ok(status) => e.status = status,
            Err(err) => {
                e.status = err.status;
                e.scim_type = err.scim_type.map(|t| t.as_str().to_string());
                e.detail = Some(redact(err, types));
                e.summary = None;
            }
        }
        let name = e.resource_name.clone().or_else(|| e.resource_id.clone());
        e.summary = e
            .summary
            .map(|s| s.replace("{}", name.as_deref().unwrap_or("")));
        if self.warned.get() > e.warnings.len() {
            let more = self.warned.get().saturating_sub(e.warnings.len());
            e.warnings.push(format!("and {more} more"));
        }
        Some(e)
    }
}

/// An error's detail for the log: every part the error knows the client sent
/// ([`Error::redacted`]) becomes `…` unless it is an attribute path of one of `types` (the
/// detail then still says which attribute was wrong); then, as a second line of defence,
/// so does every `'…'`-quoted segment that is not an attribute path ([`redact_quotes`]).
pub fn redact(err: &Error, types: &[&'static ResourceType]) -> String {
    let is_attr = |q: &str| {
        types
            .iter()
            .any(|t| matches!(t.resolve(q), Resolved::Attr(_)))
    };
    redact_quotes(&err.redacted(is_attr), types)
}

/// Each `'…'`-quoted segment is kept only when it is an attribute path of one of `types`, and
/// becomes `'…'` otherwise. A quote opens only where a word cannot be going on (at the
/// start, or after a space or an opening bracket), so a possessive (`organisation's`) is text.
pub fn redact_quotes(detail: &str, types: &[&'static ResourceType]) -> String {
    let mut out = String::with_capacity(detail.len());
    let mut rest = detail;
    loop {
        let open = rest.char_indices().find(|&(i, c)| {
            c == '\''
                && rest
                    .get(..i)
                    .and_then(|b| b.chars().next_back())
                    .is_none_or(|p| p.is_whitespace() || "([{:=,".contains(p))
        });
        let Some((i, _)) = open else {
            out.push_str(rest);
            return out;
        };
        let Some((before, after)) = rest.split_at_checked(i) else {
            out.push_str(rest);
            return out;
        };
        out.push_str(before);
        let after = after.get(1..).unwrap_or_default();
        // The closing quote: one not followed by a letter or a digit.
        let close = after.char_indices().find(|&(j, c)| {
            c == '\''
                && after
                    .get(j.saturating_add(1)..)
                    .and_then(|t| t.chars().next())
                    .is_none_or(|n| !n.is_alphanumeric())
        });
        match close {
            Some((j, _)) => {
                let quoted = after.get(..j).unwrap_or_default();
                let keep = !quoted.is_empty()
                    && types
                        .iter()
                        .any(|t| matches!(t.resolve(quoted), Resolved::Attr(_)));
                out.push('\'');
                out.push_str(if keep { quoted } else { "…" });
                out.push('\'');
                rest = after.get(j.saturating_add(1)..).unwrap_or_default();
            }
            None => {
                // An unmatched quote: what follows may be a value; drop it.
                out.push_str("'…");
                return out;
            }
        }
    }
}

/// Why a request's credential was refused (a refusal the refusal budget counts and the log
/// aggregates; a valid token of a tenant whose provisioning is off is not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoToken,
    InvalidToken,
    /// Refused before any D1 call: the address's or the tenant's budget is spent.
    OverBudget,
    /// A token request refused (a failed client authentication, or a malformed request):
    /// why, in words.
    InvalidClient(&'static str),
}

impl Refusal {
    /// Its part of the aggregated entry of its minute, address and reason: `route` is the
    /// route's template, never the path the stranger sent.
    pub fn entry(self, now: i64, address: &str, method: String, route: &'static str) -> Refusals {
        let (reason, words, status) = match self {
            Refusal::NoToken => ("no-token", "no Secret Token was sent", 401),
            Refusal::InvalidToken => (
                "invalid-token",
                "the Secret Token or access token sent is not one of this organisation's (unknown, revoked, expired, or another organisation's)",
                401,
            ),
            Refusal::OverBudget => (
                "over-budget",
                "too many refused requests, answered 429 without checking the credential",
                429,
            ),
            // Keyed by why: each cause of a minute's refused token requests is its own entry.
            Refusal::InvalidClient(why) => (why, why, 401),
        };
        Refusals {
            at: now,
            minute: now.saturating_sub(now.rem_euclid(60_000)),
            address: address.to_string(),
            reason,
            words,
            status,
            method,
            route,
            count: 1,
            presented: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::scim::schema::{GROUP_TYPE, USER_TYPE};

    #[test]
    fn values_leave_the_log_whatever_quotes_them() {
        use scim_core::scim::error::{quote, quote_json};
        let types = [&USER_TYPE, &GROUP_TYPE];
        let address = serde_json::json!("12 Secret Lane");
        for (err, logged) in [
            (
                Error::invalid(format!(
                    "'addresses' must be an object, not {}",
                    quote_json(&address)
                )),
                "'addresses' must be an object, not …",
            ),
            (
                Error::invalid(format!(
                    "'phoneNumbers.value' must be a string, not {}",
                    quote_json(&serde_json::json!(["+1 555 0166"]))
                )),
                "'phoneNumbers.value' must be a string, not …",
            ),
            (
                Error::invalid(format!("unknown attribute {}", quote("name.givenName"))),
                "unknown attribute name.givenName",
            ),
        ] {
            assert_eq!(redact(&err, &types), logged);
        }
    }

    #[test]
    fn details_keep_attribute_names_and_lose_values() {
        let types = [&USER_TYPE, &GROUP_TYPE];
        let redact = |d: &str, t: &[&'static ResourceType]| redact_quotes(d, t);
        assert_eq!(
            redact("userName 'jane@acme.com' is already taken", &types),
            "userName '…' is already taken"
        );
        assert_eq!(
            redact("'phoneNumbers' value '+1 555 0100' is not a string", &types),
            "'phoneNumbers' value '…' is not a string"
        );
        assert_eq!(redact("no quotes at all", &types), "no quotes at all");
        assert_eq!(redact("a 'dangling +1 555", &types), "a '…");
        assert_eq!(
            redact(
                "not valid for this organisation (or another organisation's)",
                &types
            ),
            "not valid for this organisation (or another organisation's)"
        );
        assert_eq!(
            redact("no organisation 'o'brien.co' is served", &types),
            "no organisation '…' is served"
        );
        assert_eq!(
            redact("'name.givenName' and 'displayName'", &types),
            "'name.givenName' and 'displayName'"
        );
    }

    #[test]
    fn a_committed_entry_is_not_written_again() {
        let log = RequestLog::new(LogEntry {
            at: 1_000,
            status: 201,
            ..LogEntry::default()
        });
        log.name(Some("jane@acme.com"));
        let e = log.entry("{} created".into(), 1_040);
        assert_eq!(e.duration_ms, 40);
        assert_eq!(e.summary.as_deref(), Some("{} created"));
        log.committed();
        assert_eq!(log.finish(Ok(201), &[&USER_TYPE], 1_050), None);
    }

    #[test]
    fn failures_carry_status_type_and_a_redacted_detail() {
        let log = RequestLog::new(LogEntry {
            at: 1_000,
            ..LogEntry::default()
        });
        log.summary("{} updated".into());
        for i in 0..25 {
            log.warn(format!("w{i}"));
        }
        let err = Error::conflict("userName 'x@y.z' is already taken");
        let e = log.finish(Err(&err), &[&USER_TYPE], 1_010).unwrap();
        assert_eq!(e.status, 409);
        assert_eq!(e.scim_type.as_deref(), Some("uniqueness"));
        assert_eq!(e.detail.as_deref(), Some("userName '…' is already taken"));
        assert_eq!(e.summary, None);
        assert_eq!(e.warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(e.warnings.last().map(String::as_str), Some("and 5 more"));
        assert_eq!(e.duration_ms, 10);
    }
}
