-- Issue 14: SLA clocks met by what the plan says (respond_met_by,
-- update_met_by). When the respond clock of the current window was met,
-- and when the update clock last was. Before, the respond clock was met
-- by the acknowledgement of the current window (a reopen cleared it), so
-- that is what old cases carry over.
ALTER TABLE cases ADD COLUMN respond_met_at BIGINT;
ALTER TABLE cases ADD COLUMN update_met_at BIGINT;
UPDATE cases SET respond_met_at = acked_at WHERE acked_at IS NOT NULL;

-- Attachments of customer mail, listed on their case. The bytes stay in
-- the raw message (inbox.raw), decoded on download: one copy, in the
-- database, committed before the mail was accepted.
CREATE TABLE attachments (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_number  BIGINT NOT NULL REFERENCES cases (number),
    inbox_id     BIGINT NOT NULL,   -- the inbox row whose raw message holds the bytes
    part         BIGINT NOT NULL,  -- position among the message's attachments
    name         TEXT   NOT NULL,
    content_type TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX attachments_by_case ON attachments (case_number, id);
