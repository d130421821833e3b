-- Webhooks (src/service/host_app/webhooks.rs), in `DB` with the catalog: an endpoint is the
-- host app's, not one tenant's, even when it is limited to one.
--
-- `secret` and `old_secret` are sealed: AES-GCM under a key derived from the Worker secret
-- WEBHOOK_KEY (a random 12-byte IV each), so a copy of the database alone cannot sign.
-- `events` is a JSON array of event types ([] is every type).
CREATE TABLE webhooks (
    id               TEXT    PRIMARY KEY,
    url              TEXT    NOT NULL,
    events           TEXT    NOT NULL,
    tenant_id        TEXT,
    tenant_subdomain TEXT,
    secret           TEXT    NOT NULL,
    old_secret       TEXT,
    old_until        INTEGER,
    enabled          INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    disabled_reason  TEXT,
    -- The first failure of the current run of failures (none since the last success).
    failing_since    INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK ((tenant_id IS NULL) = (tenant_subdomain IS NULL))
);

CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id) WHERE tenant_id IS NOT NULL;

-- One lane per endpoint and organisation: the organisation's events go to the endpoint in
-- commit order, one at a time. `cursor` is the organisation's feed cursor after the last
-- event settled (delivered or dead-lettered); `head` the event in flight (JSON: id, type,
-- cursor, body), tried `attempt` times, next at `next_at`; `lease_until` keeps a second
-- consumer off it while one attempt is under way.
CREATE TABLE webhook_lanes (
    webhook_id  TEXT    NOT NULL,
    tenant_id   TEXT    NOT NULL,
    cursor      TEXT    NOT NULL,
    head        TEXT,
    attempt     INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER,
    lease_until INTEGER,
    PRIMARY KEY (webhook_id, tenant_id)
) WITHOUT ROWID;

CREATE INDEX webhook_lanes_due ON webhook_lanes (next_at) WHERE head IS NOT NULL;
CREATE INDEX webhook_lanes_by_tenant ON webhook_lanes (tenant_id);

-- Every attempt. outcome: delivered, retrying, failed (the schedule is spent: the event is
-- in webhook_dead), gone (410: the endpoint was disabled), replayed, test.
CREATE TABLE webhook_attempts (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  TEXT    NOT NULL,
    tenant_id   TEXT,
    event_id    TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    status      INTEGER,
    outcome     TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL,
    error       TEXT,
    next_at     INTEGER,
    at          INTEGER NOT NULL
);

CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, seq);
CREATE INDEX webhook_attempts_by_time ON webhook_attempts (at);

-- The dead-letter list: events whose schedule was spent, with the body as it was sent, until
-- replayed or expired with the feed's retention.
CREATE TABLE webhook_dead (
    webhook_id  TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    tenant_id   TEXT,
    event_type  TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    failed_at   INTEGER NOT NULL,
    replayed_at INTEGER,
    PRIMARY KEY (webhook_id, event_id)
) WITHOUT ROWID;

-- Alerts raised for an organisation (in its shard, copied by a move): one row per kind while
-- raised; its feed event was written in the same batch, and the `…_recovered` event in the
-- batch that deletes it.
CREATE TABLE alerts (
    tenant_id TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    raised_at INTEGER NOT NULL,
    detail    TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, kind)
) WITHOUT ROWID;
