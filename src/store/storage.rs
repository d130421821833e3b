//! Where each attribute of a resource is stored: one table ([`MAP`]) that the filter and sort
//! translation ([`super::filter_sql`]), the row writers ([`super::users`], [`super::groups`])
//! and, through a test, the migrations all read, so that moving an attribute into a column is
//! a change here and in a migration, not in every statement that names it.
//!
//! Every resource keeps its whole SCIM document in `data` (JSON). Beside it:
//! - some attributes are copied into columns on every write, so that a filter on them seeks an
//!   index and their uniqueness (RFC 7643 §2.1 `uniqueness: server`) is a unique index's job;
//!   a case-insensitive one also has a column of its Unicode case folding, which is what is
//!   compared;
//! - the server's own attributes (`id`, `meta`) live only in the row;
//! - multi-valued attributes with the standard sub-attributes (RFC 7643 §2.4: `value`,
//!   `display`, `type`, `primary`) are also rows of `user_values`, and references (a group's
//!   `members`, a user's `groups`) are only rows of `memberships`.

use serde_json::{Map, Value};

use super::table::Table;
use super::Param;
use scim_core::scim::fold::fold;
use scim_core::scim::schema::{Attr, AttrRef, ENTERPRISE_USER_SCHEMA};
use scim_core::scim::value::{as_bool, as_text};

/// Where one attribute (or sub-attribute) is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In `data`, and copied into a column of the row on every write.
    Column(Column),
    /// Only in the row, as this SQL (`{t}` stands for the table's alias).
    Row(&'static str),
    /// The same, holding Unix milliseconds (`meta.created`, `meta.lastModified`).
    Millis(&'static str),
    /// Only in `data`.
    Json,
    /// A multi-valued attribute; its values are rows or JSON elements ([`Many`]).
    Many(Many),
    /// Not stored (`meta.location` is built from the request's URL): nothing to filter on.
    Nowhere,
}

/// A column that copies an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// The column that holds the value's Unicode case folding, for a case-insensitive value.
    pub key: Option<&'static str>,
    pub holds: Holds,
    /// An index on (`tenant_id`, the key or else the column) finds the value by equality, so a
    /// filter `eq` on it reads a few rows (see [`super::filter_sql::narrows`]); a test checks
    /// that the migrations made the index.
    pub seeks: bool,
}

/// What a column holds, and what it holds when the attribute is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// Text; NULL when absent.
    Text,
    /// Text of a required attribute (a NOT NULL column); `''` when absent.
    Required,
    /// 0 or 1 (a CHECK constraint); a boolean read as SCIM reads one (`"True"` too), and true
    /// when absent (RFC 7643 §4.1.1: a user is active unless told otherwise).
    Flag,
}

/// How the values of a multi-valued attribute are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Many {
    /// One row per value in `user_values v` (value, value_key, type, display, is_primary).
    Values,
    /// Only in `data`, read with `json_each(…) j` (`addresses`: no `value` to index).
    Json,
    /// A group's `members`: rows of `memberships m` with `m.group_id` the group.
    Members,
    /// A user's `groups`: rows of `memberships m` with `m.member_id` the user.
    UserGroups,
}

/// An attribute path: `userName`, `meta.created`, the enterprise extension's `manager.value`.
/// A multi-valued attribute's entry has no `sub`: it covers all of its sub-attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// The extension's URN; `None` for the resource type's core schema.
    pub extension: Option<&'static str>,
    pub attr: &'static str,
    pub sub: Option<&'static str>,
}

impl At {
    fn is(&self, a: &AttrRef) -> bool {
        let extension = a.extension.then_some(a.schema.id);
        self.extension == extension
            && self.attr == a.attr.name
            && (self.sub == a.sub.map(|s| s.name) || (self.sub.is_none() && a.attr.multi_valued))
    }

    /// The attribute's value in a resource's data.
    fn get<'d>(&self, data: &'d Map<String, Value>) -> Option<&'d Value> {
        let container = match self.extension {
            Some(urn) => data.get(urn)?.as_object()?,
            None => data,
        };
        let v = container.get(self.attr)?;
        match self.sub {
            Some(sub) => v.get(sub),
            None => Some(v),
        }
    }
}

/// One entry of [`MAP`]: where `at` is stored in `table` (`None`: in both).
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    pub table: Option<Table>,
    pub at: At,
    pub storage: Storage,
}

const fn core(table: Option<Table>, attr: &'static str, storage: Storage) -> Mapping {
    Mapping {
        table,
        at: At {
            extension: None,
            attr,
            sub: None,
        },
        storage,
    }
}

const fn meta(table: Option<Table>, sub: &'static str, storage: Storage) -> Mapping {
    Mapping {
        table,
        at: At {
            extension: None,
            attr: "meta",
            sub: Some(sub),
        },
        storage,
    }
}

const fn column(name: &'static str, key: Option<&'static str>, holds: Holds) -> Storage {
    Storage::Column(Column {
        name,
        key,
        holds,
        seeks: false,
    })
}

