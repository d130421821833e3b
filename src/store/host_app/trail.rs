//! What a write leaves behind besides the change: its change-feed events and its provisioning
//! log entry, as statements that ride in the change's own batch. So an event exists if and
//! only if its change committed, and a write costs no extra round trip for either.
//!
//! Each statement is an `INSERT … SELECT … FROM` the resource's row under a [`Guard`]: after a
//! conditional write, "the row carries this write's `write_id`" (a write that lost its version
//! race inserts nothing); before a delete, "the row exists at the version the delete is
//! conditional on", which holds exactly when the delete that follows removes it. Reading the
//! row in SQL gives the event the resource as it is after the change (before it, for a
//! deletion) in the directory shape ([`crate::store::directory`]) and the log entry the resource's
//! name, without a read before the write.

use crate::store::directory::{group_json, user_json};
use crate::store::log::{column_names, LogEntry, ROW};
use crate::store::table::Table;
use crate::store::{Param, Stmt};

/// Every type of event the change feed carries, each one name: what the writers record, what
/// the feed's `types=` accepts and what the README's table lists (a test holds them together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    UserCreated,
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    UserDeleted,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    GroupMembersAdded,
    GroupMembersRemoved,
    /// Alerts ([`crate::store::host_app::alerts`]): each raised once, cleared by its
    /// `…_recovered` event.
    ProvisioningFailing,
    ProvisioningFailingRecovered,
    ProvisioningStalled,
    ProvisioningStalledRecovered,
    CredentialExpiring,
    CredentialExpiringRecovered,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeactivated,
        EventType::UserReactivated,
        EventType::UserDeleted,
        EventType::GroupCreated,
        EventType::GroupUpdated,
        EventType::GroupDeleted,
        EventType::GroupMembersAdded,
        EventType::GroupMembersRemoved,
        EventType::ProvisioningFailing,
        EventType::ProvisioningFailingRecovered,
        EventType::ProvisioningStalled,
        EventType::ProvisioningStalledRecovered,
        EventType::CredentialExpiring,
        EventType::CredentialExpiringRecovered,
    ];

    /// The type's name in the feed: the table's event prefix, a dot, what happened.
    pub const fn name(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeactivated => "user.deactivated",
            EventType::UserReactivated => "user.reactivated",
            EventType::UserDeleted => "user.deleted",
            EventType::GroupCreated => "group.created",
            EventType::GroupUpdated => "group.updated",
            EventType::GroupDeleted => "group.deleted",
            EventType::GroupMembersAdded => "group.members_added",
            EventType::GroupMembersRemoved => "group.members_removed",
            EventType::ProvisioningFailing => "organisation.provisioning_failing",
            EventType::ProvisioningFailingRecovered => {
                "organisation.provisioning_failing_recovered"
            }
            EventType::ProvisioningStalled => "organisation.provisioning_stalled",
            EventType::ProvisioningStalledRecovered => {
                "organisation.provisioning_stalled_recovered"
            }
            EventType::CredentialExpiring => "organisation.credential_expiring",
            EventType::CredentialExpiringRecovered => "organisation.credential_expiring_recovered",
        }
    }

    /// The type named `name`, if there is one.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// A resource of `table` created.
    pub const fn created(table: Table) -> EventType {
        match table {
            Table::Users => EventType::UserCreated,
            Table::Groups => EventType::GroupCreated,
        }
    }

    /// A resource of `table` deleted.
    pub const fn deleted(table: Table) -> EventType {
        match table {
            Table::Users => EventType::UserDeleted,
            Table::Groups => EventType::GroupDeleted,
        }
    }
}

/// A change-feed event of the resource itself (membership events are the membership
/// statements', [`crate::store::memberships`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    /// The names of the attributes that changed (empty for creations and deletions).
    pub changed: Vec<String>,
}

/// What a write records: the resource's events and, when the request is logged, its entry.
#[derive(Debug, Clone, Default)]
pub struct Trail<'a> {
    pub events: Vec<Event>,
    pub log: Option<&'a LogEntry>,
}

