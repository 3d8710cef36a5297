CREATE TABLE products (
    product_id TEXT        PRIMARY KEY,
    -- The CHECKs are the last line of defence; the reservation code never tries to break them.
    available  INTEGER     NOT NULL CHECK (available >= 0),
    reserved   INTEGER     NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The original system's test products.
INSERT INTO products (product_id, available) VALUES
    ('product-A', 10),
    ('product-B', 5),
    ('product-C', 0);

-- One row per order seen. RESERVED holds stock; RELEASED gave it back; UNAVAILABLE never
-- held any; CANCELLED is a tombstone: the cancellation arrived first, so a late
-- OrderCreated must reserve nothing.
CREATE TABLE reservations (
    order_id   UUID        PRIMARY KEY,
    status     TEXT        NOT NULL CHECK (status IN ('RESERVED', 'UNAVAILABLE', 'RELEASED', 'CANCELLED')),
    -- [{product_id, quantity}], one entry per product, quantities summed.
    items      JSONB       NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
