-- Credentials an organisation retired: its revoked Secret Tokens, its revoked client secrets
-- (and the access tokens issued for them), its client secrets that expired. Only their
-- SHA-256, as when they were live, kept for 30 days (`expires_at`, removed by upkeep).
-- A refused request that presents one is no stranger's guess: it is the organisation's own
-- identity provider still using a credential it was told to stop using, so `seen_at` (the
-- latest such request) raises the provisioning_failing alert until a request succeeds.
CREATE TABLE retired_credentials (
    tenant_id  TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    retired_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    seen_at    INTEGER
);
CREATE UNIQUE INDEX retired_credentials_by_hash ON retired_credentials (tenant_id, hash);
CREATE INDEX retired_credentials_lapse ON retired_credentials (expires_at);
