-- One payment per order: order_id is the key, so a repeated InventoryReserved can never
-- create a second charge. PENDING while attempts are still being made.
CREATE TABLE payments (
    order_id     UUID        PRIMARY KEY,
    payment_id   UUID        NOT NULL UNIQUE,
    amount_cents BIGINT      NOT NULL CHECK (amount_cents > 0),
    status       TEXT        NOT NULL CHECK (status IN ('PENDING', 'PROCESSED', 'FAILED', 'REFUNDED')),
    attempts     INTEGER     NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Orders known to be cancelled. A late InventoryReserved for one of them charges nothing.
CREATE TABLE cancelled_orders (
    order_id     UUID        PRIMARY KEY,
    cancelled_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
