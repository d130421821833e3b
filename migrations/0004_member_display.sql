-- A member's `display` as the client sent it (RFC 7643 §2.4: an optional, immutable
-- sub-attribute), returned as sent rather than computed by the server.
ALTER TABLE memberships ADD COLUMN display TEXT;
