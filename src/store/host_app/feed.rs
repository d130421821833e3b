//! Reading the change feed. Events are written by the changes themselves ([`crate::store::trail`],
//! [`crate::store::memberships`]); this module only reads them, rendered by SQL as the API returns
//! them (`{cursor, type, tenant, at, resourceId, data}`; the service fills `cursor`).
//!
//! Why a cursor never misses or repeats an event: `seq` is assigned inside the write's own
//! transaction and a D1 database runs one write at a time, so one shard's seqs become visible in
//! increasing order; a reader that has seen seq `n` there has seen every event committed there
//! below it. An event a move copied to another shard keeps where it was first committed
//! (`origin`, `origin_seq`), so a cursor that holds "read up to seq `n` of shard A", for every
//! shard, says the same of it wherever it now is.

use crate::store::row::from_row;
use serde_json::Value;

use crate::store::directory::instant;
use crate::store::{Executor, Param, Result, Stmt, StoreError};

/// An event as a feed page reads it: where it is in this shard (`seq`), where it was first
/// committed (`birth`, `bseq`: its own shard and seq unless it was copied here by a move), and
/// the event as the API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub tenant_id: String,
    pub seq: i64,
    pub birth: String,
    pub bseq: i64,
    pub event: Value,
}

struct LocatedRow {
    tenant_id: String,
    seq: i64,
    birth: String,
    bseq: i64,
    j: String,
}
from_row!(LocatedRow {
    tenant_id,
    seq,
    birth,
    bseq,
    j
});

fn located(out: crate::store::Outcome) -> Result<Vec<Located>> {
    let rows: Vec<LocatedRow> = out.decode()?;
    rows.into_iter()
        .map(|r| {
            let event = serde_json::from_str(&r.j)
                .map_err(|e| StoreError::Other(format!("JSON row: {e}")))?;
            Ok(Located {
                tenant_id: r.tenant_id,
                seq: r.seq,
                birth: r.birth,
                bseq: r.bseq,
                event,
            })
        })
        .collect()
}

/// The columns of a [`Located`] read, for the events aliased `e` of shard `here` (one bound
/// parameter, `here`).
fn located_columns() -> String {
    format!(
        "SELECT e.tenant_id, e.seq, coalesce(e.origin, ?) AS birth, coalesce(e.origin_seq, e.seq) AS bseq, \
         json_object('cursor', '', 'type', e.type, 'tenant', json_object('id', e.tenant_id, \
         'subdomain', CASE WHEN t.deleted_at IS NULL THEN t.subdomain END), \
         'at', {}, 'resourceId', e.resource_id, 'data', json(e.data)) AS j \
         FROM events e LEFT JOIN tenants t ON t.id = e.tenant_id",
        instant("e.at")
    )
}

/// Events not yet read by a cursor whose read positions are `births` (a JSON object: binding
/// -> the last seq read of the events first committed there).
const UNREAD: &str =
    "coalesce(e.origin_seq, e.seq) > coalesce(json_extract(?, '$.' || coalesce(e.origin, ?)), 0)";

fn typed(sql: &mut String, params: &mut Vec<Param>, types: &[String]) {
    if !types.is_empty() {
        sql.push_str(" AND e.type IN (SELECT value FROM json_each(?))");
        params.push(Value::from(types.to_vec()).to_string().into());
    }
}

/// A page of tenant `tenant_id`'s events on shard `here`, in this shard's commit order,
/// after position `scan` here, that a cursor of read positions `births` has not read, of
/// those committed at or after `since` (Unix ms; a webhook sends those after its creation); and the
/// newest seq the tenant has here (how far a page that came back short has looked).
#[allow(clippy::too_many_arguments)]
pub async fn read_tenant<E: Executor>(
    db: &E,
    here: &str,
    tenant_id: &str,
    births: &str,
    scan: i64,
    types: &[String],
    since: i64,
    limit: u32,
) -> Result<(Vec<Located>, i64)> {
    let mut sql = format!(
        "{} WHERE e.tenant_id = ? AND e.seq > ? AND {UNREAD} AND e.at >= ?",
        located_columns()
    );
    let mut params: Vec<Param> = vec![
        here.into(),
        tenant_id.into(),
        scan.into(),
        births.into(),
        here.into(),
        since.into(),
    ];
    typed(&mut sql, &mut params, types);
    sql.push_str(" ORDER BY e.seq LIMIT ?");
    params.push(i64::from(limit).into());
    let outs = db
        .batch(vec![
            Stmt::new(sql, params),
            Stmt::new(
                "SELECT coalesce(max(seq), 0) AS top FROM events WHERE tenant_id = ?",
                vec![tenant_id.into()],
            ),
        ])
        .await?;
    struct Top {
        top: i64,
    }
    from_row!(Top { top });
    let mut outs = outs.into_iter();
    let events = located(outs.next().unwrap_or_default())?;
    let top = outs
        .next()
        .unwrap_or_default()
        .first::<Top>()?
        .map_or(0, |t| t.top);
    Ok((events, top))
}

