-- The simulator's rank of an order was a BIGSERIAL filled by INSERT … ON CONFLICT DO
-- NOTHING, and PostgreSQL takes a sequence value even when the insert conflicts: every
-- further attempt of an order, and every retry that reached the simulator again, skipped a
-- rank, so the outcomes PAYMENT_SEED gives later orders shifted with retries. From now on
-- the simulator numbers orders itself, one at a time under a lock, in the order they first
-- arrive: 1, 2, 3 … with no gap (ranks taken before this migration stay as they were).
ALTER TABLE simulator_orders ALTER COLUMN rank DROP DEFAULT;
DROP SEQUENCE simulator_orders_rank_seq;
