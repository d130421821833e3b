-- Roles from groups (src/store/roles.rs). A user's *effective* role is stored with the user,
-- so that every change of it is seen, and recorded in the change feed, in the batch of its
-- cause: the primary `roles` value when it names a declared role (`attribute`), else the
-- highest-precedence role mapped to a group the user is in, directly or through nested
-- groups (`group`, with that group's id), else the tenant's default (`default`).
ALTER TABLE users ADD COLUMN role TEXT;
ALTER TABLE users ADD COLUMN role_source TEXT CHECK (role_source IN ('attribute', 'group', 'default'));
ALTER TABLE users ADD COLUMN role_group TEXT;
-- The write that last changed the effective role (its events find the users it re-roled).
ALTER TABLE users ADD COLUMN role_tag TEXT;

-- Per tenant, in its shard: the deployment's declared roles as this tenant last applied them
-- (a JSON array, highest precedence first; `[]`: none declared, any primary value counts),
-- which declaration that was, and the tenant's default role.
ALTER TABLE tenants ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tenants ADD COLUMN roles_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN default_role TEXT;

CREATE TABLE role_mappings (
    tenant_id TEXT NOT NULL,
    group_id  TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id)
);

-- Users a membership change may re-role, noted before the change and cleared after it, in
-- the same batch (the members a change removes are not there to find afterwards).
CREATE TABLE role_pending (
    tenant_id TEXT NOT NULL,
    tag       TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, tag, user_id)
);

-- In `DB`: the deployment's declared roles (PUT /admin/v1/roles) and their version.
CREATE TABLE app_roles (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    roles   TEXT    NOT NULL,
    version INTEGER NOT NULL
);

-- With no roles declared, the effective role is the primary `roles` value, as before.
UPDATE users SET
    role = (SELECT v.value FROM user_values v WHERE v.tenant_id = users.tenant_id
            AND v.user_id = users.id AND v.attr = 'roles' AND v.is_primary = 1 LIMIT 1);
UPDATE users SET role_source = 'attribute' WHERE role IS NOT NULL;
