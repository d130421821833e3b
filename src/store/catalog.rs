//! SQL for the catalog (`DB`): the list of tenants, each with the shard that holds
//! its rows (table `catalog`), and what is known of each shard (table `shards`).
//!
//! Every statement here runs on the catalog alone; a tenant's own rows are in its
//! shard ([`super::tenants`] and the rest). Subdomains are unique across every shard because
//! the catalog's UNIQUE index says so, not because anything checks first.

use crate::store::row::from_row;

use super::{Executor, Result, Stmt};

/// A tenant as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub subdomain: String,
    pub name: String,
    pub provisioning_enabled: bool,
    /// The binding of the shard that holds its rows.
    pub shard: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Its move to another shard, as JSON, while one runs (and the last one's outcome).
    pub moving: Option<String>,
}
from_row!(Entry { id, subdomain, name, provisioning_enabled, shard, created_at, updated_at, moving = "move" });

const COLUMNS: &str =
    "id, subdomain, name, provisioning_enabled, shard, created_at, updated_at, move";

/// List tenant `o`, not yet made on its shard ([`mark_made`]); a subdomain taken on any shard
/// is `StoreError::Unique` on `subdomain` (the UNIQUE index decides).
pub async fn insert<E: Executor>(db: &E, o: &Entry) -> Result<()> {
    let stmt = Stmt::new(
        format!("INSERT INTO catalog ({COLUMNS}, made) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0)"),
        vec![
            o.id.as_str().into(),
            o.subdomain.as_str().into(),
            o.name.as_str().into(),
            o.provisioning_enabled.into(),
            o.shard.as_str().into(),
            o.created_at.into(),
            o.updated_at.into(),
        ],
    );
    match db.query(stmt).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Record that tenant `id`'s row exists on its shard: its create is finished.
pub async fn mark_made<E: Executor>(db: &E, id: &str) -> Result<()> {
    let sql = "UPDATE catalog SET made = 1 WHERE id = ? AND made = 0";
    db.query(Stmt::new(sql, vec![id.into()])).await?;
    Ok(())
}

/// Claim unfinished tenant `id` for a create that finishes it, by moving its `updated_at` to
/// `now`: [`remove_unmade`], which read the old value, then leaves it alone. `false`: it is no
/// longer listed unfinished (dropped meanwhile, or finished).
pub async fn claim_unmade<E: Executor>(db: &E, id: &str, now: i64) -> Result<bool> {
    let sql = "UPDATE catalog SET updated_at = ? WHERE id = ? AND made = 0";
    Ok(db
        .query(Stmt::new(sql, vec![now.into(), id.into()]))
        .await?
        .changes
        > 0)
}

/// Up to `limit` tenants listed before `before` whose create is not known to have finished,
/// oldest first (a seek on the partial index `catalog_unmade`).
pub async fn unmade<E: Executor>(db: &E, before: i64, limit: i64) -> Result<Vec<Entry>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM catalog WHERE made = 0 AND created_at < ? \
         ORDER BY created_at LIMIT ?"
    );
    db.query(Stmt::new(sql, vec![before.into(), limit.into()]))
        .await?
        .decode()
}

/// Take unfinished tenant `o` off the list if nothing claimed or finished it since it was read
/// (its `updated_at` unchanged, no move), with what [`remove`] takes with it, in one batch.
/// Whether it was taken off.
pub async fn remove_unmade<E: Executor>(db: &E, o: &Entry) -> Result<bool> {
    let sql = "DELETE FROM catalog WHERE id = ? AND made = 0 AND updated_at = ? AND move IS NULL";
    let stmt = Stmt::new(sql, vec![o.id.as_str().into(), o.updated_at.into()]);
    let outs = db.batch(removal(stmt, &o.id)).await?;
    Ok(outs.first().is_some_and(|out| out.changes > 0))
}

/// `delete` (of tenant `id`'s catalog row), then the API keys and webhooks limited to it, each
/// only once the tenant is no longer listed: after a `delete` that deleted nothing
/// ([`remove_unmade`]), they delete nothing either.
fn removal(delete: Stmt, id: &str) -> Vec<Stmt> {
    const UNLISTED: &str = "NOT EXISTS (SELECT 1 FROM catalog WHERE id = ?1)";
    let mut batch = vec![delete, super::keys::delete_of_tenant(id, UNLISTED)];
    batch.extend(super::host_app::webhooks::delete_of_tenant(id, UNLISTED));
    batch
}

/// The tenant subdomain `sub` names, if any.
pub async fn by_subdomain<E: Executor>(db: &E, sub: &str) -> Result<Option<Entry>> {
    let sql = format!("SELECT {COLUMNS} FROM catalog WHERE subdomain = ?");
    db.query(Stmt::new(sql, vec![sub.into()])).await?.first()
}

/// The tenant of id `id`, if it is listed.
pub async fn by_id<E: Executor>(db: &E, id: &str) -> Result<Option<Entry>> {
    let sql = format!("SELECT {COLUMNS} FROM catalog WHERE id = ?");
    db.query(Stmt::new(sql, vec![id.into()])).await?.first()
}

