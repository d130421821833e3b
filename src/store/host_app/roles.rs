//! Roles from groups: a user's **effective role**, kept with the user (`users.role`,
//! `role_source`, `role_group`) and brought up to date by statements that ride in the batch of
//! whatever may change it, each re-roled user's `user.updated` event (`changed: ["role"]`)
//! with them. So the directory and the feed never disagree, whatever the cause: the user's own
//! write, a membership change, a group deleted, a mapping or the default changed, a new
//! declaration of the app's roles.
//!
//! The rule ([`computed`]), in SQL over the tenant's own copy of the declared roles
//! (`tenants.roles`, highest precedence first):
//! 1. the primary `roles` value the identity provider sent, when it names a declared role (with
//!    no roles declared, any primary value) — source `attribute`;
//! 2. else the highest-precedence role mapped to a group the user is in, directly or through
//!    nested groups (ties: the smaller group id) — source `group`, with that group;
//! 3. else the tenant's default role, when declared — source `default`; else none.
//!
//! Every statement is set-based with a fixed number of parameters (ids travel as one JSON
//! array), so a change that re-roles 100,000 users is still a few statements within D1's 100
//! bound parameters.

use crate::store::row::from_row;
use serde_json::Value;

use crate::store::directory::user_json;
use crate::store::{Executor, Param, Result, Stmt};

/// Which users a refresh considers (a superset of those whose role may have changed is
/// harmless: only a changed role is written and recorded).
#[derive(Debug, Clone, Copy)]
pub enum Affected<'a> {
    /// One user.
    User(&'a str),
    /// The users among these ids, and every user in the groups among them, nested: what
    /// adding these members to a group, or removing them, may re-role.
    Under(&'a [&'a str]),
    /// The users noted in `role_pending` under the refresh's tag.
    Pending,
    /// Users whose role is the default, or who have none: what a new default may re-role.
    Defaulted,
    /// Every user of the tenant.
    All,
}

/// The users under the groups and users of the JSON array in parameter `?{ids}` (a recursive
/// walk down `memberships`; `UNION` stops at a cycle), as an `IN (…)` operand.
fn under(ids: &str) -> String {
    format!(
        "(WITH RECURSIVE down(id) AS (SELECT value FROM json_each(?{ids}) \
         UNION SELECT m.member_id FROM down CROSS JOIN memberships m \
         WHERE m.tenant_id = ?1 AND m.group_id = down.id) SELECT id FROM down)"
    )
}

/// Whether group `?{group}` or a group it is in (nested) is mapped to a role: only then can a
/// change of its members re-role anybody.
fn mapped(group: &str) -> String {
    format!(
        "EXISTS (WITH RECURSIVE up(id) AS (SELECT ?{group} UNION SELECT m.group_id \
         FROM up CROSS JOIN memberships m INDEXED BY memberships_by_member \
         WHERE m.tenant_id = ?1 AND m.member_id = up.id) \
         SELECT 1 FROM up CROSS JOIN role_mappings r WHERE r.tenant_id = ?1 AND r.group_id = up.id)"
    )
}

impl Affected<'_> {
    /// The condition on user `u`, and its parameter (always `?3`, a JSON array, unused by some).
    fn sql(self) -> (String, Param) {
        match self {
            Affected::User(id) => ("u.id = json_extract(?3, '$[0]')".into(), ids(&[id])),
            Affected::Under(list) => (format!("u.id IN {}", under("3")), ids(list)),
            Affected::Pending => (
                "u.id IN (SELECT user_id FROM role_pending WHERE tenant_id = ?1 AND tag = ?2) \
                 AND json_array_length(?3) = 0"
                    .into(),
                ids(&[]),
            ),
            Affected::Defaulted => (
                "(u.role_source IS NULL OR u.role_source = 'default') AND json_array_length(?3) = 0"
                    .into(),
                ids(&[]),
            ),
            Affected::All => ("json_array_length(?3) = 0".into(), ids(&[])),
        }
    }
}

fn ids(list: &[&str]) -> Param {
    Value::from(list.to_vec()).to_string().into()
}

