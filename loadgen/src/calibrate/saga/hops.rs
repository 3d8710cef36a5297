//! The consumer hops: what each stands for, the queue it reads, and what it writes — the
//! rows its service writes for that event, in bulk for the whole batch (one statement per
//! kind of row), so each hop costs what the services' batching design costs at best.
//!
//! A hop's statements run inside the batch's transaction, after the inbox claim
//! ([`super::consumer`]); the events it returns go into the outbox in the same transaction
//! and are published once it has committed.

use super::message::{Event, Incoming, Kind, Outgoing};
use super::schema::Database;
use serde_json::json;
use sqlx::PgConnection;
use sqlx::types::Json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// One consumer of the happy path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// inventory-service on `OrderCreated`: locks the stock row, records the reservation
    /// with the `InventoryReserved` that announces it (the saga view reads it there),
    /// moves the unit from available to reserved, publishes `InventoryReserved`.
    Inventory,
    /// payment-service on `InventoryReserved`, with the built-in simulator answering the
    /// first attempt in the consumer's transaction: the payment row (PROCESSED) and the
    /// simulator's ledger row in one statement, publishes `PaymentProcessed`.
    Payment,
    /// order-service on `PaymentProcessed`: the order becomes COMPLETED with both events
    /// appended to its timeline, publishes `OrderConfirmed`.
    Order,
    /// notification-service on `PaymentProcessed` and on `OrderConfirmed`: one
    /// notification row each. The second one committed ends the saga.
    Notification,
}

impl Hop {
    pub const ALL: [Self; 4] = [
        Self::Inventory,
        Self::Payment,
        Self::Order,
        Self::Notification,
    ];

    /// Its name in errors and consumer tags: its service's short name.
    pub fn name(self) -> &'static str {
        self.service().short_name()
    }

    /// The service it runs in: its database, connection and publisher.
    pub fn service(self) -> Database {
        match self {
            Self::Inventory => Database::Inventory,
            Self::Payment => Database::Payment,
            Self::Order => Database::Order,
            Self::Notification => Database::Notification,
        }
    }

    /// The hop's writes for `messages` (already claimed in the inbox), in the batch's
    /// transaction; the events to record in the outbox and publish.
    pub async fn apply(
        self,
        conn: &mut PgConnection,
        messages: &[&Incoming],
    ) -> Result<Vec<Outgoing>, sqlx::Error> {
        let events: Vec<&Event> = messages.iter().map(|m| &m.event).collect();
        match self {
            Self::Inventory => reserve(conn, &events).await,
            Self::Payment => charge(conn, &events).await,
            Self::Order => confirm(conn, &events).await,
            Self::Notification => notify(conn, &events).await.map(|()| Vec::new()),
        }
    }
}

/// The events `events` cause, each naming its cause.
fn caused(events: &[&Event], kind: Kind) -> Vec<Outgoing> {
    events
        .iter()
        .map(|event| Outgoing::new(kind, event.next(kind), Some(event.event_id)))
        .collect()
}