/// A column with an index that finds it by equality.
const fn indexed(name: &'static str, key: Option<&'static str>, holds: Holds) -> Storage {
    Storage::Column(Column {
        name,
        key,
        holds,
        seeks: true,
    })
}

const USERS: Option<Table> = Some(Table::Users);
const GROUPS: Option<Table> = Some(Table::Groups);

/// Every attribute stored anywhere but in `data` alone (what is not here is [`Storage::Json`],
/// or [`Many::Values`]/[`Many::Json`] by its sub-attributes: see [`storage`]).
pub const MAP: &[Mapping] = &[
    core(None, "id", Storage::Row("{t}.id")),
    core(
        None,
        "externalId",
        indexed("external_id", None, Holds::Text),
    ),
    core(
        USERS,
        "userName",
        indexed("user_name", Some("user_name_key"), Holds::Required),
    ),
    core(USERS, "active", column("active", None, Holds::Flag)),
    core(
        GROUPS,
        "displayName",
        indexed("display_name", Some("display_name_key"), Holds::Required),
    ),
    Mapping {
        table: USERS,
        at: At {
            extension: Some(ENTERPRISE_USER_SCHEMA),
            attr: "manager",
            sub: Some("value"),
        },
        storage: column("manager_id", None, Holds::Text),
    },
    core(USERS, "groups", Storage::Many(Many::UserGroups)),
    core(GROUPS, "members", Storage::Many(Many::Members)),
    meta(None, "created", Storage::Millis("{t}.created_at")),
    meta(None, "lastModified", Storage::Millis("{t}.updated_at")),
    meta(
        None,
        "version",
        Storage::Row("('W/\"' || {t}.version || '\"')"),
    ),
    meta(USERS, "resourceType", Storage::Row("'User'")),
    meta(GROUPS, "resourceType", Storage::Row("'Group'")),
];

/// Where `a` is stored in `table`.
pub fn storage(table: Table, a: &AttrRef) -> Storage {
    let mapped = MAP
        .iter()
        .find(|m| m.table.is_none_or(|t| t == table) && m.at.is(a));
    match mapped {
        Some(m) => m.storage,
        None if !a.extension && a.attr.name == "meta" => Storage::Nowhere,
        None if a.attr.multi_valued => Storage::Many(unmapped_many(table, a.attr)),
        None => Storage::Json,
    }
}

/// A multi-valued attribute not in [`MAP`]: rows of `user_values` if it has the standard
/// sub-attributes (and is a user's), else JSON.
fn unmapped_many(table: Table, attr: &Attr) -> Many {
    let standard = attr.sub_attributes.len() == 4
        && ["value", "display", "type", "primary"]
            .iter()
            .all(|n| attr.sub(n).is_some());
    if standard && table == Table::Users {
        Many::Values
    } else {
        Many::Json
    }
}

/// How a multi-valued attribute of `table`'s core schema is stored.
pub fn many(table: Table, attr: &'static Attr) -> Option<Many> {
    let a = AttrRef {
        schema: table.resource_type().schema,
        extension: false,
        attr,
        sub: None,
    };
    match storage(table, &a) {
        Storage::Many(m) => Some(m),
        _ => None,
    }
}

/// The SQL for one sub-attribute of a value stored as [`Many`], inside the subquery that
/// reads the values (aliases `v`, `j`, `m`); `None` for a sub-attribute that is not stored.
pub fn element(many: Many, sub: &str) -> Option<String> {
    Some(match (many, sub) {
        (Many::Values, "primary") => "v.is_primary".to_string(),
        // The key column: folded for a case-insensitive value, the value itself otherwise.
        (Many::Values, "value") => "v.value_key".to_string(),
        (Many::Values, "type" | "display") => format!("v.{sub}"),
        (Many::Json, name) => format!("json_extract(j.value, '$.\"{name}\"')"),
        (Many::Members, "value") => "m.member_id".to_string(),
        (Many::Members, "type") => "m.member_type".to_string(),
        (Many::Members, "display") => "m.display".to_string(),
        (Many::UserGroups, "value") => "m.group_id".to_string(),
        (Many::UserGroups, "type") => "'direct'".to_string(),
        (Many::UserGroups, "display") => "(SELECT mg.display_name FROM groups mg \
             WHERE mg.tenant_id = m.tenant_id AND mg.id = m.group_id)"
            .to_string(),
        _ => return None,
    })
}

/// The columns a resource's row copies from its data, and their values, in [`MAP`]'s order.
pub struct Copied {
    pub columns: Vec<&'static str>,
    pub params: Vec<Param>,
}

impl Copied {
    /// The columns as `a, b, c`.
    pub fn names(&self) -> String {
        self.columns.join(", ")
    }

