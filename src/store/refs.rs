//! References between resources, read as rows of `memberships`: a group's `members` and a
//! user's `groups` (RFC 7643 §4.1.2, §4.2).
//!
//! Neither is ever aggregated into one SQL value (D1 caps a value at 2 MB: a group of 100,000
//! members, or a user in 5,000 groups with long names, would not fit). Rows are read in keyset
//! pages of [`PAGE`] on (owner, referenced id), so a single resource's references are always
//! returned whole. A list page is cut short instead, once its resources' references pass
//! [`PAGE_BUDGET`] rows (RFC 7644 §3.4.2.4 lets a page hold fewer than `count` resources), so
//! no list request reads an unbounded number of rows.
//!
//! The owners of a page travel as one JSON array parameter (`json_each`), so a page of 200
//! resources is one statement, whatever D1's 100-parameter limit.

use crate::store::row::from_row;
use crate::store::row::FromRow;
use std::collections::HashMap;

use super::{Executor, Outcome, Param, Result, Stmt};
use scim_core::scim::resource::{MemberRef, RefType};

/// A keyset position: (owner id, referenced id) of the last row read.
pub type Position = (String, String);

/// Rows per page of references.
pub const PAGE: usize = 5000;

/// References a list page may carry before it stops adding resources.
pub const PAGE_BUDGET: u64 = 10_000;

/// Which references: the shape of the query over `memberships m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refs {
    /// A group's members: owner `m.group_id`, reference `m.member_id`.
    Members,
    /// A user's direct groups: owner `m.member_id`, reference `m.group_id`.
    Groups,
}

impl Refs {
    /// The attribute the references are (RFC 7643 §4.1.2, §4.2).
    pub fn attribute(self) -> &'static str {
        match self {
            Refs::Members => "members",
            Refs::Groups => "groups",
        }
    }

    /// `(owner column, referenced column)`.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Refs::Members => ("m.group_id", "m.member_id"),
            Refs::Groups => ("m.member_id", "m.group_id"),
        }
    }

    /// The count of references of the row `alias` (a `groups g` or `users u` row), as a column
    /// for a list page: one index range per row.
    pub fn count_column(self, alias: &str) -> String {
        let (owner, _) = self.columns();
        format!(
            "(SELECT COUNT(*) FROM memberships m WHERE m.tenant_id = {alias}.tenant_id \
             AND {owner} = {alias}.id) AS ref_count"
        )
    }

    /// One page of the references of `owners`, after the position `after`.
    pub fn page(
        self,
        tenant_id: &str,
        owners: &[String],
        after: Option<&(String, String)>,
    ) -> Stmt {
        let owners_json = serde_json::Value::from(owners.to_vec()).to_string();
        self.page_of(
            tenant_id,
            "SELECT value FROM json_each(?)",
            vec![owners_json.into()],
            after,
        )
    }

    /// The first page of the references of the resources a list statement selects (`ids`, the
    /// statement that selects their ids, with its parameters): sent in the list's own batch, so
    /// that a page and its references are one round trip.
    pub fn page_within(self, tenant_id: &str, ids: &str, ids_params: Vec<Param>) -> Stmt {
        self.page_of(tenant_id, ids, ids_params, None)
    }

    fn page_of(
        self,
        tenant_id: &str,
        owners_sql: &str,
        owners_params: Vec<Param>,
        after: Option<&(String, String)>,
    ) -> Stmt {
        let (owner, referenced) = self.columns();
        let select = match self {
            Refs::Members => {
                "SELECT m.group_id AS owner, m.member_id AS value, m.member_type AS kind, \
                 m.display FROM memberships m"
            }
            Refs::Groups => {
                "SELECT m.member_id AS owner, m.group_id AS value, 'direct' AS kind, \
                 g.display_name AS display FROM memberships m \
                 JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id"
            }
        };
        let mut params: Vec<Param> = vec![tenant_id.into()];
        params.extend(owners_params);
        let position = match after {
            Some((o, r)) => {
                params.push(o.as_str().into());
                params.push(r.as_str().into());
                format!("AND ({owner}, {referenced}) > (?, ?)")
            }
            None => String::new(),
        };
        params.push(Param::Int(i64::try_from(PAGE).unwrap_or(i64::MAX)));
        Stmt::new(
            format!(
                "{select} WHERE m.tenant_id = ? AND {owner} IN ({owners_sql}) \
                 {position} ORDER BY {owner}, {referenced} LIMIT ?"
            ),
            params,
        )
    }
}

#[derive(Debug)]
pub struct RefRow {
    owner: String,
    value: String,
    kind: RefType,
    display: Option<String>,
}
from_row!(RefRow {
    owner,
    value,
    kind,
    display
});

impl crate::store::row::Column for RefType {
    fn read(v: serde_json::Value) -> Option<Self> {
        v.as_str().and_then(RefType::parse)
    }
}

