-- Idempotency keys of POST /api/v1/cases: a client that retries after a
-- lost answer (a timeout, a restart) finds the case its first try opened.
CREATE TABLE request_keys (
    scope        TEXT    NOT NULL,  -- the token's name: keys are per client
    key          TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,  -- SHA-256 of the request's fields
    case_number  BIGINT  NOT NULL REFERENCES cases (number),
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (scope, key)
);