/// Up to `limit` tenants after subdomain `after`, in subdomain order (a range seek on
/// the UNIQUE index), and whether more follow.
pub async fn page<E: Executor>(db: &E, after: &str, limit: u32) -> Result<(Vec<Entry>, bool)> {
    let sql =
        format!("SELECT {COLUMNS} FROM catalog WHERE subdomain > ? ORDER BY subdomain LIMIT ?");
    let mut rows: Vec<Entry> = db
        .query(Stmt::new(
            sql,
            vec![after.into(), i64::from(limit).saturating_add(1).into()],
        ))
        .await?
        .decode()?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// Repeat a change of name or provisioning switch its shard has made (`None`: unknown).
pub async fn update<E: Executor>(
    db: &E,
    id: &str,
    name: &str,
    provisioning_enabled: bool,
    now: i64,
) -> Result<Option<Entry>> {
    db.query(Stmt::new(
        format!(
            "UPDATE catalog SET name = ?, provisioning_enabled = ?, updated_at = ? \
             WHERE id = ? RETURNING {COLUMNS}"
        ),
        vec![
            name.into(),
            provisioning_enabled.into(),
            now.into(),
            id.into(),
        ],
    ))
    .await?
    .first()
}

/// Take tenant `id` off the list (its subdomain is free again), and the API keys and
/// webhooks limited to it with it, in one batch: neither outlives its tenant to see a namesake
/// created later.
pub async fn remove<E: Executor>(db: &E, id: &str) -> Result<()> {
    let delete = Stmt::new("DELETE FROM catalog WHERE id = ?", vec![id.into()]);
    db.batch(removal(delete, id)).await?;
    Ok(())
}

/// Take tenant `id`'s move lease until `until` unless another driver holds it at `now`;
/// the tenant as it stands when taken.
pub async fn take_lease<E: Executor>(
    db: &E,
    id: &str,
    now: i64,
    until: i64,
) -> Result<Option<Entry>> {
    db.query(Stmt::new(
        format!(
            "UPDATE catalog SET move_lease = ? WHERE id = ? AND move IS NOT NULL \
             AND (move_lease IS NULL OR move_lease < ?) RETURNING {COLUMNS}"
        ),
        vec![until.into(), id.into(), now.into()],
    ))
    .await?
    .first()
}

/// Record tenant `id`'s move (`None`: none), its shard, and whether the lease is kept.
pub async fn save_move<E: Executor>(
    db: &E,
    id: &str,
    shard: &str,
    moving: Option<&str>,
    keep_lease: bool,
) -> Result<()> {
    let lease = if keep_lease { "move_lease" } else { "NULL" };
    db.query(Stmt::new(
        format!("UPDATE catalog SET shard = ?, move = ?, move_lease = {lease} WHERE id = ?"),
        vec![shard.into(), moving.into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// Start a move of tenant `id` (state `moving`), unless one is running: whether it
/// started.
pub async fn start_move<E: Executor>(db: &E, id: &str, moving: &str) -> Result<bool> {
    let out = db
        .query(Stmt::new(
            "UPDATE catalog SET move = ?, move_lease = NULL WHERE id = ? AND (move IS NULL \
             OR move ->> '$.phase' IN ('done', 'cancelled', 'failed'))",
            vec![moving.into(), id.into()],
        ))
        .await?;
    Ok(out.changes > 0)
}

/// The tenants whose move is not finished (what upkeep drives on).
pub async fn moving<E: Executor>(db: &E) -> Result<Vec<String>> {
    struct Row {
        id: String,
    }
    from_row!(Row { id });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT id FROM catalog WHERE move IS NOT NULL \
             AND move ->> '$.phase' NOT IN ('done', 'cancelled', 'failed') ORDER BY id",
            vec![],
        ))
        .await?
        .decode()?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// What the catalog knows of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRow {
    pub binding: String,
    pub open: bool,
    pub bytes: Option<i64>,
    pub measured_at: Option<i64>,
}
from_row!(ShardRow {
    binding,
    open,
    bytes,
    measured_at
});

/// Every shard the catalog has a row for (a shard without one is open, size unknown).
pub async fn shard_rows<E: Executor>(db: &E) -> Result<Vec<ShardRow>> {
    db.query(Stmt::new(
        "SELECT binding, open, bytes, measured_at FROM shards ORDER BY binding",
        vec![],
    ))
    .await?
    .decode()
}

/// Open or close shard `binding` for placement.
pub async fn set_open<E: Executor>(db: &E, binding: &str, open: bool) -> Result<()> {
    db.query(Stmt::new(
        "INSERT INTO shards (binding, open) VALUES (?, ?) \
         ON CONFLICT (binding) DO UPDATE SET open = excluded.open",
        vec![binding.into(), open.into()],
    ))
    .await?;
    Ok(())
}

/// Remember shard `binding`'s size as measured at `at`.
pub async fn record_size<E: Executor>(db: &E, binding: &str, bytes: u64, at: i64) -> Result<()> {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    db.query(Stmt::new(
        "INSERT INTO shards (binding, bytes, measured_at) VALUES (?, ?, ?) \
         ON CONFLICT (binding) DO UPDATE SET bytes = excluded.bytes, measured_at = excluded.measured_at",
        vec![binding.into(), bytes.into(), at.into()],
    ))
    .await?;
    Ok(())
}

/// How many tenants the catalog places on each shard.
pub async fn per_shard<E: Executor>(db: &E) -> Result<Vec<(String, i64)>> {
    struct Row {
        shard: String,
        n: i64,
    }
    from_row!(Row { shard, n });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT shard, count(*) AS n FROM catalog GROUP BY shard",
            vec![],
        ))
        .await?
        .decode()?;
    Ok(rows.into_iter().map(|r| (r.shard, r.n)).collect())
}

/// What one shard holds, counted on the shard itself, and its size when D1 reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub tenants: i64,
    pub users: i64,
    pub groups: i64,
    pub events: i64,
    pub log_entries: i64,
    pub bytes: Option<u64>,
}
from_row!(Figures { tenants, users, groups, events, log_entries; default bytes });

