-- The saga as every service published it: one row per event seen on the exchange's audit
-- queue, so GET /api/orders/{id}/saga can draw the whole flow. Kept for a bounded time
-- (SAGA_AUDIT_RETENTION_HOURS); the event id makes a redelivered event a no-op.
CREATE TABLE saga_events (
    event_id     UUID PRIMARY KEY,
    order_id     UUID NOT NULL,
    event_type   TEXT NOT NULL,
    causation_id UUID,
    publisher    TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX saga_events_by_order ON saga_events (order_id, occurred_at);
CREATE INDEX saga_events_by_age ON saga_events (recorded_at);