impl<'a> Trail<'a> {
    /// A trail of one event without attribute names (a creation, a deletion), and the entry.
    pub fn single(kind: EventType, log: Option<&'a LogEntry>) -> Trail<'a> {
        Trail {
            events: vec![Event {
                kind,
                changed: vec![],
            }],
            log,
        }
    }

    /// The statements that record a write of resource `id` of `table` that tagged its row
    /// with `write_id`: placed after the write in its batch.
    pub(crate) fn after(
        &self,
        table: Table,
        tenant_id: &str,
        id: &str,
        now: i64,
        write_id: &str,
    ) -> Vec<Stmt> {
        statements(
            table,
            tenant_id,
            id,
            now,
            Guard::Written(write_id),
            self,
            Changed::Listed,
        )
    }

    /// [`Trail::after`] for a user's write that worked out in SQL which attributes it changed
    /// ([`crate::store::users::set_leaves`]), into the row's `write_changes`: each event's
    /// `changed` is read from there, and so is the log summary's `{changed}` (the names, with
    /// commas). The trail's own lists of names are not used.
    pub(crate) fn after_computed(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
        write_id: &str,
    ) -> Vec<Stmt> {
        let guard = Guard::Written(write_id);
        statements(
            Table::Users,
            tenant_id,
            id,
            now,
            guard,
            self,
            Changed::InRow,
        )
    }

    /// [`Trail::after`], written only if `condition` (SQL, with its `params`) also holds.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn after_if(
        &self,
        table: Table,
        tenant_id: &str,
        id: &str,
        now: i64,
        write_id: &str,
        condition: &str,
        params: &[Param],
    ) -> Vec<Stmt> {
        let guard = Guard::WrittenIf(write_id, condition, params);
        statements(table, tenant_id, id, now, guard, self, Changed::Listed)
    }

    /// The statements that record the deletion of resource `id` at `if_version` (any version
    /// when `None`): placed before the delete in its batch, while the row is there to read.
    pub(crate) fn before_delete(
        &self,
        table: Table,
        tenant_id: &str,
        id: &str,
        now: i64,
        if_version: Option<i64>,
    ) -> Vec<Stmt> {
        let guard = Guard::Deleting(if_version);
        statements(table, tenant_id, id, now, guard, self, Changed::Listed)
    }
}

/// The condition under which the trail's rows are written.
#[derive(Debug, Clone, Copy)]
pub enum Guard<'a> {
    /// After a write: the row carries this `write_id`.
    Written(&'a str),
    /// After a write, and only if this condition (with its parameters) holds too.
    WrittenIf(&'a str, &'a str, &'a [Param]),
    /// Before a delete conditional on this version (any version when `None`): the row is there.
    Deleting(Option<i64>),
}

impl Guard<'_> {
    fn sql(self, alias: &str) -> (String, Vec<Param>) {
        match self {
            Guard::Written(w) => (format!("{alias}.write_id = ?"), vec![w.into()]),
            Guard::WrittenIf(w, condition, params) => {
                let mut all: Vec<Param> = vec![w.into()];
                all.extend(params.iter().cloned());
                (format!("{alias}.write_id = ? AND {condition}"), all)
            }
            Guard::Deleting(v) => (
                format!("(? IS NULL OR {alias}.version = ?)"),
                vec![v.into(), v.into()],
            ),
        }
    }
}

/// The shape of a resource of `table` (its row aliased `u` or `g`), as a JSON expression.
pub(crate) fn shape(table: Table) -> String {
    match table {
        Table::Users => user_json(),
        Table::Groups => group_json(),
    }
}

/// Characters of a resource's name that a log entry keeps (then `…`); the service cuts the
/// names it logs to the same length.
pub const LOGGED_NAME_CHARS: usize = scim_core::scim::error::QUOTE_CHARS;

/// The SQL for the name in `column` as a log entry keeps it: cut to [`LOGGED_NAME_CHARS`]
/// characters (SQLite's `length` and `substr` count characters in text).
pub(crate) fn logged_name(column: &str) -> String {
    format!(
        "CASE WHEN length({column}) > {LOGGED_NAME_CHARS} \
         THEN substr({column}, 1, {LOGGED_NAME_CHARS}) || '…' ELSE {column} END"
    )
}

/// Where an event's changed attribute names come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Changed {
    /// The event's own list.
    Listed,
    /// The user row's `write_changes`, a JSON array its write computed.
    InRow,
}

