-- When each row was written. Committed events are published by the task that committed
-- them; the relay picks up only rows older than a grace period (or every row after a
-- failed publish or a restart), so it does not send again what is being sent right now.
ALTER TABLE outbox ADD COLUMN written_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp();
