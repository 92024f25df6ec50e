-- Twilio webhooks already acted on (issue 13): a replayed inbound SMS
-- (same MessageSid, event 'sms') or status callback (same MessageSid and
-- MessageStatus) finds its key taken and does nothing. Rows older than the
-- phone service's memory (90 days) are pruned when a new one is claimed.
CREATE TABLE twilio_seen (
    sid      TEXT    NOT NULL,
    event    TEXT    NOT NULL,  -- 'sms', or the MessageStatus reported
    seen_at  BIGINT  NOT NULL,
    PRIMARY KEY (sid, event)
);
CREATE INDEX twilio_seen_by_age ON twilio_seen (seen_at);

-- Cases opened from mail, by sender and sender domain: what the per-hour
-- new-case limits count. Written in the transaction that opens the case.
CREATE TABLE mail_openings (
    case_number BIGINT  PRIMARY KEY REFERENCES cases (number),
    sender      TEXT    NOT NULL,  -- lower-cased From address
    domain      TEXT    NOT NULL,  -- its part after the last '@'
    opened_at   BIGINT  NOT NULL
);
CREATE INDEX mail_openings_by_sender ON mail_openings (sender, opened_at);
CREATE INDEX mail_openings_by_domain ON mail_openings (domain, opened_at);

-- A sender's most recent open case, where mail over the limit is filed.
CREATE INDEX cases_by_requester ON cases (requester, number);
