//! Writing the outbox: the events a unit of work recorded go into the `outbox` table in one
//! statement, inside the transaction that caused them.

use crate::events::Envelope;
use crate::trace::TraceHeaders;
use sqlx::PgConnection;
use uuid::Uuid;

/// An event recorded by `UnitOfWork::publish`, not yet written.
pub(crate) struct Outgoing {
    pub(crate) envelope: Envelope,
    pub(crate) caused_by: Option<Uuid>,
    /// The producer span's context, a child of the span that recorded the event.
    pub(crate) trace: TraceHeaders,
}

/// One multi-row insert for all the events of a unit of work.
pub(crate) async fn write(
    conn: &mut PgConnection,
    outgoing: &[Outgoing],
) -> Result<(), sqlx::Error> {
    let event_ids: Vec<Uuid> = outgoing.iter().map(|o| o.envelope.event_id).collect();
    let types: Vec<&str> = outgoing.iter().map(|o| o.envelope.event.name()).collect();
    let keys: Vec<&str> = outgoing
        .iter()
        .map(|o| o.envelope.event.routing_key())
        .collect();
    let orders: Vec<Uuid> = outgoing
        .iter()
        .map(|o| o.envelope.event.order_id())
        .collect();
    let causes: Vec<Option<Uuid>> = outgoing.iter().map(|o| o.caused_by).collect();
    let times: Vec<_> = outgoing.iter().map(|o| o.envelope.timestamp).collect();
    let payloads: Vec<Vec<u8>> = outgoing.iter().map(|o| o.envelope.to_json()).collect();
    let parents: Vec<Option<&str>> = outgoing
        .iter()
        .map(|o| o.trace.traceparent.as_deref())
        .collect();
    let states: Vec<Option<&str>> = outgoing
        .iter()
        .map(|o| o.trace.tracestate.as_deref())
        .collect();
    sqlx::query(
        "INSERT INTO outbox (event_id, event_type, routing_key, order_id, causation_id, occurred_at, payload, traceparent, tracestate)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::bytea[], $8::text[], $9::text[])",
    )
    .bind(&event_ids)
    .bind(&types)
    .bind(&keys)
    .bind(&orders)
    .bind(&causes)
    .bind(&times)
    .bind(&payloads)
    .bind(&parents)
    .bind(&states)
    .execute(conn)
    .await?;
    Ok(())
}