/// Decode one page, and where the next starts if it was full.
pub fn decode_page(out: Outcome) -> Result<(Vec<RefRow>, Option<Position>)> {
    let rows = out.decode::<RefRow>()?;
    let next = match rows.last() {
        Some(r) if rows.len() >= PAGE => Some((r.owner.clone(), r.value.clone())),
        _ => None,
    };
    Ok((rows, next))
}

/// Read the references of `owners` from `after` to the end, page by page.
pub async fn read_rest<E: Executor>(
    db: &E,
    refs: Refs,
    tenant_id: &str,
    owners: &[String],
    mut after: Option<Position>,
    rows: &mut Vec<RefRow>,
) -> Result<()> {
    while let Some(position) = after {
        let out = db
            .query(refs.page(tenant_id, owners, Some(&position)))
            .await?;
        let (page, next) = decode_page(out)?;
        rows.extend(page);
        after = next;
    }
    Ok(())
}

/// A resource's row (the first row of `row`, decoded as `R`) and all its references: the row
/// and the first page of references in one batch, after the statements `before` (a write the
/// row then shows; none for a plain read), so a GET is one round trip unless the resource has
/// more than [`PAGE`] references. Returns the outcomes of `before`, and the row with them.
pub async fn row_with_refs<E: Executor, R: FromRow>(
    db: &E,
    before: Vec<Stmt>,
    row: Stmt,
    refs: Refs,
    tenant_id: &str,
    id: &str,
) -> Result<(Vec<Outcome>, Option<(R, Vec<MemberRef>)>)> {
    let owners = vec![id.to_string()];
    let n = before.len();
    let mut stmts = before;
    stmts.extend([row, refs.page(tenant_id, &owners, None)]);
    let mut all = db.batch(stmts).await?;
    let mut outs = all.split_off(n.min(all.len())).into_iter();
    let Some(found) = outs.next().map(|o| o.first::<R>()).transpose()?.flatten() else {
        return Ok((all, None));
    };
    let (mut rows, next) = match outs.next() {
        Some(o) => decode_page(o)?,
        None => (vec![], None),
    };
    read_rest(db, refs, tenant_id, &owners, next, &mut rows).await?;
    Ok((
        all,
        Some((found, by_owner(rows).remove(id).unwrap_or_default())),
    ))
}

/// Read all references of `owners`. `first` is their first page if it was read already
/// ([`Refs::page_within`]), perhaps with rows of other owners, which are left out.
pub async fn read_all<E: Executor>(
    db: &E,
    refs: Refs,
    tenant_id: &str,
    owners: &[String],
    first: Option<Outcome>,
) -> Result<HashMap<String, Vec<MemberRef>>> {
    if owners.is_empty() {
        return Ok(HashMap::new());
    }
    let out = match first {
        Some(out) => out,
        None => db.query(refs.page(tenant_id, owners, None)).await?,
    };
    let (mut rows, next) = decode_page(out)?;
    // The rest, if the first page was full, from where it stopped: pages run in (owner,
    // referenced) order, so the owners asked for now continue from the same position.
    read_rest(db, refs, tenant_id, owners, next, &mut rows).await?;
    let mut found = by_owner(rows);
    found.retain(|owner, _| owners.contains(owner));
    Ok(found)
}

/// Group rows by owner, each list sorted by display name, then id.
pub fn by_owner(rows: Vec<RefRow>) -> HashMap<String, Vec<MemberRef>> {
    let mut out: HashMap<String, Vec<MemberRef>> = HashMap::new();
    for r in rows {
        out.entry(r.owner).or_default().push(MemberRef {
            id: r.value,
            kind: r.kind,
            display: r.display,
        });
    }
    for refs in out.values_mut() {
        refs.sort_by(|a, b| (&a.display, &a.id).cmp(&(&b.display, &b.id)));
    }
    out
}

/// How many resources of a page to keep: the longest prefix whose references stay within
/// [`PAGE_BUDGET`], and never fewer than one (a client paging on must always move forward).
pub fn within_budget(counts: impl IntoIterator<Item = i64>) -> usize {
    let mut total: u64 = 0;
    let mut keep: usize = 0;
    for c in counts {
        total = total.saturating_add(u64::try_from(c).unwrap_or(0));
        if keep > 0 && total > PAGE_BUDGET {
            break;
        }
        keep = keep.saturating_add(1);
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_a_prefix_and_at_least_one() {
        assert_eq!(within_budget([]), 0);
        assert_eq!(
            within_budget([20_000]),
            1,
            "one big resource still comes whole"
        );
        assert_eq!(within_budget([20_000, 1]), 1);
        assert_eq!(within_budget([4_000, 4_000, 2_000, 1]), 3);
        assert_eq!(within_budget([0; 200]), 200);
        assert_eq!(within_budget([-5, 3]), 2);
    }
}
