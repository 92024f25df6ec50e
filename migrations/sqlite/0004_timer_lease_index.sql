-- The scheduler asks for the earliest claimable timer after every change;
-- leased timers are few, so a partial index finds their expiry at once.
CREATE INDEX timers_by_lease ON timers (lease_until) WHERE owner IS NOT NULL;
