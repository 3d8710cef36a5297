-- The trace of the InventoryReserved that asked for the payment: the worker's attempts,
-- the provider calls and the events they publish join it (CONTRACT §10).
ALTER TABLE payments ADD COLUMN traceparent TEXT, ADD COLUMN tracestate TEXT;
