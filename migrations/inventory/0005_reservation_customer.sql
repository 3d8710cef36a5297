-- Whose order a reservation is for, from OrderCreated (or OrderCancelled, for a tombstone),
-- so that GET /api/inventory/reservations/{order_id} shows a customer its own orders only.
-- NULL for rows written before this column existed: only admin callers (or an open API)
-- see those.
ALTER TABLE reservations ADD COLUMN customer_id TEXT;
