-- One notification per (order, event type): a repeated event never notifies twice.
CREATE TABLE notifications (
    id         UUID        PRIMARY KEY,
    order_id   UUID        NOT NULL,
    event_type TEXT        NOT NULL,
    event_id   UUID        NOT NULL,
    message    TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (order_id, event_type)
);
CREATE INDEX notifications_by_time ON notifications (created_at);
