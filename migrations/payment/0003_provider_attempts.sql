-- Payments now go to a provider over HTTP (CONTRACT §7). The consumer only records that an
-- order is to be paid; a worker asks the provider outside any transaction. Each attempt is
-- committed here (its number and idempotency key) before the provider hears of it, so
-- every later try of that attempt — after a timeout, a crash, on another replica — reuses
-- the key and the provider never charges twice.
ALTER TABLE payments
    -- The key of attempt `attempts`: `<order_id>:<attempts>`.
    ADD COLUMN attempt_key       TEXT,
    -- Attempt `attempts` has been (or may have been) sent and its outcome is not known yet.
    ADD COLUMN attempt_open      BOOLEAN     NOT NULL DEFAULT false,
    -- Tries of the open attempt whose outcome was unknown (timeouts, 5xx, 409, 429).
    ADD COLUMN unknown_tries     INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN charge_id         TEXT,
    ADD COLUMN refund_id         TEXT,
    -- The order was cancelled: finish the open attempt, then refund a success.
    ADD COLUMN cancel_requested  BOOLEAN     NOT NULL DEFAULT false,
    -- When the worker should act next; NULL when there is nothing left to do.
    ADD COLUMN due_at            TIMESTAMPTZ,
    -- The worker that holds the row until `due_at`; its writes check it (a fencing token).
    ADD COLUMN lease             UUID,
    -- Causes, sent on as the `causation_id` of the events the worker publishes.
    ADD COLUMN reserved_event_id UUID,
    ADD COLUMN cancel_event_id   UUID;

CREATE INDEX payments_due ON payments (due_at) WHERE due_at IS NOT NULL;

-- Payments the previous version was retrying go on with the next attempt.
UPDATE payments SET due_at = now() WHERE status = 'PENDING';

-- The built-in simulator plays the provider with the same semantics, so it also stores
-- the answer of each idempotency key (here, beside the service's tables).
CREATE TABLE simulator_orders (
    -- The n-th order the simulator was asked to charge; with PAYMENT_SEED it decides the
    -- outcomes, whatever the (random) order id.
    rank     BIGSERIAL PRIMARY KEY,
    order_id UUID      NOT NULL UNIQUE
);

CREATE TABLE simulator_charges (
    idempotency_key TEXT        PRIMARY KEY,
    order_id        UUID        NOT NULL,
    amount_cents    BIGINT      NOT NULL,
    charge_id       TEXT        NOT NULL UNIQUE,
    succeeded       BOOLEAN     NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX simulator_charges_order ON simulator_charges (order_id);

CREATE TABLE simulator_refunds (
    idempotency_key TEXT        PRIMARY KEY,
    charge_id       TEXT        NOT NULL,
    amount_cents    BIGINT      NOT NULL,
    refund_id       TEXT        NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
