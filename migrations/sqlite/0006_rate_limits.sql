-- Rate limits look up when a person was last reached on a channel.
CREATE INDEX pages_by_person ON pages (person, channel, status, updated_at);
