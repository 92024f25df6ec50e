-- Messages that belong to no case (notices to managers): the outbox's case
-- becomes optional. SQLite cannot relax NOT NULL in place, so the table is
-- rebuilt with the same rows and indexes.
CREATE TABLE pages_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    case_number     INTEGER REFERENCES cases (number),
    person          TEXT,
    address         TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    round           INTEGER,
    step            INTEGER,
    detail          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    owner           TEXT,
    lease_until     INTEGER,
    provider_id     TEXT,
    error           TEXT,
    next_attempt_at INTEGER,
    in_doubt        INTEGER NOT NULL DEFAULT 0,
    prev_claimed_at INTEGER
);
INSERT INTO pages_new (id, case_number, person, address, channel, kind, round, step, detail, status, created_at, updated_at,
                       attempts, owner, lease_until, provider_id, error, next_attempt_at, in_doubt, prev_claimed_at)
    SELECT id, case_number, person, address, channel, kind, round, step, detail, status, created_at, updated_at,
           attempts, owner, lease_until, provider_id, error, next_attempt_at, in_doubt, prev_claimed_at
    FROM pages;
DROP TABLE pages;
ALTER TABLE pages_new RENAME TO pages;
CREATE INDEX pages_by_status ON pages (status, id);
CREATE INDEX pages_by_case ON pages (case_number, id);
CREATE INDEX pages_by_address ON pages (address, kind, created_at);
CREATE INDEX pages_by_provider_id ON pages (provider_id);
CREATE INDEX pages_by_person ON pages (person, channel, status, updated_at);

-- People who replied STOP to an SMS: not paged by SMS until they reply START.
CREATE TABLE sms_opt_outs (
    person TEXT    PRIMARY KEY,
    since  INTEGER NOT NULL
);
