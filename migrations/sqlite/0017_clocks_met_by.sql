-- Issue 14: SLA clocks met by what the plan says (respond_met_by,
-- update_met_by). When the respond clock of the current window was met,
-- and when the update clock last was. Before, the respond clock was met
-- by the acknowledgement of the current window (a reopen cleared it), so
-- that is what old cases carry over.
ALTER TABLE cases ADD COLUMN respond_met_at INTEGER;
ALTER TABLE cases ADD COLUMN update_met_at INTEGER;
UPDATE cases SET respond_met_at = acked_at WHERE acked_at IS NOT NULL;