/// The statements of a trail for resource `id` of `table`.
fn statements(
    table: Table,
    tenant_id: &str,
    id: &str,
    now: i64,
    guard: Guard<'_>,
    trail: &Trail<'_>,
    source: Changed,
) -> Vec<Stmt> {
    let (name, t) = (table.name(), table.alias());
    let (guard_sql, guard_params) = guard.sql(t);
    let from = format!("FROM {name} {t} WHERE {t}.tenant_id = ? AND {t}.id = ? AND {guard_sql}");
    let mut from_params: Vec<Param> = vec![tenant_id.into(), id.into()];
    from_params.extend(guard_params);
    let mut stmts = Vec::with_capacity(trail.events.len().saturating_add(1));
    for event in &trail.events {
        let key = table.event_prefix();
        let (changed, mut params) = changed_sql(event, table, guard, source);
        let mut all: Vec<Param> = vec![tenant_id.into(), event.kind.name().into(), now.into()];
        all.append(&mut params);
        all.extend(from_params.iter().cloned());
        stmts.push(Stmt::new(
            format!(
                "INSERT INTO events (tenant_id, type, resource_id, at, data) \
                 SELECT ?, ?, {t}.id, ?, json_object('{key}', {}{changed}) {from}",
                shape(table)
            ),
            all,
        ));
    }
    if let Some(log) = trail.log {
        // The row's own id and name, read in SQL; the summary's `{}` is that name.
        let n = logged_name(&format!("{t}.{}", table.name_column()));
        let mut params: Vec<Param> = vec![tenant_id.into()];
        let mut select = Vec::with_capacity(ROW.len());
        for ((column, _), value) in ROW.iter().zip(log.values()) {
            match *column {
                "resource_id" => select.push(format!("{t}.id")),
                "resource_name" => select.push(n.clone()),
                "summary" => {
                    select.push(summary_sql(&n, source));
                    params.push(value);
                }
                _ => {
                    select.push("?".to_string());
                    params.push(value);
                }
            }
        }
        params.extend(from_params.iter().cloned());
        let columns = column_names();
        stmts.push(Stmt::new(
            format!(
                "INSERT INTO logs (tenant_id, {columns}) SELECT ?, {} {from}",
                select.join(", ")
            ),
            params,
        ));
    }
    stmts
}

/// The SQL for an event's `, 'changed', [...]` (nothing for a creation or a deletion), and
/// its parameters.
fn changed_sql(
    event: &Event,
    table: Table,
    guard: Guard<'_>,
    source: Changed,
) -> (String, Vec<Param>) {
    let names = || Param::from(serde_json::Value::from(event.changed.clone()).to_string());
    match (event.changed.is_empty(), table, guard) {
        // The names the write worked out, and `role` if it changed the effective role.
        (_, Table::Users, Guard::Written(w)) if source == Changed::InRow => (
            ", 'changed', CASE WHEN u.role_tag = ? THEN json_insert(u.write_changes, '$[#]', \
             'role') ELSE json(u.write_changes) END"
                .to_string(),
            vec![Param::from(w)],
        ),
        (true, _, _) => (String::new(), vec![]),
        // A user's write that changed its effective role says so ([`crate::store::roles`]).
        (false, Table::Users, Guard::Written(w)) => (
            ", 'changed', CASE WHEN u.role_tag = ? THEN json_insert(json(?), '$[#]', 'role') \
             ELSE json(?) END"
                .to_string(),
            vec![Param::from(w), names(), names()],
        ),
        (false, _, _) => (", 'changed', json(?)".to_string(), vec![names()]),
    }
}

/// The SQL for a log entry's summary (its text bound once): `{}` is the resource's `name`; for
/// a write that worked out its changes in SQL, `{changed}` is their names, with commas.
fn summary_sql(name: &str, source: Changed) -> String {
    match source {
        Changed::Listed => format!("replace(?, '{{}}', {name})"),
        Changed::InRow => format!(
            "replace(replace(?, '{{}}', {name}), '{{changed}}', \
             (SELECT group_concat(c.value, ', ') FROM json_each(u.write_changes) c))"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::EventType;
    use crate::store::table::Table;

    #[test]
    fn every_event_type_has_one_name_that_parses_back_under_its_tables_prefix() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(t));
            let prefix = t.name().split('.').next().unwrap_or_default();
            // An alert's event is the organisation's, not a table's.
            assert!(
                prefix == "organisation"
                    || [Table::Users, Table::Groups]
                        .iter()
                        .any(|table| table.event_prefix() == prefix),
                "{}",
                t.name()
            );
        }
        assert_eq!(EventType::parse("user.exploded"), None);
    }

    #[test]
    fn the_readme_lists_exactly_the_event_types() {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("| type | when |")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("the README's table of event types");
        let mut listed: Vec<&str> = table
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| {
                ["user.", "group.", "organisation."]
                    .iter()
                    .any(|p| w.starts_with(p))
            })
            .collect();
        listed.sort_unstable();
        listed.dedup();
        let mut all = EventType::ALL.map(EventType::name).to_vec();
        all.sort_unstable();
        assert_eq!(listed, all);
    }
}
