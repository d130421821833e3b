//! Tenants spread over several D1 databases: which database a request uses, where a new
//! tenant goes, what each shard holds, and the feed's cursor that names its databases.
//!
//! A D1 database holds at most 10 GB and runs one query at a time, so one database serves a
//! few hundred tenants, not thousands (Cloudflare's D1 limits; its guidance is to scale
//! out over many smaller databases). `DB` is the **catalog** (the list of tenants,
//! [`crate::store::catalog`]) and also a **shard**; every other shard is a binding whose
//! name starts with `SHARD_`. A tenant's own rows all live in its one shard, so the gate
//! still runs inside each of its batches: a SCIM read stays one D1 call, wherever it lives.
//!
//! Two handles with different jobs: [`Databases::catalog`] for the list, and the shard
//! [`locate`] finds for a tenant. Nothing here runs a statement across shards; a read
//! of every tenant (the feed of everything, upkeep, the shard figures) asks each shard
//! for its own and merges.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::BTreeMap;

use super::Runtime;
use crate::store::catalog::{self, Figures};
use scim_core::scim::error::{quote, Error, Result};

/// A tenant as the catalog lists it.
pub use crate::store::catalog::Entry;
use crate::store::Executor;

/// The catalog's binding, which is a shard too.
pub const CATALOG: &str = "DB";
/// Every other shard's binding starts with this.
pub const SHARD_PREFIX: &str = "SHARD_";

/// Whether `binding` names a shard.
pub fn is_shard(binding: &str) -> bool {
    binding == CATALOG || binding.starts_with(SHARD_PREFIX)
}

/// The databases a deployment has.
pub trait Databases {
    type Db: Executor;
    /// `DB`: the list of tenants.
    fn catalog(&self) -> Result<Self::Db>;
    /// Every shard's binding, `DB` first, then the others in name order.
    fn bindings(&self) -> &[String];
    /// The shard of binding `binding`.
    fn shard(&self, binding: &str) -> Result<Self::Db>;
}

/// A tenant as the catalog lists it, with its shard's handle.
pub struct Located<D> {
    pub org: Entry,
    pub db: D,
}

/// 404 for a tenant the catalog does not list (and, in the same words, for one a key bound
/// to another tenant may not see).
pub fn not_found(sub: &str) -> Error {
    Error::not_found(format!("no tenant with subdomain '{}'", quote(sub)))
}

/// Tenant `sub` and its shard, from the catalog; 404 when there is none.
pub async fn locate<S: Databases>(s: &S, sub: &str) -> Result<Located<S::Db>> {
    let org = catalog::by_subdomain(&s.catalog()?, sub)
        .await?
        .ok_or_else(|| not_found(sub))?;
    let db = s.shard(&org.shard)?;
    Ok(Located { org, db })
}

/// Tenant `id` and its shard, if it is listed.
pub async fn locate_id<S: Databases>(s: &S, id: &str) -> Result<Option<Located<S::Db>>> {
    match catalog::by_id(&s.catalog()?, id).await? {
        Some(org) => {
            let db = s.shard(&org.shard)?;
            Ok(Some(Located { org, db }))
        }
        None => Ok(None),
    }
}

/// One shard as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub binding: String,
    pub open: bool,
    /// Its size in bytes, when known.
    pub bytes: Option<u64>,
    /// How many tenants the catalog places on it.
    pub tenants: i64,
}

/// Shards whose sizes differ by less than this count as the same size for placement.
pub const SAME_SIZE_BYTES: u64 = 1 << 20;

/// The shard a new tenant goes to: the open one with the fewest stored bytes (an
/// unmeasured one counts as empty). Shards within [`SAME_SIZE_BYTES`] of the smallest count as
/// equal (a new tenant fills no page yet, and a burst of creations would otherwise all go
/// to one shard): of those, the one with the fewest tenants, then the smaller, then the
/// first. `None` when every shard is closed.
pub fn choose(candidates: &[Candidate]) -> Option<&str> {
    let open = || candidates.iter().filter(|c| c.open);
    let least = open().map(|c| c.bytes.unwrap_or(0)).min()?;
    open()
        .filter(|c| c.bytes.unwrap_or(0) <= least.saturating_add(SAME_SIZE_BYTES))
        .min_by_key(|c| (c.tenants, c.bytes.unwrap_or(0)))
        .map(|c| c.binding.as_str())
}

