-- Transactional outbox: events recorded in the same transaction as the state change that
-- causes them, published later by the relay, deleted once RabbitMQ has confirmed them.
CREATE TABLE outbox (
    id           BIGSERIAL   PRIMARY KEY,
    event_id     UUID        NOT NULL UNIQUE,
    event_type   TEXT        NOT NULL,
    routing_key  TEXT        NOT NULL,
    order_id     UUID        NOT NULL,
    causation_id UUID,
    occurred_at  TIMESTAMPTZ NOT NULL,
    payload      BYTEA       NOT NULL
);

-- Inbox: the ids of the messages whose effects are committed. A redelivered message finds
-- its id here and changes nothing.
CREATE TABLE inbox (
    message_id   UUID        PRIMARY KEY,
    event_type   TEXT        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
