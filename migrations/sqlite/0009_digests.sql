-- The managers' daily digest: one row per manager and local day, inserted
-- in the transaction that queues it, so a restart never sends it twice.
CREATE TABLE digests (
    person TEXT NOT NULL,
    day    TEXT NOT NULL,
    PRIMARY KEY (person, day)
);