/// Each shard's placement state: open unless the catalog says closed, and its size now
/// (one statement on each open shard, all at once).
pub async fn candidates<S: Databases>(s: &S) -> Result<Vec<Candidate>> {
    let catalog_db = s.catalog()?;
    let rows = catalog::shard_rows(&catalog_db).await?;
    let counts = catalog::per_shard(&catalog_db).await?;
    let open = |b: &str| rows.iter().find(|r| r.binding == b).is_none_or(|r| r.open);
    let count = |b: &str| counts.iter().find(|(s, _)| s == b).map_or(0, |(_, n)| *n);
    let probes = s.bindings().iter().map(|b| async move {
        let open = open(b);
        let bytes = if open {
            catalog::size(&s.shard(b)?).await?
        } else {
            None
        };
        Ok(Candidate {
            binding: b.clone(),
            open,
            bytes,
            tenants: count(b),
        })
    });
    super::all_at_once(probes).await.into_iter().collect()
}

/// Where a new tenant goes: the shard `named` (any configured one, open or not: the
/// operator's choice), else [`choose`]'s.
pub async fn place<S: Databases>(s: &S, named: Option<&str>) -> Result<String> {
    if let Some(named) = named {
        return if s.bindings().iter().any(|b| b == named) {
            Ok(named.to_string())
        } else {
            Err(Error::invalid(format!(
                "no shard '{}'; the shards are {}",
                quote(named),
                s.bindings().join(", ")
            )))
        };
    }
    let all = candidates(s).await?;
    choose(&all).map(str::to_string).ok_or_else(|| {
        Error::state_conflict(
            "every shard is closed for placement: open one (PATCH /admin/v1/shards/{binding}) \
             or name a shard",
        )
    })
}

/// One shard as `GET /admin/v1/shards` shows it.
pub struct ShardView {
    pub binding: String,
    pub open: bool,
    pub figures: Figures,
}

/// Every shard's figures, counted on the shards themselves (all at once); the sizes measured
/// are remembered in the catalog.
pub async fn figures<S: Databases, R: Runtime>(s: &S, rt: &R) -> Result<Vec<ShardView>> {
    let catalog_db = s.catalog()?;
    let rows = catalog::shard_rows(&catalog_db).await?;
    let counted = super::all_at_once(s.bindings().iter().map(|b| async move {
        let figures = catalog::figures(&s.shard(b)?).await?;
        Ok::<_, Error>((b.clone(), figures))
    }))
    .await;
    let mut views = Vec::new();
    for counted in counted {
        let (binding, figures) = counted?;
        if let Some(bytes) = figures.bytes {
            catalog::record_size(&catalog_db, &binding, bytes, rt.now()).await?;
        }
        let open = rows
            .iter()
            .find(|r| r.binding == binding)
            .is_none_or(|r| r.open);
        views.push(ShardView {
            binding,
            open,
            figures,
        });
    }
    Ok(views)
}

/// Open or close shard `binding` for placement (404 for a binding that is no shard here).
pub async fn set_open<S: Databases>(s: &S, binding: &str, open: bool) -> Result<()> {
    if !s.bindings().iter().any(|b| b == binding) {
        return Err(Error::not_found(format!("no shard '{}'", quote(binding))));
    }
    Ok(catalog::set_open(&s.catalog()?, binding, open).await?)
}

/// A position in the change feed: for each database, the `seq` of the last event read among
/// those first committed there; and, for one tenant's feed, how far its current shard
/// has been read (`scan`).
///
/// Opaque to clients (base64url of `DB=12,SHARD_2=5` and `|SHARD_2=77`): it names its
/// databases, so that one cursor resumes every shard's feed where it stopped, a shard added
/// later (absent from it) is read from its start, and an event a move copied to another shard
/// (which keeps where it was first committed) is known as read or not wherever it now is. A
/// bare number is read as a position in `DB` (the cursor of the releases before shards).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    births: BTreeMap<String, i64>,
    scan: Option<(String, i64)>,
}

/// The largest seq D1 binds exactly (2^53 - 1).
const MAX_SEQ: i64 = (1 << 53) - 1;

/// Longest cursor accepted (a thousand shards' positions fit).
const MAX_CURSOR_LEN: usize = 40_000;

/// A number a cursor holds: decimal digits, at most [`MAX_SEQ`].
pub(crate) fn seq(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|n| *n <= MAX_SEQ)
}

/// `BINDING=seq`, the binding a shard's.
fn position(part: &str) -> Option<(String, i64)> {
    let (binding, n) = part.split_once('=')?;
    let named = is_shard(binding)
        && binding
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    named.then_some(())?;
    Some((binding.to_string(), seq(n)?))
}

