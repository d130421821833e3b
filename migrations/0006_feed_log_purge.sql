-- The vendor's side: the change feed, the provisioning log, and organisations deleted in pieces.
--
-- `seq` is AUTOINCREMENT in both tables: D1 runs one write at a time, so a row's seq is
-- assigned inside its write's transaction, in commit order, and is never reused after
-- retention removes older rows. That is what makes a feed cursor (the last seq read) resume
-- exactly: a reader sees every row below the highest seq it has seen.
-- Neither table references `tenants`: rows are written in the batch of the change they
-- describe, and removed by retention or by an organisation's purge, in chunks.

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL,
    -- user.created, user.updated, user.deactivated, user.reactivated, user.deleted,
    -- group.created, group.updated, group.deleted, group.members_added, group.members_removed
    type        TEXT    NOT NULL,
    resource_id TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    -- {"user"|"group": the directory shape after the change (before it, for deletions),
    --  "changed": [attribute names]?, "members": [{"id", "type"}]?}
    data        TEXT    NOT NULL
);

CREATE INDEX events_by_tenant ON events (tenant_id, seq);

-- One row per SCIM request of a known organisation. Never a token, a body, or an attribute
-- value other than the userName or displayName in `resource_name`.
CREATE TABLE logs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    method        TEXT    NOT NULL,
    -- The path below the SCIM root, with the resource id, without the query string.
    route         TEXT    NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    resource_name TEXT,
    status        INTEGER NOT NULL,
    failed        INTEGER NOT NULL CHECK (failed IN (0, 1)),
    scim_type     TEXT,
    detail        TEXT,
    summary       TEXT,
    -- JSON array of strings, or NULL.
    warnings      TEXT,
    duration_ms   INTEGER,
    request_id    TEXT
);

-- The log reads newest first by the request's time, then seq: an entry written after its
-- response (a read's) may commit after a later request's write.
CREATE INDEX logs_by_tenant ON logs (tenant_id, at, seq);
CREATE INDEX logs_failures ON logs (tenant_id, failed, at, seq);
CREATE INDEX logs_by_resource ON logs (tenant_id, resource_id, at, seq);

-- A deleted organisation is unreachable at once: its tokens are deleted and its `subdomain`
-- becomes its id (which no valid subdomain can equal, so the name is free again), the name it
-- had kept in `deleted_subdomain`. Its rows are then purged in chunks; the row itself goes last.
ALTER TABLE tenants ADD COLUMN deleted_at INTEGER;
ALTER TABLE tenants ADD COLUMN deleted_subdomain TEXT;
