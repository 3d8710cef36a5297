//! Records and logs one notification per (order, event type).

use crate::message;
use common::amqp::consumer::{Handled, HandlerError, Incoming, MessageHandler};
use common::store::UnitOfWork;
use uuid::Uuid;

pub struct NotificationHandler;

impl MessageHandler for NotificationHandler {
    async fn apply(
        &self,
        uow: &mut UnitOfWork,
        message: &Incoming,
    ) -> Result<Handled, HandlerError> {
        let message = &message.envelope;
        let Some(text) = message::text(&message.event) else {
            tracing::debug!("not an event anyone is notified about; ignored");
            return Ok(Handled::Done);
        };
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
}
