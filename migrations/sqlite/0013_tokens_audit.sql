-- Issue 13: tokens that expire and can be revoked, feed-only tokens, and
-- the audit log.

-- A feed token opens one schedule's feed (or one person's, in `person`).
ALTER TABLE tokens ADD COLUMN schedule TEXT;
-- NULL: never expires.
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
-- Set once by `tocsin token revoke`; the token is refused from then on.
ALTER TABLE tokens ADD COLUMN revoked_at INTEGER;

-- Revoking a token ends its dashboard sessions.
CREATE INDEX sessions_by_token ON sessions (token_hash);

-- What was done, by whom, from where: appended, never changed.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    client  TEXT
);
CREATE INDEX audit_by_at ON audit (at);
-- The sign-in limit counts one client's failed sign-ins in a window.
CREATE INDEX audit_by_client ON audit (action, client, at);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
