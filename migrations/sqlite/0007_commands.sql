-- SNOOZE: reminders to the assignee are held until this instant (never past
-- the next SLA deadline).
ALTER TABLE cases ADD COLUMN snoozed_until INTEGER;

-- Error replies to a phone in a row; past a few, Tocsin goes silent until
-- the next successful command or page, so a looping phone cannot run up a
-- bill.
CREATE TABLE phone_errors (
    person     TEXT    PRIMARY KEY,
    errors     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
