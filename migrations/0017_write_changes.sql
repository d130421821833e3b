-- A PATCH that only sets single-valued leaves of a user (`displayName`, `name.givenName`,
-- `urn:…:User:department`: Entra's attribute updates) is one UPDATE that reads nothing first
-- (src/store/users.rs, `set_leaves`). Which attributes it really changed is worked out in that
-- UPDATE, against the row as it was, and kept here for the write's own change-feed event and
-- log entry, later in the same batch, to read. Other writes leave it as it is; nothing else
-- reads it.
ALTER TABLE users ADD COLUMN write_changes TEXT;
