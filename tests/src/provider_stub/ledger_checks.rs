//! What the tests assert about the stub's ledger: CONTRACT §7 from the provider's side,
//! and that payment-service shows the provider's ids.

use super::{Charge, ProviderStub, Refund};
use crate::eventually;
use crate::stack::TestStack;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

impl ProviderStub {
    /// CONTRACT §7 from the provider's side, given how each order ended
    /// (`order_id → (status, total in cents)`): at most one succeeded charge per order; a
    /// `COMPLETED` order has exactly one, of its total, not refunded; a `CANCELLED` order has
    /// none, or one refunded exactly once; no refund of anything else.
    pub fn violations(&self, orders: &BTreeMap<String, (String, i64)>) -> Vec<String> {
        let ledger = self.stub.ledger.lock().expect("not poisoned");
        let mut found = Vec::new();
        let mut refunds_of: HashMap<&str, Vec<&Refund>> = HashMap::new();
        for refund in &ledger.refunds {
            refunds_of
                .entry(&refund.charge_id)
                .or_default()
                .push(refund);
            let refunded = ledger.charges.iter().find(|c| c.id == refund.charge_id);
            if !refunded.is_some_and(|c| c.succeeded && c.amount == refund.amount) {
                found.push(format!(
                    "refund {refund:?} is not of a succeeded charge of its amount"
                ));
            }
        }
        let mut succeeded: HashMap<&str, Vec<&Charge>> = HashMap::new();
        for charge in ledger.charges.iter().filter(|c| c.succeeded) {
            succeeded.entry(&charge.order_id).or_default().push(charge);
        }
        for (order_id, charges) in &succeeded {
            if charges.len() > 1 {
                found.push(format!(
                    "order {order_id} was charged {} times: {charges:?}",
                    charges.len()
                ));
            }
            if !orders.contains_key(*order_id) {
                found.push(format!("order {order_id} is unknown but was charged"));
            }
        }
        for (order_id, (status, total)) in orders {
            let charges = succeeded
                .get(order_id.as_str())
                .cloned()
                .unwrap_or_default();
            let refunds: Vec<&Refund> = charges
                .iter()
                .flat_map(|c| refunds_of.get(c.id.as_str()).cloned().unwrap_or_default())
                .collect();
            match status.as_str() {
                "COMPLETED" => {
                    let ok =
                        charges.len() == 1 && charges[0].amount == *total && refunds.is_empty();
                    if !ok {
                        found.push(format!(
                            "completed order {order_id} (total {total}) has charges {charges:?} and refunds {refunds:?}"
                        ));
                    }
                }
                "CANCELLED" => {
                    if !(charges.is_empty() || (charges.len() == 1 && refunds.len() == 1)) {
                        found.push(format!(
                            "cancelled order {order_id} has charges {charges:?} and refunds {refunds:?}"
                        ));
                    }
                }
                other => found.push(format!("order {order_id} is still {other}")),
            }
        }
        found
    }

    /// Waits until the system is quiet with CONTRACT §6 holding, then until the ledger
    /// agrees with how every order ended and with what payment-service shows
    /// (`charge_id`, `refund_id`).
    pub async fn assert_charged_once(&self, stack: &TestStack) {
        stack.assert_invariants().await;
        eventually(
            "the provider's ledger to agree with every order",
            Duration::from_secs(60),
            || async {
                let mut orders = BTreeMap::new();
                let mut found = Vec::new();
                for order in stack.all_orders().await {
                    let id = order["id"].as_str().unwrap_or_default().to_owned();
                    let cents =
                        (order["total_amount"].as_f64().unwrap_or_default() * 100.0).round() as i64;
                    let status = order["status"].as_str().unwrap_or_default().to_owned();
                    self.check_payment_view(&id, stack.payment(&id).await, &mut found);
                    orders.insert(id, (status, cents));
                }
                found.extend(self.violations(&orders));
                if found.is_empty() {
                    Ok(())
                } else {
                    Err(found.join("\n"))
                }
            },
        )
        .await;
    }

    /// payment-service shows the provider's ids: the succeeded charge, and its refund.
    fn check_payment_view(&self, order_id: &str, payment: Option<Value>, found: &mut Vec<String>) {
        let charge = self
            .charges()
            .into_iter()
            .find(|c| c.order_id == order_id && c.succeeded);
        let refund = charge
            .as_ref()
            .and_then(|c| self.refunds().into_iter().find(|r| r.charge_id == c.id));
        let shown = |field: &str| {
            payment
                .as_ref()
                .and_then(|p| p[field].as_str().map(str::to_owned))
        };
        if shown("charge_id") != charge.map(|c| c.id) || shown("refund_id") != refund.map(|r| r.id)
        {
            found.push(format!(
                "order {order_id}: payment {payment:?} does not show the provider's ids"
            ));
        }
    }
}
