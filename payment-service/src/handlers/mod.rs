//! What the consumer does, quickly and in the batch's transaction, one file per event:
//! [`inventory_reserved`] records that the order is to be paid; [`order_cancelled`] stops
//! a payment, lets an attempt in flight finish (a success is then refunded), or leaves a
//! tombstone so a late reservation is never charged. An HTTP provider is never called here:
//! the worker ([`crate::worker`]) does that outside any transaction — for a first attempt
//! started here, right after the commit — so a rolled-back batch, a redelivery or a
//! duplicate with a new message id cannot charge or start anything twice.
//! The built-in simulator, whose ledger is in this database, answers a first attempt inside
//! the transaction instead, which is as safe: its answer commits with the batch or not at all.
//! [`PaymentHandler::Consumes`] names the published language's list for this service
//! (`contract::consumes`); its queue's bindings and the dispatch derive from it.

pub mod inventory_reserved;
pub mod order_cancelled;

use crate::payments::{self, InlineSimulator};
use crate::worker::PaymentWorker;
use common::consumer::{HandlerError, Incoming, MessageHandler};
use common::store::UnitOfWork;
use contract::OrderId;
use contract::events::Event;
use std::sync::Arc;

pub struct PaymentHandler {
    /// With the built-in simulator: its rules, so the first attempt is charged in the
    /// batch's transaction ([`payments::charge_first_attempt`]); `None` with an HTTP
    /// provider, whose every call the worker makes.
    pub inline: Option<InlineSimulator>,
    /// Asks the provider for a first attempt started here once the batch commits; told when
    /// a payment the simulator declined here is due for its next attempt.
    pub worker: Arc<PaymentWorker>,
}

impl MessageHandler for PaymentHandler {
    type Consumes = contract::consumes::Payment;

    /// Locks the batch's orders in one fixed order before any row is touched: two batches
    /// such as `[InventoryReserved(X), OrderCancelled(Y)]` and `[InventoryReserved(Y),
    /// OrderCancelled(X)]` would otherwise lock X and Y in opposite orders and deadlock.
    ///
    /// A batch of one order needs no such lock — unless the seeded simulator numbers that
    /// order: it then takes the rank table's lock after the order's new row, while a
    /// batch of several orders may hold that table lock and wait for the same row (a
    /// duplicate reservation, a cancellation), a cycle PostgreSQL breaks by failing one of
    /// them. With the order's lock first, the two wait for each other before either
    /// touches a row (see [`takes_the_rank_lock`]).
    async fn prepare(
        &self,
        uow: &mut UnitOfWork,
        messages: &[&Incoming<Event>],
    ) -> Result<(), HandlerError> {
        let mut orders: Vec<OrderId> = messages
            .iter()
            .filter_map(|m| match &m.envelope.event {
                Event::InventoryReserved(e) => Some(e.order_id),
                Event::OrderCancelled(e) => Some(e.order_id),
                _ => None,
            })
            .collect();
        orders.sort();
        orders.dedup();
        if orders.len() > 1 || takes_the_rank_lock(self.inline.as_ref(), messages) {
            payments::lock_orders(uow.conn(), &orders).await?;
        }
        Ok(())
    }
}

/// Whether applying `messages` may take the seeded simulator's lock on its rank table
/// (`provider::simulator::rank`): a first attempt charged here, with `PAYMENT_SEED` set.
fn takes_the_rank_lock(inline: Option<&InlineSimulator>, messages: &[&Incoming<Event>]) -> bool {
    inline.is_some_and(|simulator| simulator.seed.is_some())
        && messages
            .iter()
            .any(|m| matches!(m.envelope.event, Event::InventoryReserved(_)))
}
