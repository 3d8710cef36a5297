-- The InventoryReserved a reservation was announced with, written by the statement that
-- claims the order: order-service's saga view reads it here (GET
-- /api/inventory/reservations/{order_id}) instead of keeping a copy of every such event.
-- NULL when nothing was reserved, and for reservations made before this column existed
-- (their event is in order-service's saga_events).
ALTER TABLE reservations
    ADD COLUMN reserved_event_id UUID,
    ADD COLUMN reserved_cause    UUID,
    ADD COLUMN reserved_at       TIMESTAMPTZ;
