//! One notification per (order, event type), recorded and logged once; one file per
//! consumed event, each with the text that event tells the customer: a [`Notice`], or a
//! handler of its own where the text needs the database (`order_cancelled`).
//! [`NotificationHandler::Consumes`] names the published language's list for this service
//! (`contract::consumes`); its queue's bindings and the dispatch derive from it.

pub mod order_cancelled;
pub mod order_confirmed;
pub mod payment_failed;
pub mod payment_processed;
pub mod payment_refunded;

use common::consumer::{Handle, Handled, HandlerError, Incoming, MessageHandler};
use common::event::Kind;
use common::store::UnitOfWork;
use contract::Event;
use contract::events::Envelope;
use uuid::Uuid;

pub struct NotificationHandler;

impl MessageHandler for NotificationHandler {
    type Consumes = contract::consumes::Notification;
}

/// An event whose notification is a text made from the event alone.
trait Notice {
    /// What the customer is told.
    fn text(&self) -> String;
}

impl<E: Notice + Kind<Event = Event> + Sync> Handle<E> for NotificationHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        event: &E,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        notify(uow, &message.envelope, event.text()).await
    }
}

/// Records the notification `text` for `message`, unless its order was already notified of
/// this event type, and logs it.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %message.event.order_id(), event_id = %message.event_id))]
async fn notify(
    uow: &mut UnitOfWork,
    message: &Envelope,
    text: String,
) -> Result<Handled, HandlerError> {
    let inserted = sqlx::query(
        "INSERT INTO notifications (id, order_id, event_type, event_id, message, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id, event_type) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(message.event.order_id())
    .bind(message.event.name())
    .bind(message.event_id)
    .bind(&text)
    .bind(message.timestamp)
    .execute(uow.conn())
    .await?;
    if inserted.rows_affected() == 1 {
        tracing::info!(notification = %text, "notification sent");
    } else {
        tracing::info!("this order was already notified of this event; skipped");
    }
    Ok(Handled::Done)
}
