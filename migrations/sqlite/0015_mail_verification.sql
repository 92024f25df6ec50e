-- Issue 13: a case opened by mail whose From could not be verified
-- ([email] verify) is marked, so the dashboard and the API show it.
ALTER TABLE cases ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;
