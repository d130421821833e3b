//! Moving a tenant to another shard while it keeps being served.
//!
//! The plan is the one of a live migration, in four phases kept in the catalog (so that any
//! invocation, the request that started it or the Cron Trigger, carries it on, one at a time
//! under a lease):
//!
//! 1. **copy**: every table of the tenant, chunk by chunk, to the new shard, up to the
//!    newest event and log entry it had when the move started. Reads and writes go on in the old
//!    shard meanwhile.
//! 2. **catch-up**: what changed since, read from the tenant's own change feed (every
//!    write of a user or a group appends an event naming it): those users and groups are copied
//!    again as they are now, and the events and log entries appended since are copied after
//!    theirs. Rounds repeat until one finds little to do.
//! 3. **switch**: the old shard refuses the tenant's writes for at most
//!    [`FREEZE_MS`] (503 with `Retry-After`, which Entra and Okta retry; reads go on), the last
//!    round runs, the tokens, console links and sessions and aggregated refusals are copied whole,
//!    and the catalog points at the new shard. The old shard's row then says the tenant
//!    left; an isolate that still sends it there finds the gate shut and asks the catalog.
//!    Should the switch take too long, it is abandoned and its freeze lapses by itself: the
//!    tenant is never left unwritable, and nothing is lost (the next round starts again).
//! 4. **cleanup**: after [`GRACE_MS`] (log entries written after their responses may still be
//!    on their way to the old shard; they are copied first), the old shard's rows are purged in
//!    chunks.
//!
//! Events keep where they were first committed (`origin`, `origin_seq`), so a feed cursor from
//! before the move resumes after it on the new shard without a repeat or a gap
//! ([`super::host_app::feed`]).

use serde::Serialize;
use serde_json::Value;

use super::shards::{self, Databases};
use super::Runtime;
use crate::store::catalog;
use crate::store::moves::{
    self as store, Table, EVENTS, GROUPS, LOGS, MEMBERSHIPS, USERS, USER_VALUES,
};
use crate::store::row::{self, from_row};
use crate::store::upkeep::purge_round;
use crate::store::{Executor, Param, StoreError};
use scim_core::scim::error::{quote, Error, Result};
use std::cell::Cell;

/// How long the old shard refuses the tenant's writes, at most, while it switches.
pub const FREEZE_MS: i64 = 5_000;
/// A switch that has taken this long is abandoned (its freeze lapses unused).
const SWITCH_MAX_MS: i64 = 4_000;
/// How long after the switch the old shard's rows are purged.
pub const GRACE_MS: i64 = 10_000;
/// D1 calls one run makes, at most: a chunk is three (read, write, the move's state), a switch
/// a few dozen, so a run stops well within the 1,000 an invocation may make.
const MAX_CALLS_PER_RUN: u32 = 600;

/// An executor whose calls are counted in a shared tally.
struct Counted<'a, E>(E, &'a Cell<u32>);

impl<E: Executor> Executor for Counted<'_, E> {
    async fn query(
        &self,
        stmt: crate::store::Stmt,
    ) -> std::result::Result<crate::store::Outcome, StoreError> {
        self.1.set(self.1.get().saturating_add(1));
        self.0.query(stmt).await
    }

    async fn batch(
        &self,
        stmts: Vec<crate::store::Stmt>,
    ) -> std::result::Result<Vec<crate::store::Outcome>, StoreError> {
        self.1.set(self.1.get().saturating_add(1));
        self.0.batch(stmts).await
    }
}

/// How long a driver holds the move, beyond its own budget.
const LEASE_MARGIN_MS: i64 = 15_000;
/// A catch-up round that finds at most this many changed users and groups leads to the switch.
const SMALL_ROUND: usize = 200;
/// Events whose changes one catch-up round copies again, at most.
const EVENTS_PER_ROUND: i64 = 1_000;
/// Changed users or groups copied again per batch.
const IDS_PER_ROUND: usize = 50;
/// Never frozen past this (the largest integer D1 binds exactly): "until the move is done".
const FOREVER: i64 = (1 << 53) - 1;

/// The table of step `step` of the bulk copy: every table of the tenant's but its users'
/// values (which travel with their users). Tokens, console and OAuth rows are copied again at the
/// switch; events and log entries up to where they stood when the move started.
fn bulk(step: usize) -> Option<&'static Table> {
    store::TABLES
        .iter()
        .copied()
        .filter(|t| t.name != USER_VALUES.name)
        .nth(step)
}