/// Count a shard's rows (run on the shard: a statement of counts, each over one table).
pub async fn figures<E: Executor>(shard: &E) -> Result<Figures> {
    let out = shard
        .query(Stmt::new(
            "SELECT (SELECT count(*) FROM tenants WHERE deleted_at IS NULL) AS tenants, \
             (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM groups) AS groups, \
             (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM logs) AS log_entries",
            vec![],
        ))
        .await?;
    let bytes = out.size_after;
    let mut f: Figures = out.first()?.unwrap_or_default();
    f.bytes = bytes;
    Ok(f)
}

/// A shard's size, from the cheapest statement there is (D1 reports the size after each).
pub async fn size<E: Executor>(shard: &E) -> Result<Option<u64>> {
    Ok(shard.query(Stmt::new("SELECT 1", vec![])).await?.size_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::Sqlite;
    use pollster::block_on;

    fn org(id: &str, sub: &str, shard: &str) -> Entry {
        Entry {
            id: id.into(),
            subdomain: sub.into(),
            name: sub.into(),
            provisioning_enabled: true,
            shard: shard.into(),
            created_at: 1,
            updated_at: 1,
            moving: None,
        }
    }

    #[test]
    fn subdomains_are_unique_across_shards_and_pages_resume() {
        let db = Sqlite::migrated();
        block_on(insert(&db, &org("ten_1", "acme", "DB"))).unwrap();
        block_on(insert(&db, &org("ten_2", "beta", "SHARD_2"))).unwrap();
        let taken = block_on(insert(&db, &org("ten_3", "acme", "SHARD_2"))).unwrap_err();
        assert!(taken.is_unique_on("subdomain"), "{taken:?}");
        let (first, more) = block_on(page(&db, "", 1)).unwrap();
        assert_eq!((first[0].subdomain.as_str(), more), ("acme", true));
        let (rest, more) = block_on(page(&db, "acme", 1)).unwrap();
        assert_eq!((rest[0].shard.as_str(), more), ("SHARD_2", false));
        assert_eq!(
            block_on(by_id(&db, "ten_2")).unwrap().unwrap().subdomain,
            "beta"
        );
        let mut counts = block_on(per_shard(&db)).unwrap();
        counts.sort();
        assert_eq!(counts, vec![("DB".into(), 1), ("SHARD_2".into(), 1)]);
        block_on(remove(&db, "ten_1")).unwrap();
        assert!(block_on(by_subdomain(&db, "acme")).unwrap().is_none());
    }

    #[test]
    fn shards_are_open_until_closed_and_keep_their_size() {
        let db = Sqlite::migrated();
        block_on(record_size(&db, "DB", 4096, 10)).unwrap();
        block_on(set_open(&db, "SHARD_2", false)).unwrap();
        block_on(set_open(&db, "DB", true)).unwrap();
        let rows = block_on(shard_rows(&db)).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].open, rows[0].bytes), (true, Some(4096)));
        assert_eq!((rows[1].open, rows[1].bytes), (false, None));
    }

    #[test]
    fn the_migration_lists_existing_organisations_in_db() {
        let db = Sqlite::migrated_before("0009");
        db.execute_batch(
            "INSERT INTO tenants (id, subdomain, name, provisioning_enabled, created_at, updated_at) \
             VALUES ('ten_old', 'old', 'Old', 0, 5, 6)",
        )
        .unwrap();
        for f in Sqlite::migration_files() {
            if f.file_name().and_then(|n| n.to_str()) >= Some("0009") {
                db.execute_file(&f);
            }
        }
        let o = block_on(by_subdomain(&db, "old")).unwrap().unwrap();
        assert_eq!((o.shard.as_str(), o.provisioning_enabled), ("DB", false));
    }
}
