-- The PostgreSQL schema: the end state of migrations/sqlite in one step.
-- Instants are BIGINT milliseconds since the Unix epoch (UTC), as in SQLite,
-- always written by Tocsin from its injected clock, never by SQL's now():
-- exact to the millisecond and the same conversions for both backends.

CREATE TABLE cases (
    number        BIGINT  PRIMARY KEY,
    subject       TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    customer      TEXT,
    requester     TEXT    NOT NULL,
    priority      TEXT    NOT NULL,
    plan          TEXT    NOT NULL,
    policy        TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    assignee      TEXT,
    opened_at     BIGINT  NOT NULL,
    acked_at      BIGINT,
    resolved_at   BIGINT,
    respond_due   BIGINT,
    update_due    BIGINT,
    resolve_due   BIGINT,
    esc_round     BIGINT  NOT NULL,
    esc_step      BIGINT  NOT NULL,
    esc_running   BOOLEAN NOT NULL,
    version       BIGINT  NOT NULL,
    -- SLA clocks kept as history: the start of the current respond and
    -- update windows, the pauses of the resolve clock (JSON [{"from", "to"}]),
    -- and the warnings and breaches already announced (JSON array).
    respond_from  BIGINT,
    update_from   BIGINT,
    pauses        TEXT    NOT NULL DEFAULT '[]',
    warned        TEXT    NOT NULL DEFAULT '[]',
    -- SNOOZE: reminders to the assignee are held until this instant.
    snoozed_until BIGINT
);
CREATE INDEX cases_by_status ON cases (status, number);
CREATE INDEX cases_by_opened ON cases (opened_at);

CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_number BIGINT NOT NULL REFERENCES cases (number),
    at          BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    channel     TEXT,
    text        TEXT   NOT NULL
);
CREATE INDEX events_by_case ON events (case_number, id);
CREATE INDEX events_by_kind ON events (kind, at);

-- The outbox: every message Tocsin sends, written in the transaction of the
-- change that causes it, then delivered by the dispatchers, which claim rows
-- with a lease (owner, lease_until). A notice belongs to no case.
CREATE TABLE pages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_number     BIGINT REFERENCES cases (number),
    person          TEXT,
    address         TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    round           BIGINT,
    step            BIGINT,
    detail          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    owner           TEXT,
    lease_until     BIGINT,
    provider_id     TEXT,
    error           TEXT,
    -- Retries wait until next_attempt_at; a page claimed again after its
    -- lease ran out mid-send is in_doubt, and prev_claimed_at says since
    -- when to look for it at the provider.
    next_attempt_at BIGINT,
    in_doubt        BOOLEAN NOT NULL DEFAULT FALSE,
    prev_claimed_at BIGINT
);
CREATE INDEX pages_by_status ON pages (status, id);
CREATE INDEX pages_by_case ON pages (case_number, id);
CREATE INDEX pages_by_address ON pages (address, kind, created_at);
CREATE INDEX pages_by_provider_id ON pages (provider_id);
CREATE INDEX pages_by_person ON pages (person, channel, status, updated_at);
CREATE INDEX pages_by_created ON pages (created_at);

-- Durable timers, at most one of each kind per case. A worker claims a due
-- timer with a lease (owner, lease_until) under FOR UPDATE SKIP LOCKED;
-- firing deletes it in the same transaction as its effects.
CREATE TABLE timers (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_number BIGINT NOT NULL REFERENCES cases (number),
    kind        TEXT   NOT NULL,
    due_at      BIGINT NOT NULL,
    round       BIGINT NOT NULL,
    step        BIGINT NOT NULL,
    owner       TEXT,
    lease_until BIGINT,
    UNIQUE (case_number, kind)
);
CREATE INDEX timers_by_due ON timers (due_at, id);
CREATE INDEX timers_by_lease ON timers (lease_until) WHERE owner IS NOT NULL;

CREATE TABLE tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    hash       TEXT   NOT NULL UNIQUE,
    role       TEXT   NOT NULL,
    person     TEXT,
    created_at BIGINT NOT NULL
);

-- On-call overrides: while [starts_at, ends_at) lasts, `person` is on call
-- on `schedule`, whatever its layers say. The latest one wins.
CREATE TABLE overrides (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule   TEXT   NOT NULL,
    person     TEXT   NOT NULL,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    reason     TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX overrides_by_end ON overrides (ends_at);

-- Every inbound message, raw, committed before the door says yes (SMTP 250,
-- exit 0, HTTP 202). Filing marks it in the transaction of its case change.
CREATE TABLE inbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   BIGINT NOT NULL,
    source        TEXT   NOT NULL,  -- smtp | pipe | webhook
    envelope_from TEXT,             -- '' is the null return path
    envelope_to   TEXT   NOT NULL,  -- JSON array
    raw           BYTEA  NOT NULL,
    status        TEXT   NOT NULL,  -- pending | filed | duplicate | automatic | unusable
    case_number   BIGINT,
    message_id    TEXT,
    note          TEXT   NOT NULL DEFAULT '',
    filed_at      BIGINT
);
CREATE INDEX inbox_by_status ON inbox (status, id);

-- Every Message-ID Tocsin received or sent, and its case: what replies
-- thread by.
CREATE TABLE message_ids (
    message_id  TEXT   PRIMARY KEY,
    case_number BIGINT NOT NULL,
    direction   TEXT   NOT NULL,  -- in | out
    created_at  BIGINT NOT NULL
);

-- Settings Tocsin makes for itself, such as the reply-signing key.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Error replies to a phone in a row (see the SQLite migration 0007).
CREATE TABLE phone_errors (
    person     TEXT   PRIMARY KEY,
    errors     BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- People who replied STOP to an SMS: not paged by SMS until they reply START.
CREATE TABLE sms_opt_outs (
    person TEXT   PRIMARY KEY,
    since  BIGINT NOT NULL
);

-- The managers' daily digest: one row per manager and local day, inserted
-- in the transaction that queues it, so no instance sends it twice.
CREATE TABLE digests (
    person TEXT NOT NULL,
    day    TEXT NOT NULL,
    PRIMARY KEY (person, day)
);

-- Dashboard sign-in: a session stands for the API token it was made from
-- and carries the CSRF secret its forms must echo. Only hashes are kept.
CREATE TABLE sessions (
    hash       TEXT   PRIMARY KEY,
    token_hash TEXT   NOT NULL,
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
