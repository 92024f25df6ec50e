-- Instants are integer milliseconds since the Unix epoch (UTC), always
-- written by Tocsin from its injected clock, never by SQL's now().

CREATE TABLE cases (
    number       INTEGER PRIMARY KEY,
    subject      TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    customer     TEXT,
    requester    TEXT    NOT NULL,
    priority     TEXT    NOT NULL,
    plan         TEXT    NOT NULL,
    policy       TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    assignee     TEXT,
    opened_at    INTEGER NOT NULL,
    acked_at     INTEGER,
    resolved_at  INTEGER,
    respond_due  INTEGER,
    update_due   INTEGER,
    resolve_due  INTEGER,
    esc_round    INTEGER NOT NULL,
    esc_step     INTEGER NOT NULL,
    esc_running  INTEGER NOT NULL,
    version      INTEGER NOT NULL
);
CREATE INDEX cases_by_status ON cases (status, number);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_number INTEGER NOT NULL REFERENCES cases (number),
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    channel     TEXT,
    text        TEXT    NOT NULL
);
CREATE INDEX events_by_case ON events (case_number, id);

-- The outbox: every message Tocsin sends, written in the transaction of the
-- change that causes it, then delivered by the dispatcher.
CREATE TABLE pages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_number INTEGER NOT NULL REFERENCES cases (number),
    person      TEXT,
    address     TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    round       INTEGER,
    step        INTEGER,
    detail      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    lease_until INTEGER,
    provider_id TEXT,
    error       TEXT
);
CREATE INDEX pages_by_status ON pages (status, id);
CREATE INDEX pages_by_case ON pages (case_number, id);

-- Durable timers, at most one of each kind per case. A worker claims a due
-- timer with a lease (owner, lease_until); firing deletes it in the same
-- transaction as its effects.
CREATE TABLE timers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_number INTEGER NOT NULL REFERENCES cases (number),
    kind        TEXT    NOT NULL,
    due_at      INTEGER NOT NULL,
    round       INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    owner       TEXT,
    lease_until INTEGER,
    UNIQUE (case_number, kind)
);
CREATE INDEX timers_by_due ON timers (due_at, id);

CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    hash       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL,
    person     TEXT,
    created_at INTEGER NOT NULL
);
