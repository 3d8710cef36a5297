CREATE TABLE orders (
    id                  UUID        PRIMARY KEY,
    customer_id         TEXT        NOT NULL,
    items               JSONB       NOT NULL,
    total_cents         BIGINT      NOT NULL CHECK (total_cents > 0),
    status              TEXT        NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'CANCELLED')),
    cancellation_reason TEXT        CHECK (cancellation_reason IN ('INVENTORY_UNAVAILABLE', 'PAYMENT_FAILED', 'TIMEOUT')),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Client-chosen key of the POST that created the order (Idempotency-Key header).
    idempotency_key     TEXT        UNIQUE
);
CREATE INDEX orders_newest_first ON orders (created_at DESC, id DESC);
CREATE INDEX orders_by_customer ON orders (customer_id, created_at DESC);
-- The timeout sweeper reads only this small index.
CREATE INDEX orders_pending ON orders (created_at) WHERE status = 'PENDING';

-- The saga's timeline as order-service saw it: events it published and consumed.
CREATE TABLE order_events (
    event_id    UUID        PRIMARY KEY,
    order_id    UUID        NOT NULL REFERENCES orders (id),
    event_type  TEXT        NOT NULL,
    source      TEXT        NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX order_events_by_order ON order_events (order_id, occurred_at);
