-- The W3C trace context of the span that recorded each event, sent on as the AMQP headers
-- `traceparent` and `tracestate` so the consumer's span joins the same trace.
ALTER TABLE outbox ADD COLUMN traceparent TEXT, ADD COLUMN tracestate TEXT;
