//! List queries shared by every resource table: the tenant-scoped WHERE clause built from a
//! filter, the ORDER BY, and the count and the page run as one batch (one round trip), so
//! `totalResults` is counted by exactly the WHERE clause that selects the page.

use crate::store::row::from_row;
use crate::store::row::FromRow;

use super::filter_sql::{condition, narrows, sort_expr, Condition};
use super::refs::Refs;
use super::table::Table;
use super::{Executor, Outcome, Param, Result, Stmt, StoreError};
use scim_core::scim::filter::Filter;
use scim_core::scim::schema::AttrRef;

/// D1's limit on bound parameters per statement.
pub const MAX_PARAMS: usize = 100;

/// What a list request asks for (RFC 7644 §3.4.2).
pub struct ListQuery<'a> {
    pub filter: Option<&'a Filter>,
    pub sort_by: Option<&'a AttrRef>,
    pub descending: bool,
    /// 1-based.
    pub start_index: u64,
    pub count: u64,
    /// The default order's key (`created_at`, `id`) of the row just before `start_index`, when
    /// the caller knows it from the previous page: the page then seeks past it instead of
    /// stepping over `start_index - 1` rows (sequential paging through a large tenant,
    /// as Okta's import does). Ignored under `sortBy`.
    pub after: Option<(i64, &'a str)>,
}

/// The WHERE clause of a list query and its parameters: tenant first, then the filter's.
pub fn list_where(table: Table, tenant_id: &str, filter: Option<&Filter>) -> Result<Condition> {
    let c = match filter {
        Some(f) => condition(f, tenant_id, table)?,
        None => Condition {
            sql: "1".into(),
            params: vec![],
        },
    };
    let mut params = vec![Param::Text(tenant_id.to_string())];
    params.extend(c.params);
    let t = table.alias();
    Ok(Condition {
        sql: format!("{t}.tenant_id = ? AND {}", c.sql),
        params,
    })
}

struct Count {
    n: i64,
}
from_row!(Count { n });

/// The page's ORDER BY: `sortBy` (unassigned values last either way), else the default order.
fn order_by(q: &ListQuery<'_>, table: Table, narrow: bool) -> Result<String> {
    let t = table.alias();
    Ok(match q.sort_by {
        Some(a) => {
            let e = sort_expr(a, table)?;
            let dir = if q.descending { "DESC" } else { "ASC" };
            format!("({e}) IS NULL, {e} {dir}, {t}.created_at, {t}.id")
        }
        // `+` keeps SQLite from taking this order from `*_by_created` (see `narrows`).
        None if narrow => format!("+{t}.created_at, {t}.id"),
        None => format!("{t}.created_at, {t}.id"),
    })
}

/// The page's WHERE clause and its parameters, ending with LIMIT's and OFFSET's: past the
/// previous page's last row when the caller knows it (and its two values fit beside the
/// filter's), else `startIndex - 1` rows skipped.
fn seek_or_skip(q: &ListQuery<'_>, table: Table, w: Condition) -> (String, Vec<Param>) {
    let t = table.alias();
    let room = w.params.len().saturating_add(4) <= MAX_PARAMS;
    let (mut page_where, mut params) = (w.sql, w.params);
    let offset = match q.after.filter(|_| q.sort_by.is_none() && room) {
        Some((created_at, id)) => {
            page_where.push_str(&format!(" AND ({t}.created_at, {t}.id) > (?, ?)"));
            params.push(Param::Int(created_at));
            params.push(id.into());
            0
        }
        None => q.start_index.saturating_sub(1).min(i64::MAX as u64) as i64,
    };
    params.push(Param::Int(q.count.min(i64::MAX as u64) as i64));
    params.push(Param::Int(offset));
    (page_where, params)
}

/// One page of rows (selected by `select`, which names the table with its alias), the total
/// that match, and with `refs`, the first page of the rows' references, read in the same batch
/// (`None` when the filter leaves no room for the extra statement's parameters).
pub async fn list_page<E: Executor, R: FromRow>(
    db: &E,
    table: Table,
    select: &str,
    tenant_id: &str,
    q: &ListQuery<'_>,
    refs: Option<Refs>,
) -> Result<(u64, Vec<R>, Option<Outcome>)> {
    let (name, t) = (table.name(), table.alias());
    let w = list_where(table, tenant_id, q.filter)?;
    if w.params.len().saturating_add(2) > MAX_PARAMS {
        return Err(StoreError::TooManyParameters {
            needed: w.params.len().saturating_add(2),
        });
    }
    // Unfiltered: the row the tables' triggers keep (migrations/0016_resource_counts.sql), a
    // seek whatever the tenant's size; filtered: the matches, counted.
    let count = match q.filter {
        None => Stmt::new(
            "SELECT coalesce((SELECT n FROM resource_counts WHERE tenant_id = ? AND kind = ?), 0) \
             AS n",
            vec![tenant_id.into(), name.into()],
        ),
        Some(_) => Stmt::new(
            format!("SELECT COUNT(*) AS n FROM {name} {t} WHERE {}", w.sql),
            w.params.clone(),
        ),
    };
    if q.count == 0 {
        let n = db.query(count).await?.first::<Count>()?.map_or(0, |c| c.n);
        return Ok((n.max(0) as u64, vec![], None));
    }
    let narrow = q.filter.is_some_and(|f| narrows(f, table));
    let order = order_by(q, table, narrow)?;
    let (page_where, params) = seek_or_skip(q, table, w);
    let tail = format!("WHERE {page_where} ORDER BY {order} LIMIT ? OFFSET ?");
    // The references' statement repeats the page's, for its ids: tenant, its parameters, and
    // its own LIMIT.
    let prefetch = refs
        .filter(|_| params.len().saturating_add(2) <= MAX_PARAMS)
        .map(|r| {
            if narrow {
                // Every match, unordered: a seek's few rows. Ordered and cut like the page,
                // SQLite would take the order from `*_by_created` (which covers `id`) and walk
                // the tenant; references of matches beyond the page are left out.
                let ids = format!("SELECT {t}.id FROM {name} {t} WHERE {page_where}");
                let n = params.len().saturating_sub(2);
                r.page_within(
                    tenant_id,
                    &ids,
                    params.get(..n).unwrap_or_default().to_vec(),
                )
            } else {
                let ids = format!("SELECT {t}.id FROM {name} {t} {tail}");
                r.page_within(tenant_id, &ids, params.clone())
            }
        });
    let page = Stmt::new(format!("{select} {tail}"), params);
    let mut stmts = vec![count, page];
    stmts.extend(prefetch);
    let mut outs = db.batch(stmts).await?.into_iter();
    let n = match outs.next() {
        Some(o) => o.first::<Count>()?.map_or(0, |c| c.n),
        None => 0,
    };
    let rows = match outs.next() {
        Some(o) => o.decode::<R>()?,
        None => vec![],
    };
    Ok((n.max(0) as u64, rows, outs.next()))
}