/// The effective role of each user `u` of tenant `?1` that `filter` selects: `(id, role,
/// source, grp)`.
fn computed(filter: &str) -> String {
    // The group's role and id travel as one value (`role` US `group id`) so that the
    // precedence order picks both at once.
    let pair = "(WITH RECURSIVE up(id) AS (SELECT m.group_id FROM memberships m \
         INDEXED BY memberships_by_member WHERE m.tenant_id = u.tenant_id AND m.member_id = u.id \
         UNION SELECT m.group_id FROM up CROSS JOIN memberships m INDEXED BY memberships_by_member \
         WHERE m.tenant_id = u.tenant_id AND m.member_id = up.id) \
         SELECT r.role || char(31) || r.group_id FROM up CROSS JOIN role_mappings r \
         JOIN json_each(t.roles) d ON d.value = r.role \
         WHERE r.tenant_id = u.tenant_id AND r.group_id = up.id \
         ORDER BY d.key, r.group_id LIMIT 1)";
    let attr = "(SELECT v.value FROM user_values v INDEXED BY user_values_by_user \
         WHERE v.tenant_id = u.tenant_id AND v.user_id = u.id AND v.attr = 'roles' \
         AND v.is_primary = 1 AND (json_array_length(t.roles) = 0 \
         OR v.value IN (SELECT value FROM json_each(t.roles))) LIMIT 1)";
    let default =
        "(SELECT t.default_role WHERE t.default_role IN (SELECT value FROM json_each(t.roles)))";
    // MATERIALIZED: each user's three lookups run once; flattened into the expressions that
    // read them, SQLite would run the group walk once per reference (a dozen times a user).
    format!(
        "WITH x AS MATERIALIZED (SELECT u.id, {attr} AS attr, {pair} AS pair, {default} AS dflt \
         FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = ?1 AND {filter}) \
         SELECT x.id, \
         coalesce(x.attr, substr(x.pair, 1, instr(x.pair, char(31)) - 1), x.dflt) AS role, \
         CASE WHEN x.attr IS NOT NULL THEN 'attribute' WHEN x.pair IS NOT NULL THEN 'group' \
         WHEN x.dflt IS NOT NULL THEN 'default' END AS source, \
         CASE WHEN x.attr IS NULL AND x.pair IS NOT NULL \
         THEN substr(x.pair, instr(x.pair, char(31)) + 1) END AS grp FROM x"
    )
}

/// The statement that writes the effective role of the `affected` users of `tenant_id` where
/// it changed, tagging them with `tag`.
fn update(tenant_id: &str, tag: &str, affected: Affected<'_>) -> Stmt {
    let (filter, p) = affected.sql();
    Stmt::new(
        format!(
            "UPDATE users SET role = c.role, role_source = c.source, role_group = c.grp, \
             role_tag = ?2 FROM ({}) c WHERE users.tenant_id = ?1 AND users.id = c.id \
             AND (users.role IS NOT c.role OR users.role_source IS NOT c.source \
             OR users.role_group IS NOT c.grp)",
            computed(&filter)
        ),
        vec![tenant_id.into(), tag.into(), p],
    )
}

/// The `user.updated` events of the users [`update`] re-roled under `tag`.
fn events(tenant_id: &str, tag: &str, affected: Affected<'_>, now: i64) -> Stmt {
    let (filter, p) = affected.sql();
    Stmt::new(
        format!(
            "INSERT INTO events (tenant_id, type, resource_id, at, data) \
             SELECT ?1, 'user.updated', u.id, ?4, json_object('user', {}, 'changed', json('[\"role\"]')) \
             FROM users u WHERE u.tenant_id = ?1 AND u.role_tag = ?2 AND {filter}",
            user_json()
        ),
        vec![tenant_id.into(), tag.into(), p, now.into()],
    )
}

/// Bring user `id`'s role up to date within its own write (tagged `write_id`): no event of its
/// own, the write's `user.created`/`user.updated` carries the role (and names `role` among
/// what changed, see [`crate::store::trail`]).
pub(crate) fn of_user(tenant_id: &str, id: &str, write_id: &str) -> Stmt {
    update(tenant_id, write_id, Affected::User(id))
}

