//! What users and groups share in the store: the row a resource is read as ([`Stored`]), and
//! the statements that read a page, read one, and delete one, for either table ([`Table`]).
//!
//! A resource's references (a user's `groups`, a group's `members`) are rows of `memberships`
//! read beside it ([`super::refs`]); which they are is the table's ([`Table::refs`]).

use crate::store::row::from_row;
use serde_json::{Map, Value};

use super::listing::{list_page, ListQuery};
use super::refs;
use super::table::Table;
use super::trail::Trail;
use super::{memberships, Delete, Executor, Result, Stmt, StoreError};

use scim_core::scim::resource::MemberRef;

/// A user or a group as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: String,
    pub data: Map<String, Value>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Whether the enterprise `manager.value` names a user of the same tenant.
    pub manager_exists: bool,
    /// A user's groups or a group's members; `None` when they were not read.
    pub refs: Option<Vec<MemberRef>>,
}

struct Row {
    id: String,
    data: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    manager_exists: i64,
    /// The resource's reference count, when the query asked for it (a list page with them).
    ref_count: i64,
}
from_row!(Row { id, data, version, created_at, updated_at; default manager_exists, ref_count });

impl Row {
    fn into_stored(self) -> Result<Stored> {
        let data = match serde_json::from_str(&self.data) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(StoreError::Other(format!(
                    "{} has a corrupt data column",
                    self.id
                )))
            }
        };
        Ok(Stored {
            id: self.id,
            data,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            manager_exists: self.manager_exists != 0,
            refs: None,
        })
    }
}

/// One page of resources and the total that match, counted by the same WHERE clause, in one
/// batch. With references, each resource's, the page cut short once they pass
/// [`refs::PAGE_BUDGET`] rows (one more round trip, only when a resource of the page has any).
pub async fn list<E: Executor>(
    db: &E,
    table: Table,
    tenant_id: &str,
    q: &ListQuery<'_>,
    with_refs: bool,
) -> Result<(u64, Vec<Stored>)> {
    let (name, t) = (table.name(), table.alias());
    let select = if with_refs {
        let count = table.refs().count_column(t);
        format!("SELECT {}, {count} FROM {name} {t}", table.columns())
    } else {
        format!("SELECT {} FROM {name} {t}", table.columns())
    };
    let refs = with_refs.then(|| table.refs());
    let (n, mut rows, first) = list_page::<_, Row>(db, table, &select, tenant_id, q, refs).await?;
    if !with_refs {
        let page = rows
            .into_iter()
            .map(Row::into_stored)
            .collect::<Result<_>>()?;
        return Ok((n, page));
    }
    rows.truncate(refs::within_budget(rows.iter().map(|r| r.ref_count)));
    // Resources without references need none; the first page of references came with the
    // list, so only resources with more than a page of them need another read.
    let owners: Vec<String> = rows
        .iter()
        .filter(|r| r.ref_count > 0)
        .map(|r| r.id.clone())
        .collect();
    let mut found = refs::read_all(db, table.refs(), tenant_id, &owners, first).await?;
    let mut page = Vec::with_capacity(rows.len());
    for row in rows {
        let mut stored = row.into_stored()?;
        stored.refs = Some(found.remove(&stored.id).unwrap_or_default());
        page.push(stored);
    }
    Ok((n, page))
}

/// The statement that reads one resource.
pub(crate) fn row_stmt(table: Table, tenant_id: &str, id: &str) -> Stmt {
    let (name, t) = (table.name(), table.alias());
    Stmt::new(
        format!(
            "SELECT {} FROM {name} {t} WHERE {t}.tenant_id = ? AND {t}.id = ?",
            table.columns()
        ),
        vec![tenant_id.into(), id.into()],
    )
}

/// Decode the row `row_stmt` read, if there was one.
pub(crate) fn decode_row(out: super::Outcome) -> Result<Option<Stored>> {
    out.first::<Row>()?.map(Row::into_stored).transpose()
}

