-- Organisations spread over several D1 databases ("shards"). Every migration applies to every
-- shard, so each holds the same tables; the two below are used in `DB`, the directory, alone.
--
-- `organisations` is the directory's list: which organisation a subdomain names, and which
-- shard holds its rows. Subdomains are unique here, across every shard. The organisation's own
-- rows (its `tenants` row, tokens, console links and sessions, users, groups, events, log)
-- live in its shard; the `tenants` row there repeats the name and the provisioning switch,
-- because the gate of every SCIM batch reads them inside the shard.
CREATE TABLE organisations (
    id                   TEXT    PRIMARY KEY,
    subdomain            TEXT    NOT NULL UNIQUE,
    name                 TEXT    NOT NULL,
    provisioning_enabled INTEGER NOT NULL DEFAULT 1 CHECK (provisioning_enabled IN (0, 1)),
    -- The binding of the shard that holds its rows (`DB`, `SHARD_2`, ...).
    shard                TEXT    NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

CREATE INDEX organisations_by_shard ON organisations (shard, id);

-- What the directory knows of each shard beyond its binding: whether new organisations may be
-- placed on it (a closed shard keeps serving its own), and its size when last measured. A shard
-- with no row here is open.
CREATE TABLE shards (
    binding     TEXT    PRIMARY KEY,
    open        INTEGER NOT NULL DEFAULT 1 CHECK (open IN (0, 1)),
    bytes       INTEGER,
    measured_at INTEGER
);

-- Every organisation so far lives in `DB`. (On any other shard, `tenants` is empty here.)
INSERT INTO organisations (id, subdomain, name, provisioning_enabled, shard, created_at, updated_at)
SELECT id, subdomain, name, provisioning_enabled, 'DB', created_at, updated_at
FROM tenants WHERE deleted_at IS NULL;

-- Moving an organisation to another shard online (src/service/moves.rs). The directory keeps
-- the move's state: {"to", "phase", "table", "after", "copied", "total", "events", "logs", …}
-- as JSON, and a lease so that two drivers (the request that started it, the Cron Trigger)
-- never copy at once.
ALTER TABLE organisations ADD COLUMN move TEXT;
ALTER TABLE organisations ADD COLUMN move_lease INTEGER;

-- In a shard: until when the organisation's writes are refused (503, retried by identity
-- providers) while a move switches it over; on its new shard, while its rows arrive. It lapses
-- by itself, so a move that fails half-way never leaves an organisation unwritable.
ALTER TABLE tenants ADD COLUMN frozen_until INTEGER;
-- On the old shard once a move is done: where the organisation went (its rows are purged).
ALTER TABLE tenants ADD COLUMN moved_to TEXT;

-- A copied event keeps where it was first committed (the shard's binding, and its seq there):
-- the change feed's cursor names those, so it neither repeats nor skips an event across moves.
-- NULL on an event committed in this shard.
ALTER TABLE events ADD COLUMN origin TEXT;
ALTER TABLE events ADD COLUMN origin_seq INTEGER;
CREATE UNIQUE INDEX events_origin ON events (origin, origin_seq) WHERE origin IS NOT NULL;

-- The same for log entries, so that copying them twice keeps one.
ALTER TABLE logs ADD COLUMN origin TEXT;
ALTER TABLE logs ADD COLUMN origin_seq INTEGER;
CREATE UNIQUE INDEX logs_origin ON logs (origin, origin_seq) WHERE origin IS NOT NULL;