/// Re-role the `affected` users and record each one re-roled, under `tag`: the statements to
/// append to a batch once the cause has been written.
pub(crate) fn refresh(tenant_id: &str, tag: &str, affected: Affected<'_>, now: i64) -> Vec<Stmt> {
    vec![
        update(tenant_id, tag, affected),
        events(tenant_id, tag, affected, now),
    ]
}

/// The statements around a change of group `group`'s members (`added_or_removed`: the ids a
/// change adds or removes by name; `whole`: whether some change replaces or filters the member
/// set, whose removed members only a note taken before can find). Returns what goes before
/// the change and what goes after it; nothing is written unless the group or one it is in is
/// mapped to a role.
pub(crate) fn around_members(
    tenant_id: &str,
    group: &str,
    tag: &str,
    added_or_removed: &[&str],
    whole: bool,
    now: i64,
) -> (Vec<Stmt>, Vec<Stmt>) {
    let mut before = Vec::new();
    let mut after = Vec::new();
    if whole {
        before.push(note(tenant_id, tag, &[group], group));
        after.push(note(tenant_id, tag, &[group], group));
    }
    if !added_or_removed.is_empty() {
        after.push(note(tenant_id, tag, added_or_removed, group));
    }
    if !after.is_empty() {
        after.extend(settle(tenant_id, tag, now));
    }
    (before, after)
}

/// Note under `tag` the users under `members` (users, or groups nested), if group `group` or a
/// group it is in is mapped to a role.
fn note(tenant_id: &str, tag: &str, members: &[&str], group: &str) -> Stmt {
    let (filter, p) = Affected::Under(members).sql();
    Stmt::new(
        format!(
            "INSERT OR IGNORE INTO role_pending (tenant_id, tag, user_id) \
             SELECT ?1, ?2, u.id FROM users u WHERE u.tenant_id = ?1 AND {filter} AND {}",
            mapped("4")
        ),
        vec![tenant_id.into(), tag.into(), p, group.into()],
    )
}

/// Re-role the users noted under `tag`, record them, and clear the notes: what ends a batch
/// that noted users.
fn settle(tenant_id: &str, tag: &str, now: i64) -> Vec<Stmt> {
    let mut stmts = refresh(tenant_id, tag, Affected::Pending, now);
    stmts.push(Stmt::new(
        "DELETE FROM role_pending WHERE tenant_id = ? AND tag = ?",
        vec![tenant_id.into(), tag.into()],
    ));
    stmts
}

/// SQL: tenant `?1` is live in this shard and not frozen by a move at `?{now}` (a setting
/// written during a move's switch could miss its copy).
fn live(now: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND deleted_at IS NULL \
         AND coalesce(frozen_until, 0) <= ?{now})"
    )
}

/// Whether tenant `tenant_id` is frozen by a move at `now`, read last in a batch.
fn frozen_stmt(tenant_id: &str, now: i64) -> Stmt {
    Stmt::new(
        format!("SELECT NOT {} AS frozen", live("2")),
        vec![tenant_id.into(), now.into()],
    )
}

fn was_frozen(out: Option<crate::store::Outcome>) -> Result<bool> {
    struct Row {
        frozen: i64,
    }
    from_row!(Row { frozen });
    Ok(match out {
        Some(o) => o.first::<Row>()?.is_some_and(|r| r.frozen != 0),
        None => false,
    })
}

/// The statements around deleting group `group`: note its users (nested) before, while its
/// memberships are there; after, drop its mapping and re-role them.
pub(crate) fn around_group_delete(
    tenant_id: &str,
    group: &str,
    tag: &str,
    now: i64,
) -> (Vec<Stmt>, Vec<Stmt>) {
    let before = vec![note(tenant_id, tag, &[group], group)];
    let mut after = vec![Stmt::new(
        "DELETE FROM role_mappings WHERE tenant_id = ? AND group_id = ? \
         AND NOT EXISTS (SELECT 1 FROM groups WHERE tenant_id = ? AND id = ?)",
        vec![
            tenant_id.into(),
            group.into(),
            tenant_id.into(),
            group.into(),
        ],
    )];
    after.extend(settle(tenant_id, tag, now));
    (before, after)
}

