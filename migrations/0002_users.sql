-- SCIM Users. The resource is stored as sent (canonical attribute names) in `data`; the columns
-- beside it are copies that indexes need. Instants are Unix milliseconds.

CREATE TABLE users (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT    NOT NULL,
    user_name   TEXT    NOT NULL,
    external_id TEXT,
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    manager_id  TEXT,
    data        TEXT    NOT NULL,
    -- meta.version; bumped by every write. write_id tags the write that set it, so that the
    -- statements batched after a conditional UPDATE only act if that UPDATE won.
    version     INTEGER NOT NULL,
    write_id    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- userName is unique per tenant, case-insensitively (RFC 7643 §4.1.1 caseExact false): the
-- index, not a check-then-insert, enforces it.
CREATE UNIQUE INDEX users_by_user_name ON users (tenant_id, user_name COLLATE NOCASE);
CREATE INDEX users_by_external_id ON users (tenant_id, external_id);
CREATE INDEX users_by_created ON users (tenant_id, created_at, id);

-- One row per value of the multi-valued attributes that have the standard sub-attributes
-- (emails, phoneNumbers, ims, photos, entitlements, roles, x509Certificates), so that filters
-- such as Entra's `emails[type eq "work"].value eq "…"` are index seeks.
CREATE TABLE user_values (
    tenant_id TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    attr      TEXT    NOT NULL,
    value     TEXT,
    type      TEXT,
    display   TEXT,
    is_primary INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX user_values_by_value ON user_values (tenant_id, attr, value COLLATE NOCASE);
CREATE INDEX user_values_by_user ON user_values (tenant_id, user_id);