impl Cursor {
    /// Parse a cursor this API gave out (`None` or empty: from the start).
    pub fn parse(text: Option<&str>) -> Result<Cursor> {
        let text = match text {
            None | Some("") => return Ok(Cursor::default()),
            Some(t) => t,
        };
        let bad = || {
            Error::invalid(format!(
                "'{}' is not a cursor this API gave out; pass back the 'cursor' or 'next' of a \
                 previous page",
                quote(text)
            ))
        };
        if let Some(n) = seq(text) {
            return Ok(Cursor {
                births: BTreeMap::from([(CATALOG.to_string(), n)]),
                scan: None,
            });
        }
        if text.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let plain = String::from_utf8(bytes).map_err(|_| bad())?;
        let (births, scan) = match plain.split_once('|') {
            Some((b, s)) => (b, Some(position(s).ok_or_else(bad)?)),
            None => (plain.as_str(), None),
        };
        let mut positions = BTreeMap::new();
        for part in births.split(',').filter(|p| !p.is_empty()) {
            let (binding, n) = position(part).ok_or_else(bad)?;
            positions.insert(binding, n);
        }
        Ok(Cursor {
            births: positions,
            scan,
        })
    }

    /// The seq read up to among the events first committed in `binding` (0: none yet).
    pub fn at(&self, binding: &str) -> i64 {
        self.births.get(binding).copied().unwrap_or(0)
    }

    /// Read an event first committed in `binding` as its `seq` there.
    pub fn advance(&mut self, binding: &str, seq: i64) {
        self.births.insert(binding.to_string(), seq);
    }

    /// How far shard `binding` has been read in one tenant's feed (0: not yet).
    pub fn scanned(&self, binding: &str) -> i64 {
        match &self.scan {
            Some((b, n)) if b == binding => *n,
            _ => 0,
        }
    }

    /// One tenant's feed has been read up to `seq` in shard `binding`.
    pub fn scan(&mut self, binding: &str, seq: i64) {
        self.scan = Some((binding.to_string(), seq));
    }

    /// The read positions as a JSON object (binding -> seq), as the feed's SQL takes them.
    pub fn births_json(&self) -> String {
        serde_json::to_string(&self.births).unwrap_or_else(|_| "{}".into())
    }

    /// The cursor as the API gives it out.
    pub fn encode(&self) -> String {
        let plain: Vec<String> = self
            .births
            .iter()
            .map(|(b, n)| format!("{b}={n}"))
            .collect();
        let mut text = plain.join(",");
        if let Some((b, n)) = &self.scan {
            text.push_str(&format!("|{b}={n}"));
        }
        URL_SAFE_NO_PAD.encode(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(binding: &str, open: bool, bytes: Option<u64>) -> Candidate {
        Candidate {
            binding: binding.into(),
            open,
            bytes,
            tenants: 0,
        }
    }

    #[test]
    fn a_new_organisation_goes_to_the_smallest_open_shard() {
        let all = [
            c("DB", true, Some(900)),
            c("SHARD_2", false, Some(10)),
            c("SHARD_3", true, Some(300)),
            c("SHARD_4", true, Some(300)),
        ];
        assert_eq!(choose(&all), Some("SHARD_3"));
        assert_eq!(
            choose(&[c("DB", true, Some(5)), c("SHARD_2", true, None)]),
            Some("SHARD_2")
        );
        assert_eq!(choose(&[c("DB", false, None)]), None);
        let fuller = Candidate {
            tenants: 3,
            ..c("DB", true, Some(300))
        };
        assert_eq!(
            choose(&[fuller, c("SHARD_2", true, Some(300))]),
            Some("SHARD_2")
        );
    }

    #[test]
    fn cursors_name_their_databases_and_round_trip() {
        let mut cur = Cursor::default();
        assert_eq!(cur.at("DB"), 0);
        cur.advance("DB", 12);
        cur.advance("SHARD_2", 5);
        let text = cur.encode();
        assert!(!text.contains('='), "{text}");
        assert_eq!(Cursor::parse(Some(&text)), Ok(cur.clone()));
        cur.scan("SHARD_2", 77);
        let scanned = Cursor::parse(Some(&cur.encode())).unwrap();
        assert_eq!((scanned.scanned("SHARD_2"), scanned.scanned("DB")), (77, 0));
        assert_eq!(scanned.births_json(), r#"{"DB":12,"SHARD_2":5}"#);
        assert_eq!(Cursor::parse(Some("42")).map(|c| c.at("DB")), Ok(42));
        assert_eq!(Cursor::parse(None), Ok(Cursor::default()));
        for bad in [
            "-1",
            "abc!",
            "9007199254740992",
            &URL_SAFE_NO_PAD.encode("DB=1,other=2"),
            &URL_SAFE_NO_PAD.encode("DB=x"),
            &URL_SAFE_NO_PAD.encode("DB"),
        ] {
            assert_eq!(
                Cursor::parse(Some(bad)).map_err(|e| e.status),
                Err(400),
                "{bad}"
            );
        }
    }
}
