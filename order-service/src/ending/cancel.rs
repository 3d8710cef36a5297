//! A cancellation someone asked for (CONTRACT §15): a customer or an operator ends a
//! `PENDING` order, or undoes a `COMPLETED` one within the cancel window. The row lock
//! makes concurrent cancellations, and the saga's own ending, take turns: whichever comes
//! first ends the order, once, and the others find it ended. Compensation is the other
//! services' part: the `OrderCancelled` committed here returns the stock and refunds a
//! charge (or stops a payment in flight), as for every other cancellation.

use super::announcement::Announcement;
use crate::domain::OrderStatus;
use crate::operator_log;
use crate::repo::{self, OrderRow, Requester};
use chrono::Utc;
use common::http::Actor;
use common::store::UnitOfWork;
use common::text_enum::TextEnum;
use contract::OrderId;
use contract::events::CancellationReason;
use serde_json::json;
use std::time::Duration;

/// Who asks for the cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canceller {
    /// The order's customer (its token's subject), or anyone while the API is open.
    Customer(Option<String>),
    /// `orders:admin` (its subject) or the admin token.
    Operator(Actor),
}

impl Canceller {
    pub fn reason(&self) -> CancellationReason {
        match self {
            Self::Customer(_) => CancellationReason::CustomerCancelled,
            Self::Operator(_) => CancellationReason::OperatorCancelled,
        }
    }

    fn requester(&self, note: Option<String>) -> Requester {
        let (role, subject) = match self {
            Self::Customer(subject) => ("customer", subject.clone()),
            Self::Operator(actor) => ("operator", Some(actor.name().to_owned())),
        };
        Requester {
            role: role.to_owned(),
            subject,
            note,
        }
    }
}

/// A cancellation as asked.
#[derive(Debug, Clone)]
pub struct CancelRequest {
    pub order_id: OrderId,
    pub by: Canceller,
    /// The reason the caller gave (at most 500 characters, checked by the API).
    pub note: Option<String>,
    /// How long after completing an order may still be cancelled.
    pub window: Duration,
}

/// What the request found and did.
#[derive(Debug)]
pub enum Cancellation {
    /// It is now `CANCELLED`; its `OrderCancelled` is in the unit of work.
    Cancelled(OrderRow),
    /// It was cancelled already (by anyone, for any reason): nothing changes.
    AlreadyCancelled(OrderRow),
    /// It completed longer than the window ago: nothing changes.
    TooLate(OrderRow),
    /// No such order, or not one the caller may see.
    NotFound,
}

/// Cancels `request.order_id` in `uow` if it may be; `may_see` says whose orders the caller
/// may act on (another customer's order is "not found", as for reads).
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %request.order_id))]
pub async fn cancel(
    uow: &mut UnitOfWork,
    request: CancelRequest,
    may_see: impl Fn(&str) -> bool,
) -> Result<Cancellation, sqlx::Error> {
    let Some(order) = repo::find_for_update(uow.conn(), request.order_id).await? else {
        return Ok(Cancellation::NotFound);
    };
    if !may_see(&order.customer_id) {
        return Ok(Cancellation::NotFound);
    }
    let was = order.status;
    match was {
        OrderStatus::Cancelled => return Ok(Cancellation::AlreadyCancelled(order)),
        OrderStatus::Completed if !within(&order, request.window) => {
            return Ok(Cancellation::TooLate(order));
        }
        OrderStatus::Pending | OrderStatus::Completed => {}
    }
    // Like a timeout's, the cancellation names the OrderCreated that started the saga.
    let created = repo::created_event(uow.conn(), order.id).await?;
    let announcement = Announcement::new();
    let mut entry = announcement.entry(OrderStatus::Cancelled, created);
    entry.requested_by = Some(request.by.requester(request.note.clone()));
    let reason = request.by.reason();
    let Some(cancelled) = repo::cancel(uow.conn(), order.id, reason, &entry).await? else {
        // The row is locked and was PENDING or COMPLETED: the update cannot miss it.
        return Ok(Cancellation::NotFound);
    };
    announcement.publish(uow, &cancelled, created, was);
    if let Canceller::Operator(actor) = &request.by {
        // An operator's cancel is an admin action (CONTRACT §16): logged with it, at once.
        let detail = json!({"status": was.as_str(), "note": request.note});
        let result = json!({"status": "CANCELLED", "reason": reason.as_str()});
        operator_log::append(
            uow.conn(),
            actor,
            "cancel",
            &order.id.to_string(),
            detail,
            result,
        )
        .await?;
    }
    tracing::info!(order_id = %cancelled.id, from = ?was, reason = reason.as_str(), "order cancelled on request");
    Ok(Cancellation::Cancelled(cancelled))
}

/// Whether a `COMPLETED` order completed less than `window` ago (it has not changed since).
fn within(order: &OrderRow, window: Duration) -> bool {
    let completed = order.updated_at;
    chrono::Duration::from_std(window).is_ok_and(|window| Utc::now() < completed + window)
}
