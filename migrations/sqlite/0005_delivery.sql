-- Delivery: retries wait until next_attempt_at; a page claimed again after
-- its lease ran out mid-send is `in_doubt` (its first send may have gone
-- out), and prev_claimed_at says since when to look for it at the provider.
ALTER TABLE pages ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE pages ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pages ADD COLUMN prev_claimed_at INTEGER;
CREATE INDEX pages_by_provider_id ON pages (provider_id);
