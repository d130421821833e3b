-- Refused authentication, logged aggregated: one entry per organisation, client address,
-- minute and reason, whose `count` grows with every refusal it stands for. So a stranger who
-- sends thousands of requests with random tokens (or none) leaves a handful of rows, never
-- a row per request, and the log's cap counts these entries apart from the requests an
-- identity provider really made (src/store/upkeep.rs): a flood cannot push one of those out.

-- `<minute>|<address>|<reason>` on an aggregated refusal; NULL on a request's own entry.
ALTER TABLE logs ADD COLUMN refusal_key TEXT;
-- How many requests an aggregated refusal stands for (NULL: one).
ALTER TABLE logs ADD COLUMN count INTEGER;

CREATE UNIQUE INDEX logs_refusals ON logs (tenant_id, refusal_key) WHERE refusal_key IS NOT NULL;
-- The refusals' own cap walks these alone, newest first, not the organisation's whole log.
CREATE INDEX logs_refusals_by_time ON logs (tenant_id, at, seq) WHERE refusal_key IS NOT NULL;

-- The console's CSRF token is stored as its SHA-256, like the link and the session themselves.
-- Sessions started before this migration held it in plain text: they end here (the admin opens
-- a new link), rather than keep a secret in the clear.
DELETE FROM console_sessions;
