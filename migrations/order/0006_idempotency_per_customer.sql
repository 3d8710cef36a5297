-- An Idempotency-Key is its customer's own: the same key from another customer is another
-- request and creates another order. Unique across customers, a key answered 409 to anyone
-- who guessed it (telling them it was in use) and could be taken ahead of its owner.
-- The new index is built before the old constraint goes, so no duplicate slips in between;
-- every row already satisfies it (the old constraint was stricter).
CREATE UNIQUE INDEX orders_customer_idempotency_key ON orders (customer_id, idempotency_key);
ALTER TABLE orders DROP CONSTRAINT orders_idempotency_key_key;
