-- The timeline moves into the order row: appending to it is part of the statement that
-- changes the order, instead of one more INSERT per event.
ALTER TABLE orders ADD COLUMN timeline JSONB NOT NULL DEFAULT '[]';

UPDATE orders o SET timeline = COALESCE(
    (SELECT jsonb_agg(jsonb_build_object(
                'event_type', e.event_type, 'event_id', e.event_id,
                'occurred_at', e.occurred_at, 'source', e.source)
            ORDER BY e.occurred_at, e.recorded_at)
     FROM order_events e WHERE e.order_id = o.id),
    '[]');

DROP TABLE order_events;