async fn reserve(conn: &mut PgConnection, events: &[&Event]) -> Result<Vec<Outgoing>, sqlx::Error> {
    // Every product the batch takes, with the units it takes, in key order: the order the
    // rows are locked in, so two batches never deadlock.
    let mut needs: BTreeMap<&str, i32> = BTreeMap::new();
    for item in events.iter().flat_map(|event| &event.items) {
        *needs.entry(item.product_id.as_str()).or_default() += item.quantity;
    }
    let products: Vec<&str> = needs.keys().copied().collect();
    let stock: Vec<(String, i32)> = sqlx::query_as(
        "SELECT product_id, available FROM products WHERE product_id = ANY($1)
         ORDER BY product_id FOR UPDATE",
    )
    .bind(&products)
    .fetch_all(&mut *conn)
    .await?;
    let short = needs.iter().any(|(product, units)| {
        !stock
            .iter()
            .any(|(id, available)| id == product && available >= units)
    });
    if short {
        // The scratch stock is far more than any run takes.
        return Err(sqlx::Error::Protocol(
            "the calibration's stock ran out".into(),
        ));
    }
    let reserved = caused(events, Kind::InventoryReserved);
    sqlx::query(
        "INSERT INTO reservations (order_id, status, items, reserved_event_id, reserved_cause,
                                   reserved_at)
         SELECT id, 'RESERVED', items, event_id, cause, at::timestamptz
         FROM unnest($1::uuid[], $2::jsonb[], $3::uuid[], $4::uuid[], $5::text[])
             AS r(id, items, event_id, cause, at)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(events.iter().map(|e| e.order_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| Json(&e.items)).collect::<Vec<_>>())
    .bind(
        reserved
            .iter()
            .map(|r| r.event.event_id)
            .collect::<Vec<_>>(),
    )
    .bind(reserved.iter().map(|r| r.causation_id).collect::<Vec<_>>())
    .bind(
        reserved
            .iter()
            .map(|r| r.event.timestamp.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE products p
         SET available = p.available - n.units, reserved = p.reserved + n.units, updated_at = now()
         FROM unnest($1::text[], $2::int[]) AS n(product_id, units)
         WHERE p.product_id = n.product_id",
    )
    .bind(&products)
    .bind(needs.values().copied().collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(reserved)
}

async fn charge(conn: &mut PgConnection, events: &[&Event]) -> Result<Vec<Outgoing>, sqlx::Error> {
    let processed: Vec<Outgoing> = events
        .iter()
        .map(|reserved| {
            let mut paid = reserved.next(Kind::PaymentProcessed);
            paid.payment_id = Some(Uuid::now_v7());
            paid.attempts = Some(1);
            Outgoing::new(Kind::PaymentProcessed, paid, Some(reserved.event_id))
        })
        .collect();
    let keys: Vec<String> = events.iter().map(|e| format!("{}:1", e.order_id)).collect();
    let charges: Vec<String> = events
        .iter()
        .map(|_| format!("sim_ch_{}", Uuid::new_v4().simple()))
        .collect();
    sqlx::query(
        "WITH payment AS (
             INSERT INTO payments (order_id, payment_id, amount_cents, status, attempts,
                                   attempt_key, charge_id, reserved_event_id)
             SELECT o, p, a, 'PROCESSED', 1, k, c, e
             FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::uuid[])
                  AS n(o, p, a, k, c, e)
             ON CONFLICT (order_id) DO NOTHING
             RETURNING order_id, attempt_key, amount_cents, charge_id)
         INSERT INTO simulator_charges (idempotency_key, order_id, amount_cents, charge_id, succeeded)
         SELECT attempt_key, order_id, amount_cents, charge_id, true FROM payment",
    )
    .bind(events.iter().map(|e| e.order_id).collect::<Vec<_>>())
    .bind(processed.iter().map(|o| o.event.payment_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.total_cents()).collect::<Vec<_>>())
    .bind(&keys)
    .bind(&charges)
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(processed)
}

async fn confirm(conn: &mut PgConnection, events: &[&Event]) -> Result<Vec<Outgoing>, sqlx::Error> {
    let confirmed = caused(events, Kind::OrderConfirmed);
    let timelines: Vec<Json<serde_json::Value>> = events
        .iter()
        .zip(&confirmed)
        .map(|(paid, confirmed)| {
            Json(json!([
                paid.timeline_entry(contract::Service::Payment),
                confirmed.event.timeline_entry(contract::Service::Order),
            ]))
        })
        .collect();
    let completed: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE orders o SET status = 'COMPLETED', updated_at = now(), timeline = o.timeline || n.entries
         FROM unnest($1::uuid[], $2::jsonb[]) AS n(id, entries)
         WHERE o.id = n.id AND o.status = 'PENDING'
         RETURNING o.id",
    )
    .bind(events.iter().map(|e| e.order_id).collect::<Vec<_>>())
    .bind(&timelines)
    .fetch_all(&mut *conn)
    .await?;
    // Only an order that was still PENDING is confirmed (a repeat finds it ended).
    Ok(confirmed
        .into_iter()
        .filter(|outgoing| completed.contains(&outgoing.event.order_id))
        .collect())
}

async fn notify(conn: &mut PgConnection, events: &[&Event]) -> Result<(), sqlx::Error> {
    let messages: Vec<String> = events
        .iter()
        .map(|e| {
            if e.event_type == Kind::PaymentProcessed.name() {
                format!(
                    "Payment of {:.2} received for order {}.",
                    e.total_amount, e.order_id
                )
            } else {
                format!("Your order {} is confirmed.", e.order_id)
            }
        })
        .collect();
    sqlx::query(
        "INSERT INTO notifications (id, order_id, event_type, event_id, message, occurred_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[],
                              $6::text[]::timestamptz[])
         ON CONFLICT (order_id, event_type) DO NOTHING",
    )
    .bind(events.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.order_id).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .bind(&messages)
    .bind(
        events
            .iter()
            .map(|e| e.timestamp.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}
