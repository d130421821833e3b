-- The organisation admin's console: one-time links that open it, and its sessions.
--
-- Both hold only the SHA-256 of their secret. Sessions live in D1, not KV: signing out,
-- disabling provisioning and deleting the organisation must end a session's power at once and
-- everywhere, which KV's propagation (up to a minute between locations) would not give; the
-- console's few requests do not need KV's latency. Expired rows are removed by the Cron Trigger.

CREATE TABLE console_links (
    hash       TEXT    PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE console_sessions (
    hash       TEXT    PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    -- The CSRF token the console's page sends back in a header with every call.
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX console_links_by_tenant ON console_links (tenant_id);
CREATE INDEX console_sessions_by_tenant ON console_sessions (tenant_id);
