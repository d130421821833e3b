-- A tenant is listed in the catalog before its row is made on its shard: two databases, and no
-- transaction spans them (src/service/tenants.rs, `create`). `made` is 0 from the listing until
-- its shard's row is known to exist, so that the Cron Trigger can find a create that never
-- finished (it answered 503 and was not retried) and take it off the list, freeing its
-- subdomain, instead of listing a tenant whose every route answers 404. Rows listed before
-- this migration were made.
ALTER TABLE catalog ADD COLUMN made INTEGER NOT NULL DEFAULT 1;
CREATE INDEX catalog_unmade ON catalog (created_at) WHERE made = 0;
