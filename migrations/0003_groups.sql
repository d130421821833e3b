-- SCIM Groups and memberships. A membership is a row, not an element of a JSON array, so adding
-- or removing one member costs the same in a group of 10 or of 100,000, and concurrent member
-- changes never overwrite each other.

CREATE TABLE groups (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT    NOT NULL,
    display_name TEXT    NOT NULL,
    external_id  TEXT,
    -- The group's attributes other than members (canonical names), as sent.
    data         TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    write_id     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- displayName is unique per tenant, case-insensitively (Entra matches groups on it).
CREATE UNIQUE INDEX groups_by_display_name ON groups (tenant_id, display_name COLLATE NOCASE);
CREATE INDEX groups_by_external_id ON groups (tenant_id, external_id);
CREATE INDEX groups_by_created ON groups (tenant_id, created_at, id);

-- member_type is 'User' or 'Group'. No foreign keys to users/groups: a member may be either,
-- and the statements that delete a user or a group delete its memberships in the same batch.
CREATE TABLE memberships (
    tenant_id   TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    member_type TEXT NOT NULL CHECK (member_type IN ('User', 'Group')),
    PRIMARY KEY (tenant_id, group_id, member_id)
) WITHOUT ROWID;

CREATE INDEX memberships_by_member ON memberships (tenant_id, member_id);
