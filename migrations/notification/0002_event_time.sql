-- Notifications are listed in the order their events happened, not the order they were
-- written: two events of one order may be handled by concurrent batches, and a cause
-- (PaymentFailed) must not be listed after its effect (OrderCancelled).
ALTER TABLE notifications ADD COLUMN occurred_at TIMESTAMPTZ;
UPDATE notifications SET occurred_at = created_at;
ALTER TABLE notifications ALTER COLUMN occurred_at SET NOT NULL;
CREATE INDEX notifications_by_event_time ON notifications (occurred_at);
