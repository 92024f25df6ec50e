-- Issue 14: replies to the customer. A reply is an outbox row to the
-- requester; `author` is the person who wrote it (the mail names them).
-- NULL for every other message, and for every row written before.
ALTER TABLE pages ADD COLUMN author TEXT;
-- A reply answers the customer's latest message of its case: the inbox is
-- read by case.
CREATE INDEX inbox_by_case ON inbox (case_number, id);
