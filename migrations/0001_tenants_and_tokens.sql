-- Tenants (customer organisations) and their Secret Tokens.
-- Instants are Unix milliseconds. Every row below `tenants` carries its tenant_id, and every
-- index on such a table leads with tenant_id.

CREATE TABLE tenants (
    id                   TEXT    PRIMARY KEY,
    subdomain            TEXT    NOT NULL UNIQUE,
    name                 TEXT    NOT NULL,
    provisioning_enabled INTEGER NOT NULL DEFAULT 1 CHECK (provisioning_enabled IN (0, 1)),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

-- Only the SHA-256 of a token is stored; `hint` is its last four characters.
-- A revoked token is deleted: there is no "revoked" state to forget to check.
CREATE TABLE tokens (
    id           TEXT    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hash         TEXT    NOT NULL UNIQUE,
    hint         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE INDEX tokens_by_tenant ON tokens (tenant_id, created_at);
