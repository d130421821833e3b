-- OAuth 2.0 client credentials and workload identity federation, per tenant (in its shard).
--
-- An access token the token endpoint issues is a row of `tokens`, beside the Secret Tokens, so
-- that the one gate of every SCIM batch checks both: `expires_at` is its end (NULL: a Secret
-- Token, which does not expire) and `minted_by` what it was issued for (a client secret's id,
-- or 'federation'), so that revoking the secret or changing the federation deletes its tokens
-- in the same batch.
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE tokens ADD COLUMN minted_by TEXT;
CREATE INDEX tokens_by_minting ON tokens (tenant_id, minted_by) WHERE minted_by IS NOT NULL;

-- The tenant's OAuth client: its public id, made with its first secret or its federation,
-- and the federated credential Entra's assertions must match (all four set, or none).
CREATE TABLE oauth_clients (
    tenant_id  TEXT    PRIMARY KEY,
    client_id  TEXT    NOT NULL UNIQUE,
    issuer     TEXT,
    subject    TEXT,
    audience   TEXT,
    jwks_uri   TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Client secrets: only their SHA-256, like Secret Tokens; at most two live at a time.
CREATE TABLE oauth_secrets (
    id           TEXT    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    hint         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX oauth_secrets_by_tenant ON oauth_secrets (tenant_id, created_at);

-- Client assertions already accepted (their jti, or Entra's uti), kept until they expire, so
-- that each is accepted once; `token_id` is the access token it was exchanged for.
CREATE TABLE oauth_assertions (
    tenant_id  TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    token_id   TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);
