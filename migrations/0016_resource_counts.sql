-- Each organisation's number of users and of groups, kept by triggers in the transaction of
-- every insert and delete (so in each write's own batch, with no statement of its own): an
-- unfiltered page's totalResults (Okta's import, count=100) reads this row instead of counting
-- the organisation's rows, which grew with its size. A move recounts it on the new shard at its
-- switch (a chunk copied twice is INSERT OR REPLACEd, whose replaced rows fire no delete trigger).
CREATE TABLE resource_counts (
    tenant_id TEXT    NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('users', 'groups')),
    n         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind)
) WITHOUT ROWID;

INSERT INTO resource_counts (tenant_id, kind, n)
    SELECT tenant_id, 'users', count(*) FROM users GROUP BY tenant_id;
INSERT INTO resource_counts (tenant_id, kind, n)
    SELECT tenant_id, 'groups', count(*) FROM groups GROUP BY tenant_id;

CREATE TRIGGER users_counted AFTER INSERT ON users BEGIN
    INSERT INTO resource_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'users', 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER users_uncounted AFTER DELETE ON users BEGIN
    UPDATE resource_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND kind = 'users';
END;
CREATE TRIGGER groups_counted AFTER INSERT ON groups BEGIN
    INSERT INTO resource_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'groups', 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER groups_uncounted AFTER DELETE ON groups BEGIN
    UPDATE resource_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND kind = 'groups';
END;
