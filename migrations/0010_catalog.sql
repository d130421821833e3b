-- One word for one thing: the list of tenants in `DB` is the catalog (the code's
-- `store::catalog`), as the admin API says tenants; 0009 named it `organisations`.
ALTER TABLE organisations RENAME TO catalog;
DROP INDEX organisations_by_shard;
CREATE INDEX catalog_by_shard ON catalog (shard, id);