/// One resource; with references, all of them, the first page in the same batch as the row.
pub async fn get<E: Executor>(
    db: &E,
    table: Table,
    tenant_id: &str,
    id: &str,
    with_refs: bool,
) -> Result<Option<Stored>> {
    if !with_refs {
        return decode_row(db.query(row_stmt(table, tenant_id, id)).await?);
    }
    Ok(get_after(db, table, tenant_id, id, vec![]).await?.1)
}

/// [`get`] with references, after `before` in the same batch (a write it then shows): the
/// outcomes of `before`, and the resource (`None`: there is none).
pub async fn get_after<E: Executor>(
    db: &E,
    table: Table,
    tenant_id: &str,
    id: &str,
    before: Vec<Stmt>,
) -> Result<(Vec<super::Outcome>, Option<Stored>)> {
    let row = row_stmt(table, tenant_id, id);
    let (outs, found) =
        refs::row_with_refs::<_, Row>(db, before, row, table.refs(), tenant_id, id).await?;
    let Some((row, references)) = found else {
        return Ok((outs, None));
    };
    let mut stored = row.into_stored()?;
    stored.refs = Some(references);
    Ok((outs, Some(stored)))
}

/// Delete a resource, only at `if_version` when given, with what hangs on it (a user's values,
/// a group's members), and remove it from every group it was in; and tell from the same batch
/// whether it was deleted, missing, or at another version.
pub async fn delete<E: Executor>(
    db: &E,
    table: Table,
    tenant_id: &str,
    id: &str,
    if_version: Option<i64>,
    now: i64,
    trail: &Trail<'_>,
) -> Result<Delete> {
    let name = table.name();
    let gone = format!("NOT EXISTS (SELECT 1 FROM {name} WHERE tenant_id = ? AND id = ?)");
    let owned = match table {
        Table::Users => "DELETE FROM user_values WHERE tenant_id = ? AND user_id = ?",
        Table::Groups => "DELETE FROM memberships WHERE tenant_id = ? AND group_id = ?",
    };
    // A deleted group's users may lose the role it gave them: noted while its members are
    // there, re-roled once it is gone.
    let (noted, re_role) = match table {
        Table::Groups => {
            super::roles::around_group_delete(tenant_id, id, &format!("d_{id}_{now}"), now)
        }
        Table::Users => (vec![], vec![]),
    };
    // What the delete records goes first: it reads the row the delete removes.
    let mut stmts = noted;
    stmts.extend(trail.before_delete(table, tenant_id, id, now, if_version));
    stmts.push(memberships::forget_member_events(
        tenant_id, id, name, now, if_version,
    ));
    let first = stmts.len();
    stmts.extend([
        Stmt::new(
            format!(
                "DELETE FROM {name} WHERE tenant_id = ? AND id = ? AND (? IS NULL OR version = ?)"
            ),
            vec![
                tenant_id.into(),
                id.into(),
                if_version.into(),
                if_version.into(),
            ],
        ),
        Stmt::new(
            format!("{owned} AND {gone}"),
            vec![tenant_id.into(), id.into(), tenant_id.into(), id.into()],
        ),
    ]);
    stmts.extend(memberships::forget_member(tenant_id, id, name, now));
    stmts.extend(re_role);
    stmts.push(Stmt::new(
        format!("SELECT EXISTS (SELECT 1 FROM {name} WHERE tenant_id = ? AND id = ?) AS e"),
        vec![tenant_id.into(), id.into()],
    ));
    let outs = db.batch(stmts).await?;
    if outs.get(first).map_or(0, |o| o.changes) > 0 {
        return Ok(Delete::Deleted);
    }
    struct Exists {
        e: i64,
    }
    from_row!(Exists { e });
    let still = match outs.into_iter().last() {
        Some(o) => o.first::<Exists>()?.is_some_and(|x| x.e != 0),
        None => false,
    };
    Ok(if still {
        Delete::Stale
    } else {
        Delete::NotFound
    })
}
