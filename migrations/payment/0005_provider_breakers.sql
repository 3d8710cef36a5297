-- Each payment-service process's circuit breaker on the provider (CONTRACT §13), so that
-- any replica can say whether any live one holds its provider calls back (GET /breaker).
-- One row per process, refreshed by a heartbeat and deleted on a clean stop; a row not
-- refreshed for a few seconds belongs to a process that died and is ignored.
CREATE TABLE provider_breakers (
    replica_id UUID        PRIMARY KEY,
    pid        INTEGER     NOT NULL,
    state      TEXT        NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    -- When it entered this state.
    since      TIMESTAMPTZ NOT NULL,
    -- The unknown outcome that opened it, while it is not closed.
    failure    TEXT,
    seen_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
