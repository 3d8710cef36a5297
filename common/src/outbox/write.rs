//! Writing the outbox: the events a unit of work recorded go into the `outbox` table in one
//! statement, inside the transaction that caused them.

use super::row::OutgoingEvent;
use crate::event::{Envelope, Published};
use crate::trace::TraceHeaders;
use sqlx::PgConnection;
use uuid::Uuid;

/// An event recorded by `UnitOfWork::publish`, not yet written: already the row it
/// becomes, so the unit of work needs no type of event.
pub(crate) struct Outgoing(OutgoingEvent);

impl Outgoing {
    /// The row `envelope` becomes: what the outbox stores and the publishers send.
    /// `trace` is the producer span's context, a child of the span that recorded it.
    pub(crate) fn new<E: Published>(
        envelope: &Envelope<E>,
        caused_by: Option<Uuid>,
        trace: TraceHeaders,
    ) -> Self {
        Self(OutgoingEvent {
            event_id: envelope.event_id,
            event_type: envelope.event.event_type().to_owned(),
            routing_key: envelope.event.routing_key().to_owned(),
            order_id: envelope.event.correlation_id(),
            causation_id: caused_by,
            occurred_at: envelope.timestamp,
            payload: envelope.to_json(),
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
        })
    }

    fn into_row(self) -> OutgoingEvent {
        self.0
    }
}

/// One multi-row insert for all the events of a unit of work; returns the rows written,
/// for publishing once the transaction has committed.
#[tracing::instrument(level = "debug", skip_all, fields(events = outgoing.len()))]
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