/// A tenant with unread copies on a shard: its id, where they were first committed, the
/// first one's seq on this shard, and the last one's seq where first committed.
pub type Pending = (String, String, i64, i64);

/// What one shard gives a page of every tenant's feed.
#[derive(Debug, Default)]
pub struct ShardPart {
    /// The events first committed here that the cursor has not read, in seq order.
    pub native: Vec<Located>,
    /// Per shard the cursor names, the events moves copied here from it that the cursor has not
    /// read, in the order they were first committed there.
    pub copied: Vec<(String, Vec<Located>)>,
    /// Tenants with copies here not yet read: (tenant, where first committed, the
    /// first such copy's seq here, the last one's seq where first committed). Their later
    /// events of another origin wait for those.
    pub pending: Vec<Pending>,
}

/// A [`Pending`] as its row reads.
struct PendingRow {
    tenant_id: String,
    origin: String,
    first: i64,
    last: i64,
}
from_row!(PendingRow {
    tenant_id,
    origin,
    first,
    last
});

/// One shard's part of a page of every tenant's feed, in one call: `limit + 1` events
/// of each stream at most (each a range seek: the events first committed here by seq, those
/// copied from shard `b` by their seq there), for a cursor at `positions` (every shard's).
pub async fn read_shard<E: Executor>(
    db: &E,
    here: &str,
    positions: &[(String, i64)],
    types: &[String],
    limit: u32,
) -> Result<ShardPart> {
    let at = |b: &str| {
        positions
            .iter()
            .find(|(p, _)| p == b)
            .map_or(0, |(_, n)| *n)
    };
    let more = i64::from(limit).saturating_add(1);
    let mut stmts = Vec::new();
    let mut native = format!("{} WHERE e.origin IS NULL AND e.seq > ?", located_columns());
    let mut params: Vec<Param> = vec![here.into(), at(here).into()];
    typed(&mut native, &mut params, types);
    native.push_str(" ORDER BY e.seq LIMIT ?");
    params.push(more.into());
    stmts.push(Stmt::new(native, params));
    for (b, n) in positions {
        let mut copied = format!(
            "{} WHERE e.origin = ? AND e.origin_seq > ?",
            located_columns()
        );
        let mut params: Vec<Param> = vec![here.into(), b.as_str().into(), (*n).into()];
        typed(&mut copied, &mut params, types);
        copied.push_str(" ORDER BY e.origin_seq LIMIT ?");
        params.push(more.into());
        stmts.push(Stmt::new(copied, params));
    }
    // Which tenants still have unread copies here (whatever their type), and from where.
    let unread: Vec<String> = positions
        .iter()
        .map(|_| "(origin = ? AND origin_seq > ?)".to_string())
        .collect();
    let mut params: Vec<Param> = Vec::new();
    for (b, n) in positions {
        params.push(b.as_str().into());
        params.push((*n).into());
    }
    stmts.push(Stmt::new(
        format!(
            "SELECT tenant_id, origin, min(seq) AS first, max(origin_seq) AS last FROM events \
             WHERE origin IS NOT NULL \
             AND ({}) GROUP BY tenant_id, origin",
            if unread.is_empty() {
                "0".to_string()
            } else {
                unread.join(" OR ")
            }
        ),
        params,
    ));
    let mut outs = db.batch(stmts).await?.into_iter();
    let native = located(outs.next().unwrap_or_default())?;
    let mut copied = Vec::new();
    for (b, _) in positions {
        copied.push((b.clone(), located(outs.next().unwrap_or_default())?));
    }
    let pending: Vec<PendingRow> = outs.next().unwrap_or_default().decode()?;
    Ok(ShardPart {
        native,
        copied,
        pending: pending
            .into_iter()
            .map(|p| (p.tenant_id, p.origin, p.first, p.last))
            .collect(),
    })
}

/// The newest seq, or 0 when there are none (where a new consumer that wants only what comes
/// next starts).
pub async fn latest<E: Executor>(db: &E, tenant_id: Option<&str>) -> Result<i64> {
    struct Row {
        seq: Option<i64>,
    }
    from_row!(Row { seq });
    let stmt = match tenant_id {
        Some(t) => Stmt::new(
            "SELECT max(seq) AS seq FROM events WHERE tenant_id = ?",
            vec![t.into()],
        ),
        None => Stmt::new("SELECT max(seq) AS seq FROM events", vec![]),
    };
    Ok(db
        .query(stmt)
        .await?
        .first::<Row>()?
        .and_then(|r| r.seq)
        .unwrap_or(0))
}