    /// The columns as `a = ?, b = ?, c = ?`.
    pub fn assignments(&self) -> String {
        self.columns
            .iter()
            .map(|c| format!("{c} = ?"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The text a column was given (for messages and checks that name the value).
    pub fn text(&self, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| *c == column)?;
        match self.params.get(i)? {
            Param::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// What `table`'s columns copy from `data` (RFC 7643 values as the columns hold them: text,
/// booleans as 0/1, a case-insensitive value's folding in its key column).
pub fn copied(table: Table, data: &Map<String, Value>) -> Copied {
    let mut out = Copied {
        columns: Vec::new(),
        params: Vec::new(),
    };
    for m in MAP.iter().filter(|m| m.table.is_none_or(|t| t == table)) {
        let Storage::Column(c) = m.storage else {
            continue;
        };
        let v = m.at.get(data);
        let text = || v.and_then(as_text).map(|t| t.into_owned());
        let value = match c.holds {
            Holds::Flag => Param::from(v.and_then(as_bool).unwrap_or(true)),
            Holds::Text => Param::from(text()),
            Holds::Required => Param::Text(text().unwrap_or_default()),
        };
        if let Some(key) = c.key {
            let folded = match &value {
                Param::Text(s) => Param::Text(fold(s)),
                other => other.clone(),
            };
            out.columns.push(key);
            out.params.push(folded);
        }
        out.columns.push(c.name);
        out.params.push(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::Sqlite;
    use scim_core::scim::schema::{Resolved, GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn at(table: Table, path: &str) -> Storage {
        match table.resource_type().resolve(path) {
            Resolved::Attr(a) => storage(table, &a),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn every_column_the_map_names_exists_after_the_migrations() {
        let db = Sqlite::migrated();
        for (table, name) in [(Table::Users, "users"), (Table::Groups, "groups")] {
            let existing = db.columns(name);
            for m in MAP.iter().filter(|m| m.table.is_none_or(|t| t == table)) {
                if let Storage::Column(c) = m.storage {
                    for col in [Some(c.name), c.key].into_iter().flatten() {
                        assert!(existing.contains(&col.to_string()), "{name}.{col}");
                    }
                    if c.seeks {
                        let sought = c.key.unwrap_or(c.name);
                        assert!(
                            db.indexes(name).iter().any(|cols| cols.get(..2)
                                == Some(&["tenant_id".to_string(), sought.to_string()])),
                            "an index on {name} (tenant_id, {sought})"
                        );
                    }
                }
            }
        }
        let values = db.columns("user_values");
        for sub in ["value", "primary", "type", "display"] {
            let sql = element(Many::Values, sub).expect("stored");
            let col = sql.trim_start_matches("v.");
            assert!(values.contains(&col.to_string()), "user_values.{col}");
        }
    }

    #[test]
    fn the_map_decides_filters_and_writers() {
        let c = |name, key, holds| {
            let seeks = name != "manager_id";
            Storage::Column(Column {
                name,
                key,
                holds,
                seeks,
            })
        };
        assert_eq!(
            at(Table::Users, "userName"),
            c("user_name", Some("user_name_key"), Holds::Required)
        );
        assert_eq!(
            at(Table::Groups, "displayName"),
            c("display_name", Some("display_name_key"), Holds::Required)
        );
        // displayName is only a column of groups; a user's is in its data.
        assert_eq!(at(Table::Users, "displayName"), Storage::Json);
        assert_eq!(
            at(
                Table::Users,
                &format!("{ENTERPRISE_USER_SCHEMA}:manager.value")
            ),
            c("manager_id", None, Holds::Text)
        );
        assert_eq!(
            at(Table::Users, "emails.value"),
            Storage::Many(Many::Values)
        );
        assert_eq!(at(Table::Users, "addresses"), Storage::Many(Many::Json));
        assert_eq!(
            at(Table::Users, "groups.value"),
            Storage::Many(Many::UserGroups)
        );
        assert_eq!(at(Table::Groups, "members"), Storage::Many(Many::Members));
        assert_eq!(at(Table::Users, "meta.location"), Storage::Nowhere);
        assert_eq!(
            at(Table::Groups, "meta.resourceType"),
            Storage::Row("'Group'")
        );
        assert!(USER_TYPE.schema.attr("userName").is_some());
        assert!(GROUP_TYPE.schema.attr("members").is_some());

        let data = json!({"userName": "Straße", "active": "False",
            ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m1"}}});
        let row = copied(Table::Users, data.as_object().expect("object"));
        assert_eq!(
            row.names(),
            "external_id, user_name_key, user_name, active, manager_id"
        );
        assert_eq!(
            row.params,
            [
                Param::Null,
                Param::Text("strasse".into()),
                Param::Text("Straße".into()),
                Param::Int(0),
                Param::Text("m1".into()),
            ]
        );
        assert_eq!(row.text("manager_id"), Some("m1"));
        let row = copied(Table::Users, &Map::new());
        assert_eq!(row.params.get(3), Some(&Param::Int(1)), "active by default");
    }
}
