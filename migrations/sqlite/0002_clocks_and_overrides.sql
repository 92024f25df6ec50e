-- SLA clocks kept as history: the start of the current respond and update
-- windows, the pauses of the resolve clock (JSON [{"from", "to"}]), and the
-- warnings and breaches already announced in the current windows (JSON
-- array of "clock:index" / "clock:breach").
ALTER TABLE cases ADD COLUMN respond_from INTEGER;
UPDATE cases SET respond_from = opened_at;
ALTER TABLE cases ADD COLUMN update_from INTEGER;
UPDATE cases SET update_from = acked_at WHERE status = 'acknowledged';
ALTER TABLE cases ADD COLUMN pauses TEXT NOT NULL DEFAULT '[]';
ALTER TABLE cases ADD COLUMN warned TEXT NOT NULL DEFAULT '[]';

-- On-call overrides: while [starts_at, ends_at) lasts, `person` is on call
-- on `schedule`, whatever its layers say. The latest one wins.
CREATE TABLE overrides (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule   TEXT    NOT NULL,
    person     TEXT    NOT NULL,
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    reason     TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX overrides_by_end ON overrides (ends_at);
