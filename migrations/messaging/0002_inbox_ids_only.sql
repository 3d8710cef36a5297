-- The inbox needs only the message id; claims are now written for many messages at once.
ALTER TABLE inbox DROP COLUMN event_type;