/// A group → role mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub group_id: String,
    pub role: String,
    /// The group's displayName.
    pub display_name: String,
}
from_row!(Mapping {
    group_id,
    role,
    display_name
});

/// Tenant `tenant_id`'s mappings, by group id.
pub async fn mappings<E: Executor>(db: &E, tenant_id: &str) -> Result<Vec<Mapping>> {
    db.query(Stmt::new(
        "SELECT r.group_id, r.role, g.display_name FROM role_mappings r \
         JOIN groups g ON g.tenant_id = r.tenant_id AND g.id = r.group_id \
         WHERE r.tenant_id = ? ORDER BY r.group_id",
        vec![tenant_id.into()],
    ))
    .await?
    .decode()
}

/// Make tenant `tenant_id`'s mappings exactly `pairs` (group id, role) and re-role the users of
/// the groups mapped before or now, in one batch. Pairs naming a group the tenant does not have
/// are not stored: returns how many were, or `None` when a move froze the tenant (nothing
/// changed).
pub async fn set_mappings<E: Executor>(
    db: &E,
    tenant_id: &str,
    pairs: &[(String, String)],
    tag: &str,
    now: i64,
) -> Result<Option<u64>> {
    let pairs_json = Value::from(
        pairs
            .iter()
            .map(|(g, r)| Value::from(vec![g.as_str(), r.as_str()]))
            .collect::<Vec<_>>(),
    )
    .to_string();
    let live = live("3");
    let mut all = vec![
        Stmt::new(
            "INSERT OR IGNORE INTO role_pending (tenant_id, tag, user_id) \
             SELECT ?1, ?2, u.id FROM users u WHERE u.tenant_id = ?1 AND u.id IN \
             (WITH RECURSIVE down(id) AS (SELECT group_id FROM role_mappings WHERE tenant_id = ?1 \
             UNION SELECT json_extract(value, '$[0]') FROM json_each(?3) \
             UNION SELECT m.member_id FROM down CROSS JOIN memberships m \
             WHERE m.tenant_id = ?1 AND m.group_id = down.id) SELECT id FROM down)",
            vec![tenant_id.into(), tag.into(), pairs_json.clone().into()],
        ),
        Stmt::new(
            format!("DELETE FROM role_mappings WHERE tenant_id = ?1 AND ?2 = ?2 AND {live}"),
            vec![tenant_id.into(), tag.into(), now.into()],
        ),
        Stmt::new(
            format!(
                "INSERT OR REPLACE INTO role_mappings (tenant_id, group_id, role) \
                 SELECT ?1, g.id, json_extract(j.value, '$[1]') FROM json_each(?2) j \
                 JOIN groups g ON g.tenant_id = ?1 AND g.id = json_extract(j.value, '$[0]') \
                 WHERE {live}"
            ),
            vec![tenant_id.into(), pairs_json.into(), now.into()],
        ),
    ];
    all.extend(settle(tenant_id, tag, now));
    all.push(frozen_stmt(tenant_id, now));
    let mut outs = db.batch(all).await?;
    let stored = outs.get(2).map_or(0, |o| o.changes);
    Ok((!was_frozen(outs.pop())?).then_some(stored))
}

/// Set tenant `tenant_id`'s default role (`None`: none) and re-role whom it concerns, in one
/// batch: `false` when a move froze the tenant (nothing changed).
pub async fn set_default<E: Executor>(
    db: &E,
    tenant_id: &str,
    role: Option<&str>,
    tag: &str,
    now: i64,
) -> Result<bool> {
    let mut stmts = vec![Stmt::new(
        format!(
            "UPDATE tenants SET default_role = ?2 WHERE id = ?1 AND {}",
            live("3")
        ),
        vec![
            tenant_id.into(),
            role.map(str::to_string).into(),
            now.into(),
        ],
    )];
    stmts.extend(refresh(tenant_id, tag, Affected::Defaulted, now));
    stmts.push(frozen_stmt(tenant_id, now));
    let mut outs = db.batch(stmts).await?;
    Ok(!was_frozen(outs.pop())?)
}

