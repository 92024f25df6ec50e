-- Issue 15: calendar feeds that calendar apps can follow. Each shift has a
-- UID built from the shift itself (schedule, person, true start); this
-- table keeps what the shift looked like when last served, so its
-- SEQUENCE and DTSTAMP move only when the shift changes.
CREATE TABLE feed_shifts (
    uid         TEXT    PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    sequence    INTEGER NOT NULL,
    stamp       INTEGER NOT NULL
);
