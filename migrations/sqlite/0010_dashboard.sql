-- Dashboard sign-in: a session stands for the API token it was made from
-- (so deleting the token ends its sessions) and carries the CSRF secret its
-- forms must echo. Only a hash of the cookie value is kept.
CREATE TABLE sessions (
    hash       TEXT    PRIMARY KEY,
    token_hash TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Reports read cases by when they were opened, and pages by when they
-- were made.
CREATE INDEX cases_by_opened ON cases (opened_at);
CREATE INDEX pages_by_created ON pages (created_at);
