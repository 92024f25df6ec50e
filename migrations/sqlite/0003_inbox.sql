-- Every inbound message, raw, committed before the door says yes (SMTP 250,
-- exit 0, HTTP 202). Filing marks it in the transaction of its case change.
CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at   INTEGER NOT NULL,
    source        TEXT    NOT NULL,  -- smtp | pipe | webhook
    envelope_from TEXT,              -- '' is the null return path
    envelope_to   TEXT    NOT NULL,  -- JSON array
    raw           BLOB    NOT NULL,
    status        TEXT    NOT NULL,  -- pending | filed | duplicate | automatic | unusable
    case_number   INTEGER,
    message_id    TEXT,
    note          TEXT    NOT NULL DEFAULT '',
    filed_at      INTEGER
);
CREATE INDEX inbox_by_status ON inbox (status, id);

-- Every Message-ID Tocsin received or sent, and its case: what replies
-- thread by.
CREATE TABLE message_ids (
    message_id  TEXT    PRIMARY KEY,
    case_number INTEGER NOT NULL,
    direction   TEXT    NOT NULL,  -- in | out
    created_at  INTEGER NOT NULL
);

-- Settings Tocsin makes for itself, such as the reply-signing key when no
-- environment variable provides one.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX pages_by_address ON pages (address, kind, created_at);