/// A move's state, as the catalog keeps it (JSON) and the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Move {
    pub from: String,
    pub to: String,
    /// `copy`, `catchup`, `cleanup`, then `done`; or `cancelled`.
    pub phase: String,
    /// The step of the bulk copy (a table, see `bulk`), and the last key copied there.
    pub step: usize,
    pub after: Vec<Value>,
    /// Rows copied so far (a row changed during the move is copied again, and counted again).
    pub rows_copied: i64,
    /// The tenant's rows when the move started.
    pub rows_at_start: i64,
    /// The old shard's events and log entries of the tenant copied up to (seq).
    pub events: i64,
    pub logs: i64,
    pub started_at: i64,
    pub catchup_rounds: i64,
    pub switched_at: Option<i64>,
    /// How long the switch refused writes.
    pub frozen_ms: Option<i64>,
    pub finished_at: Option<i64>,
    /// The last failure, if any (the move is retried from where it stood).
    pub error: Option<String>,
}
from_row!(Move {
    from,
    to,
    phase,
    rows_copied = "rowsCopied",
    rows_at_start = "rowsAtStart",
    events,
    logs,
    started_at = "startedAt",
    switched_at = "switchedAt",
    frozen_ms = "frozenMs",
    finished_at = "finishedAt",
    error;
    default step, after, catchup_rounds = "catchupRounds"
});

impl Move {
    pub fn running(&self) -> bool {
        matches!(self.phase.as_str(), "copy" | "catchup" | "cleanup")
    }
}

/// The move recorded for a tenant, if any.
pub fn of(moving: Option<&str>) -> Option<Move> {
    moving.and_then(|m| row::from_json(m).ok())
}

fn json(m: &Move) -> Result<String> {
    serde_json::to_string(m).map_err(|e| Error::internal(format!("move state: {e}")))
}

/// Start moving tenant `sub` to shard `to`: its rows are copied from now on (the
/// caller drives the copy, [`drive`]). 409 while a move runs, or while `to` still purges an
/// earlier copy of it.
pub async fn start<S: Databases, R: Runtime>(s: &S, rt: &R, sub: &str, to: &str) -> Result<Move> {
    let at = shards::locate(s, sub).await?;
    if !s.bindings().iter().any(|b| b == to) {
        return Err(Error::invalid(format!(
            "no shard '{}'; the shards are {}",
            quote(to),
            s.bindings().join(", ")
        )));
    }
    if at.org.shard == to {
        return Err(Error::state_conflict(format!(
            "tenant '{}' is on {to} already",
            quote(sub)
        )));
    }
    let target = s.shard(to)?;
    if store::present(&target, &at.org.id).await? {
        return Err(Error::state_conflict(format!(
            "{to} still holds an earlier copy of tenant '{}' (being purged); retry in a few minutes",
            quote(sub)
        )));
    }
    let (events, logs) = store::newest(&at.db, &at.org.id).await?;
    let m = Move {
        from: at.org.shard.clone(),
        to: to.to_string(),
        phase: "copy".into(),
        step: 0,
        after: Vec::new(),
        rows_copied: 0,
        rows_at_start: store::rows_of(&at.db, &at.org.id).await?,
        events,
        logs,
        started_at: rt.now(),
        catchup_rounds: 0,
        switched_at: None,
        frozen_ms: None,
        finished_at: None,
        error: None,
    };
    let catalog_db = s.catalog()?;
    if !catalog::start_move(&catalog_db, &at.org.id, &json(&m)?).await? {
        return Err(Error::state_conflict(format!(
            "tenant '{}' is being moved already",
            quote(sub)
        )));
    }
    // The tenant's row on its new shard comes first (the others reference it), frozen:
    // nothing is written there but the copy until the switch.
    if let Err(e) = store::arrive(&at.db, &target, &at.org.id, FOREVER).await {
        let failed = Move {
            phase: "cancelled".into(),
            error: Some(e.detail()),
            ..m
        };
        catalog::save_move(
            &catalog_db,
            &at.org.id,
            &at.org.shard,
            Some(&json(&failed)?),
            false,
        )
        .await?;
        return Err(e.into());
    }
    Ok(m)
}

