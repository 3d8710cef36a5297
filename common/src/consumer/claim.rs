//! The inbox claim: a batch's one transaction — claim every message in the inbox, apply
//! the new ones, give back the claims of those coming back later, commit — held while the
//! database is unreachable.

use super::dispatch;
use super::{EventOf, Handled, HandlerError, Incoming, Message, MessageHandler, Work};
use crate::inbox;
use crate::retry::Backoff;
use std::collections::HashSet;
use std::time::Instant;
use tracing::Instrument;

impl<H: MessageHandler> Work<H> {
    /// Applies one message in its own transaction and settles it.
    pub(super) async fn apply_one(&self, message: Message<EventOf<H>>) {
        let started = Instant::now();
        let one = std::slice::from_ref(&message);
        let Some(result) = self.hold_while_unreachable(one).await else {
            return;
        };
        let result = result.map(|mut handled| handled.pop().unwrap_or(Handled::Done));
        self.settle(message, result, started.elapsed()).await;
    }

    /// Applies `messages` together, waiting out database outages. `None` when the service
    /// is stopping meanwhile; the deliveries then go back to the queue.
    pub(super) async fn hold_while_unreachable(
        &self,
        messages: &[Message<EventOf<H>>],
    ) -> Option<Result<Vec<Handled>, HandlerError>> {
        let mut backoff = Backoff::reconnect();
        loop {
            match self.apply_together(messages).await {
                Err(HandlerError::Database(error)) if crate::db::is_unreachable(&error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, size = messages.len(), "database unreachable; holding the messages");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.cancelled() => {
                            for message in messages {
                                self.acks.requeue(&message.delivery).await;
                            }
                            return None;
                        }
                    }
                }
                outcome => return Some(outcome),
            }
        }
    }

    /// One transaction: claim every message in the inbox, apply the new ones, give back
    /// the claims of those that will be applied again, commit.
    async fn apply_together(
        &self,
        messages: &[Message<EventOf<H>>],
    ) -> Result<Vec<Handled>, HandlerError> {
        // A batch's transaction is traced under its first message.
        let transaction = tracing::info_span!(
            parent: &messages[0].span,
            "transaction",
            otel.name = "postgresql transaction",
            db.system = "postgresql",
            db.operation.batch.size = messages.len(),
        );
        self.apply_in_transaction(messages)
            .instrument(transaction)
            .await
    }

    async fn apply_in_transaction(
        &self,
        messages: &[Message<EventOf<H>>],
    ) -> Result<Vec<Handled>, HandlerError> {
        let mut uow = self.store.begin().await?;
        let ids: Vec<_> = messages
            .iter()
            .map(|m| m.incoming.envelope.event_id)
            .collect();
        let mut unclaimed: HashSet<_> = inbox::claim_all(uow.conn(), &ids)
            .await?
            .into_iter()
            .collect();
        let new: Vec<&Incoming<EventOf<H>>> = messages
            .iter()
            .map(|m| &m.incoming)
            .filter(|m| unclaimed.contains(&m.envelope.event_id))
            .collect();
        if !new.is_empty() {
            self.handler.prepare(&mut uow, &new).await?;
        }
        let mut results = Vec::with_capacity(messages.len());
        let mut coming_back = Vec::new();
        for message in messages {
            let id = message.incoming.envelope.event_id;
            if !unclaimed.remove(&id) {
                message
                    .span
                    .in_scope(|| tracing::info!("already handled; skipped"));
                results.push(Handled::Done);
                continue;
            }
            let handled = dispatch::apply(&*self.handler, &mut uow, &message.incoming)
                .instrument(message.span.clone())
                .await?;
            if let Handled::RetryAfter(_) = handled {
                coming_back.push(id);
            }
            results.push(handled);
        }
        inbox::release_claims(uow.conn(), &coming_back).await?;
        uow.commit().await?;
        Ok(results)
    }
}
