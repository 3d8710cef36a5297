//! What one service reads of another over HTTP, in the shape both sides agree on: the
//! owner answers with these types, the reader parses them. The saga never waits on such a
//! read — services act only on events — but a view may compose its answer from them.

use crate::OrderId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use wire::timestamp::Timestamp;

/// `GET /api/inventory/reservations/{order_id}` (inventory-service): an order's
/// reservation. order-service's saga view takes `InventoryReserved` from here rather than
/// keep a copy of every such event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReservationView {
    pub order_id: OrderId,
    /// `RESERVED` (held), `UNAVAILABLE` (some item was short), `RELEASED` (held, then
    /// given back) or `CANCELLED` (the cancellation came first: nothing will be held).
    pub status: String,
    /// The `InventoryReserved` that announced the reservation; `null` when nothing was
    /// reserved (or the reservation predates this record).
    pub reserved: Option<ReservedEvent>,
}

/// An `InventoryReserved` as inventory-service published it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReservedEvent {
    pub event_id: Uuid,
    /// The `OrderCreated` it answered.
    pub causation_id: Option<Uuid>,
    pub occurred_at: Timestamp,
}