/// Cancel tenant `sub`'s move while it copies: it stays where it is, and the copy made
/// so far is purged from the new shard. 409 once it has switched, or while a driver holds it.
pub async fn cancel<S: Databases, R: Runtime>(s: &S, rt: &R, sub: &str) -> Result<Move> {
    let at = shards::locate(s, sub).await?;
    let catalog_db = s.catalog()?;
    let current = of(at.org.moving.as_deref())
        .filter(Move::running)
        .ok_or_else(|| Error::state_conflict(format!("tenant '{}' is not moving", quote(sub))))?;
    if current.phase == "cleanup" {
        return Err(Error::state_conflict(
            "the move has switched already; move the organisation back instead",
        ));
    }
    let now = rt.now();
    let org = catalog::take_lease(
        &catalog_db,
        &at.org.id,
        now,
        now.saturating_add(LEASE_MARGIN_MS),
    )
    .await?
    .ok_or_else(|| {
        Error::state_conflict("the move is copying a chunk right now; retry in a few seconds")
    })?;
    let mut m = of(org.moving.as_deref()).unwrap_or(current);
    store::freeze(&at.db, &org.id, None, None).await?;
    store::abandon(&s.shard(&m.to)?, &org.id, now).await?;
    m.phase = "cancelled".into();
    m.finished_at = Some(now);
    catalog::save_move(&catalog_db, &org.id, &org.shard, Some(&json(&m)?), false).await?;
    Ok(m)
}

/// Carry tenant `id`'s move on for at most `budget_ms`, unless another driver holds it.
/// Returns the move as it stands (`None`: none, or held elsewhere). A failure is recorded in the
/// move and retried by the next driver from where it stood.
pub async fn drive<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    id: &str,
    budget_ms: i64,
) -> Result<Option<Move>> {
    let catalog_db = s.catalog()?;
    let now = rt.clock();
    let lease = now
        .saturating_add(budget_ms)
        .saturating_add(LEASE_MARGIN_MS);
    let Some(org) = catalog::take_lease(&catalog_db, id, now, lease).await? else {
        return Ok(None);
    };
    let Some(mut m) = of(org.moving.as_deref()).filter(Move::running) else {
        catalog::save_move(&catalog_db, id, &org.shard, org.moving.as_deref(), false).await?;
        return Ok(None);
    };
    let deadline = now.saturating_add(budget_ms);
    let outcome = run(s, rt, id, &mut m, deadline).await;
    let shard = if m.switched_at.is_some() {
        m.to.clone()
    } else {
        m.from.clone()
    };
    m.error = outcome.err().map(|e| e.cause.unwrap_or(e.detail));
    catalog::save_move(&catalog_db, id, &shard, Some(&json(&m)?), false).await?;
    Ok(Some(m))
}

