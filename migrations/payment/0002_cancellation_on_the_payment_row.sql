-- A cancellation that arrives before any payment now leaves a VOID payment row instead of a
-- row in cancelled_orders. The payment row is then the one place where a charge and a
-- cancellation of the same order meet, and its row lock puts them in order: no advisory
-- lock, and one statement fewer per payment.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('PENDING', 'PROCESSED', 'FAILED', 'REFUNDED', 'VOID'));
ALTER TABLE payments DROP CONSTRAINT payments_amount_cents_check;
ALTER TABLE payments ALTER COLUMN amount_cents DROP NOT NULL;
ALTER TABLE payments ADD CONSTRAINT payments_amount_check
    CHECK (status = 'VOID' OR amount_cents > 0);

INSERT INTO payments (order_id, payment_id, amount_cents, status)
SELECT order_id, gen_random_uuid(), NULL, 'VOID' FROM cancelled_orders
ON CONFLICT (order_id) DO NOTHING;
DROP TABLE cancelled_orders;
