//! The five invariants of CONTRACT §6 over an [`Observed`] system.

use crate::answers::{Notification, Order, OrderStatus, Payment, PaymentStatus, Stock};
use std::collections::BTreeMap;

/// Everything the checks read, as one side collected it once the system went quiet. Each
/// part is the answer or why it could not be read; an unreadable part is a violation.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The orders to check — every order (the tests) or one run's (loadgen) — each with
    /// what the other services hold of it.
    pub orders: Result<Vec<Seen>, String>,
    /// The stock now, by product.
    pub stock: Result<Stock, String>,
    /// What each product's stock must add up to; a listed product not named here must
    /// have none, and every product named here must still be listed.
    pub expected_stock: BTreeMap<String, Expected>,
    /// Every service's dead-letter queue.
    pub dead_letters: Vec<DeadLetters>,
}

/// One order and what payment-service and notification-service hold of it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub order: Order,
    /// `None`: payment-service has no payment for the order (404).
    pub payment: Result<Option<Payment>, String>,
    pub notifications: Result<Vec<Notification>, String>,
    /// Whether the order completed before it was cancelled (CONTRACT §15): read from its
    /// timeline for an order cancelled on request, `Ok(false)` for every other.
    pub completed_first: Result<bool, String>,
}

/// What one product's stock must add up to (CONTRACT §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// `available + reserved`: the initial stock plus every restock.
    pub put_in: i64,
    /// `reserved` before the orders checked were placed; it may grow only by what the
    /// completed ones among them took (0 when every order is checked).
    pub reserved_before: i64,
}

/// One dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    pub queue: String,
    /// What it holds, or why that could not be read.
    pub held: Result<Held, String>,
    /// The `message_id`s of the poison messages put there on purpose.
    pub expected: Vec<String>,
}

/// What a dead-letter queue holds, as precisely as its reader can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Every letter's `message_id` (or a description of a letter without one).
    Ids(Vec<String>),
    /// Only how many letters there are.
    Depth(u64),
}

impl Observed {
    /// Everything that is not as CONTRACT §6 says, in words; empty when all holds.
    pub fn violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        match &self.orders {
            Ok(orders) => {
                for seen in orders {
                    order_ended(&seen.order, &mut found);
                }
                self.check_stock(orders, &mut found);
                for seen in orders {
                    payment(seen, &mut found);
                    final_notification(seen, &mut found);
                }
            }
            Err(error) => found.push(format!("the orders cannot be read: {error}")),
        }
        for queue in &self.dead_letters {
            dead_letters(queue, &mut found);
        }
        found
    }

    /// §6.2: per product, `available + reserved` is what was put in, and `reserved` grew by
    /// what the completed orders took; every product expected is still listed.
    fn check_stock(&self, orders: &[Seen], found: &mut Vec<String>) {
        let stock = match &self.stock {
            Ok(stock) => stock,
            Err(error) => return found.push(format!("the stock cannot be read: {error}")),
        };
        let mut taken: BTreeMap<&str, i64> = BTreeMap::new();
        for seen in orders {
            if seen.order.status == OrderStatus::Completed {
                for item in &seen.order.items {
                    *taken.entry(item.product_id.as_str()).or_default() += item.quantity;
                }
            }
        }
        for product in self.expected_stock.keys() {
            if !stock.contains_key(product) {
                found.push(format!("inventory no longer lists {product}"));
            }
        }
        for (product, &(available, reserved)) in stock {
            let expected = self
                .expected_stock
                .get(product)
                .copied()
                .unwrap_or(Expected {
                    put_in: 0,
                    reserved_before: 0,
                });
            if available + reserved != expected.put_in {
                found.push(format!(
                    "{product}: available {available} + reserved {reserved} != {} put in",
                    expected.put_in
                ));
            }
            if available < 0 || reserved < 0 {
                found.push(format!(
                    "{product}: available {available}, reserved {reserved} below zero"
                ));
            }
            let completed = taken.remove(product.as_str()).unwrap_or(0);
            if reserved - expected.reserved_before != completed {
                let was = match expected.reserved_before {
                    0 => String::new(),
                    before => format!(" (was {before})"),
                };
                found.push(format!(
                    "{product}: reserved {reserved}{was} but completed orders took {completed}"
                ));
            }
        }
        for (product, quantity) in taken {
            found.push(format!(
                "completed orders took {quantity} of {product}, which inventory does not list"
            ));
        }
    }
}

