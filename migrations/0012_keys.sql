-- API keys of the admin API (src/service/keys.rs), in `DB` with the catalog: a key is the
-- host app's, not one tenant's, even when it is bound to one. Only the key's SHA-256 is
-- stored; `scopes` are their names, space-separated. A key bound to a tenant (`tenant_id`,
-- with its subdomain, which never changes) goes with it when the tenant leaves the catalog.
CREATE TABLE api_keys (
    id               TEXT    PRIMARY KEY,
    name             TEXT    NOT NULL,
    hash             TEXT    NOT NULL UNIQUE,
    hint             TEXT    NOT NULL,
    scopes           TEXT    NOT NULL,
    tenant_id        TEXT,
    tenant_subdomain TEXT,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER,
    CHECK ((tenant_id IS NULL) = (tenant_subdomain IS NULL))
);

CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id) WHERE tenant_id IS NOT NULL;