/// Apply declaration `version` of the app's roles (`roles`, highest precedence first) to tenant
/// `tenant_id`, unless it has applied that one or a later one or a move froze it, re-roling its
/// users in the same batch: whether it applied.
pub async fn apply_declared<E: Executor>(
    db: &E,
    tenant_id: &str,
    roles: &[String],
    version: i64,
    tag: &str,
    now: i64,
) -> Result<bool> {
    let mut stmts = vec![Stmt::new(
        format!(
            "UPDATE tenants SET roles = ?2, roles_version = ?3 WHERE id = ?1 AND roles_version < ?3 \
             AND {}",
            live("4")
        ),
        vec![
            tenant_id.into(),
            Value::from(roles.to_vec()).to_string().into(),
            version.into(),
            now.into(),
        ],
    )];
    stmts.extend(refresh(tenant_id, tag, Affected::All, now));
    let outs = db.batch(stmts).await?;
    Ok(outs.first().map_or(0, |o| o.changes) > 0)
}

/// A tenant's role settings as its shard holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// JSON array.
    pub roles: String,
    pub roles_version: i64,
    pub default_role: Option<String>,
}
from_row!(Settings {
    roles,
    roles_version,
    default_role
});

pub async fn settings<E: Executor>(db: &E, tenant_id: &str) -> Result<Option<Settings>> {
    db.query(Stmt::new(
        "SELECT roles, roles_version, default_role FROM tenants WHERE id = ?",
        vec![tenant_id.into()],
    ))
    .await?
    .first()
}

/// Tenants of this shard that have not applied declaration `version` yet, at most `limit`.
pub async fn behind<E: Executor>(db: &E, version: i64, limit: i64) -> Result<Vec<String>> {
    struct Row {
        id: String,
    }
    from_row!(Row { id });
    let rows: Vec<Row> = db
        .query(Stmt::new(
            "SELECT id FROM tenants WHERE roles_version < ? AND deleted_at IS NULL LIMIT ?",
            vec![version.into(), limit.into()],
        ))
        .await?
        .decode()?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// How many tenants of this shard have not applied declaration `version` yet.
pub async fn count_behind<E: Executor>(db: &E, version: i64) -> Result<usize> {
    struct Row {
        n: i64,
    }
    from_row!(Row { n });
    let row: Option<Row> = db
        .query(Stmt::new(
            "SELECT count(*) AS n FROM tenants WHERE roles_version < ? AND deleted_at IS NULL",
            vec![version.into()],
        ))
        .await?
        .first()?;
    Ok(row.map_or(0, |r| usize::try_from(r.n).unwrap_or(0)))
}

/// The deployment's declared roles and their version (in `DB`); `([], 0)` before any.
pub async fn declared<E: Executor>(catalog: &E) -> Result<(Vec<String>, i64)> {
    struct Row {
        roles: String,
        version: i64,
    }
    from_row!(Row { roles, version });
    let row: Option<Row> = catalog
        .query(Stmt::new(
            "SELECT roles, version FROM app_roles WHERE id = 1",
            vec![],
        ))
        .await?
        .first()?;
    Ok(match row {
        Some(r) => (crate::store::row::strings(&r.roles), r.version),
        None => (Vec::new(), 0),
    })
}

/// Declare the app's roles (in `DB`): the new version.
pub async fn declare<E: Executor>(catalog: &E, roles: &[String]) -> Result<i64> {
    struct Row {
        version: i64,
    }
    from_row!(Row { version });
    let row: Option<Row> = catalog
        .query(Stmt::new(
            "INSERT INTO app_roles (id, roles, version) VALUES (1, ?1, 1) \
             ON CONFLICT (id) DO UPDATE SET roles = ?1, version = version + 1 RETURNING version",
            vec![Value::from(roles.to_vec()).to_string().into()],
        ))
        .await?
        .first()?;
    Ok(row.map_or(1, |r| r.version))
}
