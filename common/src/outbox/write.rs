//! Writing the outbox: the events a unit of work recorded go into the `outbox` table in one
//! statement, inside the transaction that caused them.

use super::row::OutgoingEvent;
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

impl Outgoing {
    /// The row this event becomes: what the outbox stores and the publishers send.
    fn into_row(self) -> OutgoingEvent {
        OutgoingEvent {
            event_id: self.envelope.event_id,
            event_type: self.envelope.event.name().to_owned(),
            routing_key: self.envelope.event.routing_key().to_owned(),
            order_id: self.envelope.event.order_id(),
            causation_id: self.caused_by,
            occurred_at: self.envelope.timestamp,
            payload: self.envelope.to_json(),
            traceparent: self.trace.traceparent,
            tracestate: self.trace.tracestate,
        }
    }
}

/// One multi-row insert for all the events of a unit of work; returns the rows written,
/// for publishing once the transaction has committed.
pub(crate) async fn write(
    conn: &mut PgConnection,
    outgoing: Vec<Outgoing>,
) -> Result<Vec<OutgoingEvent>, sqlx::Error> {
    let rows: Vec<OutgoingEvent> = outgoing.into_iter().map(Outgoing::into_row).collect();
    let column = |field: fn(&OutgoingEvent) -> &str| rows.iter().map(field).collect::<Vec<_>>();
    let optional =
        |field: fn(&OutgoingEvent) -> Option<&str>| rows.iter().map(field).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO outbox (event_id, event_type, routing_key, order_id, causation_id, occurred_at, payload, traceparent, tracestate)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::bytea[], $8::text[], $9::text[])",
    )
    .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
    .bind(column(|r| &r.event_type))
    .bind(column(|r| &r.routing_key))
    .bind(rows.iter().map(|r| r.order_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.causation_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.payload.as_slice()).collect::<Vec<_>>())
    .bind(optional(|r| r.traceparent.as_deref()))
    .bind(optional(|r| r.tracestate.as_deref()))
    .execute(conn)
    .await?;
    Ok(rows)
}
