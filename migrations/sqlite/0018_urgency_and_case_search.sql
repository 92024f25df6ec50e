-- Issue 15: a route's urgency is kept on the case it opens (like its
-- policy); a working-hours case outside working time is held until
-- held_until, when its policy starts (a 'hold' timer).
ALTER TABLE cases ADD COLUMN urgency TEXT NOT NULL DEFAULT 'high';
ALTER TABLE cases ADD COLUMN held_until INTEGER;

-- Issue 15: finding cases (GET /api/v1/cases, the dashboard's Cases page)
-- pages newest first by number under each filter: one index per filter,
-- ending in number so "filter, number < cursor, ORDER BY number DESC"
-- walks it. (status and requester have theirs already.)
CREATE INDEX cases_by_customer ON cases (customer, number);
CREATE INDEX cases_by_assignee ON cases (assignee, number);
CREATE INDEX cases_by_priority ON cases (priority, number);
