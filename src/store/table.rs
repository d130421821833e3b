//! The tables resources live in (`users u`, `groups g`) and what differs between them at the
//! level of SQL: names, aliases, the columns a resource is read with, the references read
//! beside it. Every other store module builds on it, so it imports none of them but [`Refs`],
//! the kind of references a table's resources carry.

use super::refs::Refs;
use scim_core::scim::schema::{ResourceType, GROUP_TYPE, USER_TYPE};

/// The table of a resource type: `users u` or `groups g`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Groups,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Groups => "groups",
        }
    }

    /// The alias every statement gives the table.
    pub fn alias(self) -> &'static str {
        match self {
            Table::Users => "u",
            Table::Groups => "g",
        }
    }

    /// The resource type whose resources the table holds.
    pub fn resource_type(self) -> &'static ResourceType {
        match self {
            Table::Users => &USER_TYPE,
            Table::Groups => &GROUP_TYPE,
        }
    }

    /// The column that names a resource the way an admin recognises it.
    pub fn name_column(self) -> &'static str {
        match self {
            Table::Users => "user_name",
            Table::Groups => "display_name",
        }
    }

    /// The attribute that names a resource the way an admin recognises it.
    pub fn name_attribute(self) -> &'static str {
        match self {
            Table::Users => "userName",
            Table::Groups => "displayName",
        }
    }

    /// The word change-feed event types start with (`user.created`, `group.deleted`).
    pub fn event_prefix(self) -> &'static str {
        match self {
            Table::Users => "user",
            Table::Groups => "group",
        }
    }

    /// The references read beside a resource of this table.
    pub fn refs(self) -> Refs {
        match self {
            Table::Users => Refs::Groups,
            Table::Groups => Refs::Members,
        }
    }

    /// The columns a resource is read with. A user also says whether its enterprise
    /// `manager` names a user of the tenant (so that `$ref` is given only then).
    pub(super) fn columns(self) -> &'static str {
        match self {
            Table::Users => {
                "u.id, u.data, u.version, u.created_at, u.updated_at, \
                 EXISTS (SELECT 1 FROM users m WHERE m.tenant_id = u.tenant_id AND m.id = u.manager_id) \
                 AS manager_exists"
            }
            Table::Groups => "g.id, g.data, g.version, g.created_at, g.updated_at",
        }
    }
}
