-- Customers and operators may cancel an order (CONTRACT §15): two more reasons.
ALTER TABLE orders DROP CONSTRAINT orders_cancellation_reason_check;
ALTER TABLE orders ADD CONSTRAINT orders_cancellation_reason_check CHECK (cancellation_reason IN (
    'INVENTORY_UNAVAILABLE', 'PAYMENT_FAILED', 'TIMEOUT', 'CUSTOMER_CANCELLED', 'OPERATOR_CANCELLED'));
