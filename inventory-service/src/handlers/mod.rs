//! What inventory-service does with the events it consumes, one file per event:
//! [`order_created`] reserves every item or none, [`order_cancelled`] releases what the
//! order holds. [`InventoryHandler::Consumes`] names the published language's
//! list for this service (`contract::consumes`); its queue's bindings and the dispatch derive from it.

pub mod order_cancelled;
pub mod order_created;

use crate::stock;
use common::consumer::{HandlerError, Incoming, MessageHandler};
use common::store::UnitOfWork;
use contract::events::Event;

pub struct InventoryHandler;

impl MessageHandler for InventoryHandler {
    type Consumes = contract::consumes::Inventory;

    /// Locks every product the batch touches, in product order, before any message runs.
    /// A lone message needs no such step: it locks its own products in order.
    async fn prepare(
        &self,
        uow: &mut UnitOfWork,
        messages: &[&Incoming<Event>],
    ) -> Result<(), HandlerError> {
        if messages.len() < 2 {
            return Ok(());
        }
        let items = messages.iter().flat_map(|m| match &m.envelope.event {
            Event::OrderCreated(order) => order.items.as_slice(),
            Event::OrderCancelled(cancelled) => cancelled.items.as_slice(),
            _ => &[],
        });
        let products: Vec<&str> = items.map(|item| item.product_id.as_str()).collect();
        stock::lock_products_in_order(uow.conn(), &products).await?;
        Ok(())
    }
}