/// §6.1: the order is `COMPLETED` or `CANCELLED`.
fn order_ended(order: &Order, found: &mut Vec<String>) {
    if order.status == OrderStatus::Pending {
        found.push(format!("order {} is still {}", order.id, order.status));
    }
}

/// §6.3: a completed order has one `PROCESSED` payment of its total; a cancelled one has a
/// `FAILED` or `REFUNDED` payment or none — `REFUNDED` of its total if it completed first.
fn payment(seen: &Seen, found: &mut Vec<String>) {
    let order = &seen.order;
    let payment = match &seen.payment {
        Ok(payment) => payment,
        Err(error) => return found.push(format!("payment of {}: {error}", order.id)),
    };
    match order.status {
        OrderStatus::Completed => {
            let paid = payment.as_ref().is_some_and(|p| {
                p.status == PaymentStatus::Processed && p.amount == order.total_amount
            });
            if !paid {
                found.push(format!(
                    "completed order {} of {} has payment {payment:?}",
                    order.id, order.total_amount
                ));
            }
        }
        OrderStatus::Cancelled if seen.completed_first == Ok(true) => match payment {
            Some(p) if p.status == PaymentStatus::Refunded && p.amount == order.total_amount => {}
            _ => found.push(format!(
                "order {} cancelled after it completed has payment {payment:?}, not one \
                 REFUNDED of {}",
                order.id, order.total_amount
            )),
        },
        OrderStatus::Cancelled => match payment {
            None => {}
            Some(p) if matches!(p.status, PaymentStatus::Failed | PaymentStatus::Refunded) => {}
            Some(p) => found.push(format!(
                "cancelled order {} has a payment in status {}, not FAILED, REFUNDED or none",
                order.id, p.status
            )),
        },
        OrderStatus::Pending => {}
    }
}

/// §6.4: exactly one final notification, matching how the order ended — both, in that
/// order, for an order cancelled after it completed.
fn final_notification(seen: &Seen, found: &mut Vec<String>) {
    let order = &seen.order;
    let completed_first = match &seen.completed_first {
        Ok(completed_first) => *completed_first,
        Err(error) => return found.push(format!("timeline of {}: {error}", order.id)),
    };
    let notifications = match &seen.notifications {
        Ok(notifications) => notifications,
        Err(error) => return found.push(format!("notifications of {}: {error}", order.id)),
    };
    let finals: Vec<&str> = notifications
        .iter()
        .map(|n| n.event_type.as_str())
        .filter(|t| *t == "OrderConfirmed" || *t == "OrderCancelled")
        .collect();
    let expected: &[&str] = match order.status {
        OrderStatus::Completed => &["OrderConfirmed"],
        OrderStatus::Cancelled if completed_first => &["OrderConfirmed", "OrderCancelled"],
        _ => &["OrderCancelled"],
    };
    if finals != expected {
        found.push(format!(
            "order {} ({}) has final notifications {finals:?}",
            order.id, order.status
        ));
    }
}

/// §6.5: a dead-letter queue holds exactly the poison messages put there on purpose.
fn dead_letters(queue: &DeadLetters, found: &mut Vec<String>) {
    let name = &queue.queue;
    let mut expected = queue.expected.clone();
    expected.sort();
    match &queue.held {
        Err(error) => found.push(format!("{name} cannot be read: {error}")),
        Ok(Held::Ids(ids)) => {
            let mut held = ids.clone();
            held.sort();
            if held != expected {
                found.push(format!(
                    "{name} holds {held:?}, but only {expected:?} were put there"
                ));
            }
        }
        Ok(Held::Depth(depth)) => {
            if *depth != expected.len() as u64 {
                found.push(format!(
                    "{name} holds {depth} dead letters, but only {expected:?} were put there"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
