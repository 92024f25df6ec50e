-- Issue 13: tokens that expire and can be revoked, feed-only tokens, and
-- the audit log.

-- A feed token opens one schedule's feed (or one person's, in `person`).
ALTER TABLE tokens ADD COLUMN schedule TEXT;
-- NULL: never expires.
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
-- Set once by `tocsin token revoke`; the token is refused from then on.
ALTER TABLE tokens ADD COLUMN revoked_at BIGINT;

-- Revoking a token ends its dashboard sessions.
CREATE INDEX sessions_by_token ON sessions (token_hash);

-- What was done, by whom, from where: appended, never changed.
CREATE TABLE audit (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    subject TEXT   NOT NULL,
    detail  TEXT   NOT NULL,
    client  TEXT
);
CREATE INDEX audit_by_at ON audit (at);
-- The sign-in limit counts one client's failed sign-ins in a window.
CREATE INDEX audit_by_client ON audit (action, client, at);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