/// The phases, until the move is done or `deadline` passes.
async fn run<S: Databases, R: Runtime>(
    s: &S,
    rt: &R,
    id: &str,
    m: &mut Move,
    deadline: i64,
) -> Result<()> {
    // Every D1 call of the run is counted: an invocation may make 1,000 at most (D1's limit
    // per Worker invocation), and a run leaves room for the rest of its invocation.
    let calls = Cell::new(0u32);
    let from = Counted(s.shard(&m.from)?, &calls);
    let to = Counted(s.shard(&m.to)?, &calls);
    let catalog_db = Counted(s.catalog()?, &calls);
    while rt.clock() < deadline && calls.get() < MAX_CALLS_PER_RUN {
        match m.phase.as_str() {
            "copy" => {
                let Some(table) = bulk(m.step) else {
                    m.phase = "catchup".into();
                    continue;
                };
                let upto = match table.name {
                    "events" => Some(m.events),
                    "logs" => Some(m.logs),
                    _ => None,
                };
                let chunk =
                    store::copy_chunk(&from, &to, table, id, &m.from, &m.after, upto, None).await?;
                m.rows_copied = m
                    .rows_copied
                    .saturating_add(chunk.count)
                    .saturating_add(chunk.along);
                if chunk.count < table.chunk {
                    m.step = m.step.saturating_add(1);
                    m.after = Vec::new();
                } else {
                    m.after = chunk.last;
                }
                save(&catalog_db, id, m).await?;
            }
            "catchup" => {
                let (changed, caught_up) = catch_up(&from, &to, id, m).await?;
                m.catchup_rounds = m.catchup_rounds.saturating_add(1);
                if caught_up && changed <= SMALL_ROUND {
                    switch(&from, &to, &catalog_db, rt, id, m).await?;
                } else {
                    save(&catalog_db, id, m).await?;
                }
            }
            "cleanup" => {
                let due = m.switched_at.unwrap_or(0).saturating_add(GRACE_MS);
                let wait = due.saturating_sub(rt.clock());
                if wait > 0 {
                    if rt.clock().saturating_add(wait) >= deadline {
                        return Ok(());
                    }
                    rt.sleep(wait).await;
                }
                // The old row let go (again: the switch may have failed right before it), so that
                // an isolate still sending requests there asks the catalog, rather than read
                // a shard being emptied.
                store::depart(&from, id, &m.to, rt.clock()).await?;
                // Log entries of requests answered before the switch, written after their
                // responses, may have reached the old shard since the last copy.
                copy_range(&from, &to, &LOGS, id, &m.from, m.logs, FOREVER).await?;
                while purge_round(&from, id).await? > 0 {
                    if rt.clock() >= deadline || calls.get() >= MAX_CALLS_PER_RUN {
                        return Ok(());
                    }
                }
                m.phase = "done".into();
                m.finished_at = Some(rt.clock());
                return Ok(());
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

async fn save<E: Executor>(catalog_db: &E, id: &str, m: &Move) -> Result<()> {
    let shard = if m.switched_at.is_some() {
        &m.to
    } else {
        &m.from
    };
    Ok(catalog::save_move(catalog_db, id, shard, Some(&json(m)?), true).await?)
}

/// One catch-up round: every user and group whose events came since the last round (up to
/// [`EVENTS_PER_ROUND`] of them), copied again as the old shard has them now, then the events
/// and log entries appended since. Returns how many users and groups changed, and whether the
/// round reached the newest event.
async fn catch_up<E: Executor>(from: &E, to: &E, id: &str, m: &mut Move) -> Result<(usize, bool)> {
    let (newest, logs) = store::newest(from, id).await?;
    // A round takes at most this many events' changes (a busy tenant's next round takes
    // the rest), so that one round stays well within an invocation's calls.
    let events = store::nth_event_after(from, id, m.events, EVENTS_PER_ROUND)
        .await?
        .map_or(newest, |n| n.min(newest));
    let (users, groups) = store::changed(from, id, m.events, events).await?;
    let changed = users.len().saturating_add(groups.len());
    let among = |column: &'static str| {
        move |list: &str| {
            let sql: &'static str = match column {
                "id" => " AND id IN (SELECT value FROM json_each(?))",
                "member_id" => " AND member_id IN (SELECT value FROM json_each(?))",
                _ => " AND group_id IN (SELECT value FROM json_each(?))",
            };
            Some((sql, vec![Param::from(list)]))
        }
    };
    for (ids, rows, by) in [
        (&users, &USERS, "member_id"),
        (&groups, &GROUPS, "group_id"),
    ] {
        for ids in ids.chunks(IDS_PER_ROUND) {
            let (u, g): (&[String], &[String]) = if rows.name == USERS.name {
                (ids, &[])
            } else {
                (&[], ids)
            };
            to.batch(store::forget_stmts(id, u, g)).await?;
            let list = Value::from(ids.to_vec()).to_string();
            let n = copy_all(from, to, rows, id, &m.from, among("id")(&list)).await?;
            let k = copy_all(from, to, &MEMBERSHIPS, id, &m.from, among(by)(&list)).await?;
            m.rows_copied = m.rows_copied.saturating_add(n).saturating_add(k);
        }
    }
    let e = copy_range(from, to, &EVENTS, id, &m.from, m.events, events).await?;
    let l = copy_range(from, to, &LOGS, id, &m.from, m.logs, logs).await?;
    m.events = events;
    m.logs = logs;
    m.rows_copied = m.rows_copied.saturating_add(e).saturating_add(l);
    Ok((changed, events >= newest))
}

/// Copy every row of `t` that `filter` (`AND …` and its parameters) selects, chunk by chunk.
async fn copy_all<E: Executor>(
    from: &E,
    to: &E,
    t: &Table,
    id: &str,
    origin: &str,
    filter: Option<(&str, Vec<Param>)>,
) -> Result<i64> {
    let mut after: Vec<Value> = Vec::new();
    let mut total = 0i64;
    loop {
        let chunk =
            store::copy_chunk(from, to, t, id, origin, &after, None, filter.clone()).await?;
        total = total
            .saturating_add(chunk.count)
            .saturating_add(chunk.along);
        if chunk.count < t.chunk {
            return Ok(total);
        }
        after = chunk.last;
    }
}

/// Copy `t`'s rows with seq in `(after, upto]`, chunk by chunk.
async fn copy_range<E: Executor>(
    from: &E,
    to: &E,
    t: &Table,
    id: &str,
    origin: &str,
    after: i64,
    upto: i64,
) -> Result<i64> {
    let mut key = vec![Value::from(after)];
    let mut total = 0i64;
    loop {
        let chunk = store::copy_chunk(from, to, t, id, origin, &key, Some(upto), None).await?;
        total = total.saturating_add(chunk.count);
        if chunk.count < t.chunk {
            return Ok(total);
        }
        key = chunk.last;
    }
}

/// The switch: freeze the old shard's writes, copy the last changes and the tables copied whole,
/// point the catalog at the new shard, and let the old shard's row go.
async fn switch<E: Executor, R: Runtime>(
    from: &E,
    to: &E,
    catalog_db: &E,
    rt: &R,
    id: &str,
    m: &mut Move,
) -> Result<()> {
    let started = rt.clock();
    let until = rt.now().max(started).saturating_add(FREEZE_MS);
    if !store::freeze(from, id, Some(until), None).await? {
        return Err(Error::not_found(
            "the organisation is no longer on its shard",
        ));
    }
    // Nothing new is written meanwhile: the rounds end.
    while !catch_up(from, to, id, m).await?.1 {}
    for t in store::SWITCHED {
        to.query(store::clear_stmt(t, id, "")).await?;
        copy_all(from, to, t, id, &m.from, None).await?;
    }
    // Aggregated refusals grow in place (their count): copied again whole.
    to.query(store::clear_stmt(&LOGS, id, " AND refusal_key IS NOT NULL"))
        .await?;
    let refusals = Some((" AND refusal_key IS NOT NULL", Vec::new()));
    copy_all(from, to, &LOGS, id, &m.from, refusals).await?;
    if rt.clock().saturating_sub(started) > SWITCH_MAX_MS {
        // Too slow to finish inside the freeze: let it lapse, and try again next round.
        return Err(Error::new(
            503,
            "the switch took too long; its freeze lapses and the next round tries again",
        ));
    }
    // From here the old shard refuses the tenant's writes until it is gone from there.
    if !store::freeze(from, id, Some(FOREVER), Some(until)).await? {
        return Err(Error::new(
            503,
            "the switch's freeze was lost; trying again",
        ));
    }
    to.batch(store::recount(id)).await?;
    store::arrive(from, to, id, 0).await?;
    let now = rt.now().max(rt.clock());
    m.phase = "cleanup".into();
    m.switched_at = Some(now);
    m.frozen_ms = Some(rt.clock().saturating_sub(started));
    save(catalog_db, id, m).await?;
    store::depart(from, id, &m.to, now).await?;
    Ok(())
}

/// Carry on every unfinished move, each for an equal part of `budget_ms` (the Cron Trigger).
pub async fn drive_all<S: Databases, R: Runtime>(s: &S, rt: &R, budget_ms: i64) -> Result<usize> {
    let ids = catalog::moving(&s.catalog()?).await?;
    let share = i64::try_from(ids.len())
        .ok()
        .and_then(|n| budget_ms.checked_div(n.max(1)))
        .unwrap_or(0);
    for id in &ids {
        drive(s, rt, id, share).await?;
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state the catalog keeps reads back as it was written, and a state written before
    /// `step`, `after` and `catchupRounds` existed still reads.
    #[test]
    fn a_move_reads_back_from_its_json() {
        let m = Move {
            from: "DB".into(),
            to: "SHARD_2".into(),
            phase: "catchup".into(),
            step: 3,
            after: vec![Value::from("u-9"), Value::from(4)],
            rows_copied: 120,
            rows_at_start: 100,
            events: 7,
            logs: 8,
            started_at: 1_000,
            catchup_rounds: 2,
            switched_at: None,
            frozen_ms: Some(12),
            finished_at: None,
            error: Some("x".into()),
        };
        let text = json(&m).unwrap();
        assert_eq!(of(Some(&text)), Some(m));
        let old = r#"{"from":"DB","to":"SHARD_2","phase":"copy","rowsCopied":0,"rowsAtStart":5,
            "events":0,"logs":0,"startedAt":1}"#;
        let m = of(Some(old)).unwrap();
        assert_eq!(
            (m.step, m.after.len(), m.catchup_rounds, m.error),
            (0, 0, 0, None)
        );
        assert_eq!(of(Some(r#"{"from":"DB"}"#)), None);
    }
}
