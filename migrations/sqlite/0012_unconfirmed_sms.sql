-- The dashboard's "sent, no delivery report yet" list: SMS by status and
-- the time the status was last set.
CREATE INDEX pages_by_channel_status ON pages (channel, status, updated_at);
