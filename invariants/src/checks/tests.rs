//! Each invariant, broken on purpose in an otherwise quiet system.

use super::*;
use crate::answers::OrderItem;
use uuid::Uuid;

fn order(status: OrderStatus, items: &[(&str, i64)], total: f64) -> Order {
    Order {
        id: Uuid::new_v4(),
        status,
        items: items
            .iter()
            .map(|(p, q)| OrderItem {
                product_id: (*p).into(),
                quantity: *q,
            })
            .collect(),
        total_amount: total,
        cancellation_reason: (status == OrderStatus::Cancelled).then(|| "PAYMENT_FAILED".into()),
    }
}

fn notified(event_type: &str) -> Result<Vec<Notification>, String> {
    Ok(vec![
        Notification {
            event_type: "PaymentProcessed".into(),
        },
        Notification {
            event_type: event_type.into(),
        },
    ])
}

fn paid(status: PaymentStatus, amount: f64) -> Result<Option<Payment>, String> {
    Ok(Some(Payment { status, amount }))
}

/// A quiet system: one completed order of two A, one cancelled; 10 A and 5 B put in.
fn quiet() -> Observed {
    Observed {
        orders: Ok(vec![
            Seen {
                order: order(OrderStatus::Completed, &[("A", 2)], 20.5),
                payment: paid(PaymentStatus::Processed, 20.5),
                notifications: notified("OrderConfirmed"),
                completed_first: Ok(false),
            },
            Seen {
                order: order(OrderStatus::Cancelled, &[("B", 1)], 3.0),
                payment: paid(PaymentStatus::Refunded, 3.0),
                notifications: notified("OrderCancelled"),
                completed_first: Ok(false),
            },
        ]),
        stock: Ok(Stock::from([("A".into(), (8, 2)), ("B".into(), (5, 0))])),
        expected_stock: BTreeMap::from([
            (
                "A".into(),
                Expected {
                    put_in: 10,
                    reserved_before: 0,
                },
            ),
            (
                "B".into(),
                Expected {
                    put_in: 5,
                    reserved_before: 0,
                },
            ),
        ]),
        dead_letters: vec![DeadLetters {
            queue: "x.inventory.dlq".into(),
            held: Ok(Held::Ids(vec!["poison".into()])),
            expected: vec!["poison".into()],
        }],
    }
}

fn seen(observed: &mut Observed, index: usize) -> &mut Seen {
    &mut observed.orders.as_mut().unwrap()[index]
}

#[test]
fn a_quiet_system_has_no_violations() {
    assert_eq!(quiet().violations(), Vec::<String>::new());
}

#[test]
fn a_pending_order_is_a_violation() {
    let mut observed = quiet();
    seen(&mut observed, 1).order.status = OrderStatus::Pending;
    let found = observed.violations();
    assert!(
        found.iter().any(|v| v.contains("is still PENDING")),
        "{found:?}"
    );
}

#[test]
fn a_cancelled_order_may_have_a_failed_refunded_or_no_payment_only() {
    for (payment, holds) in [
        (Ok(None), true),
        (paid(PaymentStatus::Failed, 3.0), true),
        (paid(PaymentStatus::Refunded, 3.0), true),
        (paid(PaymentStatus::Processed, 3.0), false),
        (paid(PaymentStatus::Pending, 3.0), false),
        (Err("GET payment answered 500".into()), false),
    ] {
        let mut observed = quiet();
        seen(&mut observed, 1).payment = payment.clone();
        assert_eq!(observed.violations().is_empty(), holds, "{payment:?}");
    }
}

#[test]
fn a_completed_order_needs_one_processed_payment_of_its_total() {
    for payment in [
        Ok(None),
        paid(PaymentStatus::Processed, 20.0),
        paid(PaymentStatus::Refunded, 20.5),
        Err("unreadable".into()),
    ] {
        let mut observed = quiet();
        seen(&mut observed, 0).payment = payment.clone();
        assert_eq!(observed.violations().len(), 1, "{payment:?}");
    }
}

#[test]
fn final_notifications_must_be_exactly_the_one_matching_the_status() {
    for notifications in [
        Ok(vec![]),
        notified("OrderCancelled"),
        Ok([
            notified("OrderConfirmed").unwrap(),
            notified("OrderConfirmed").unwrap(),
        ]
        .concat()),
        Err("GET answered 503".into()),
    ] {
        let mut observed = quiet();
        seen(&mut observed, 0).notifications = notifications.clone();
        assert_eq!(observed.violations().len(), 1, "{notifications:?}");
    }
}

#[test]
fn stock_must_add_up_and_reserved_must_match_completed_orders() {
    let mut observed = quiet();
    observed.stock = Ok(Stock::from([("A".into(), (9, 2)), ("B".into(), (5, 0))]));
    assert_eq!(observed.violations().len(), 1);
    let mut observed = quiet();
    observed.stock = Ok(Stock::from([("A".into(), (7, 3)), ("B".into(), (5, 0))]));
    assert_eq!(observed.violations().len(), 1);
    let mut observed = quiet();
    observed.stock = Ok(Stock::from([("A".into(), (8, 2))]));
    assert_eq!(observed.violations(), ["inventory no longer lists B"]);
    let mut observed = quiet();
    observed.stock = Err("GET /api/inventory answered 503".into());
    assert_eq!(observed.violations().len(), 1);
}

#[test]
fn reserved_may_grow_from_what_it_was_before_the_orders_checked() {
    let mut observed = quiet();
    observed.stock = Ok(Stock::from([("A".into(), (8, 7)), ("B".into(), (5, 0))]));
    observed.expected_stock.insert(
        "A".into(),
        Expected {
            put_in: 15,
            reserved_before: 5,
        },
    );
    assert_eq!(observed.violations(), Vec::<String>::new());
}

#[test]
fn unreadable_orders_or_dead_letters_are_violations() {
    let mut observed = quiet();
    observed.orders = Err("GET /api/orders answered 503".into());
    assert_eq!(observed.violations().len(), 1);
    let mut observed = quiet();
    observed.dead_letters[0].held = Err("queue x.inventory.dlq does not exist".into());
    assert_eq!(observed.violations().len(), 1);
}

#[test]
fn dead_letters_must_be_exactly_those_put_there() {
    for held in [
        Held::Ids(vec![]),
        Held::Ids(vec!["poison".into(), "other".into()]),
        Held::Depth(2),
        Held::Depth(0),
    ] {
        let mut observed = quiet();
        observed.dead_letters[0].held = Ok(held.clone());
        assert_eq!(observed.violations().len(), 1, "{held:?}");
    }
    let mut observed = quiet();
    observed.dead_letters[0].held = Ok(Held::Depth(1));
    assert_eq!(observed.violations(), Vec::<String>::new());
}

/// An order cancelled after it completed (CONTRACT §15): three items, put in and returned.
fn cancelled_after_completion() -> Seen {
    let mut order = order(OrderStatus::Cancelled, &[("B", 1)], 3.0);
    order.cancellation_reason = Some("CUSTOMER_CANCELLED".into());
    Seen {
        order,
        payment: paid(PaymentStatus::Refunded, 3.0),
        notifications: Ok(["PaymentProcessed", "OrderConfirmed", "OrderCancelled"]
            .map(|event_type| Notification {
                event_type: event_type.into(),
            })
            .to_vec()),
        completed_first: Ok(true),
    }
}

#[test]
fn an_order_cancelled_after_it_completed_holds_no_stock_is_refunded_and_has_both_finals() {
    let mut observed = quiet();
    observed
        .orders
        .as_mut()
        .unwrap()
        .push(cancelled_after_completion());
    assert_eq!(observed.violations(), Vec::<String>::new());

    // Not refunded: a violation.
    let mut unrefunded = cancelled_after_completion();
    unrefunded.payment = paid(PaymentStatus::Processed, 3.0);
    let mut observed = quiet();
    observed.orders.as_mut().unwrap().push(unrefunded);
    assert_eq!(
        observed.violations().len(),
        1,
        "{:?}",
        observed.violations()
    );

    // Only the cancellation notice, or the two in the wrong order: a violation.
    for finals in [
        &["OrderCancelled"][..],
        &["OrderCancelled", "OrderConfirmed"],
        &["OrderConfirmed", "OrderCancelled", "OrderCancelled"],
    ] {
        let mut seen = cancelled_after_completion();
        seen.notifications = Ok(finals
            .iter()
            .map(|event_type| Notification {
                event_type: (*event_type).into(),
            })
            .collect());
        let mut observed = quiet();
        observed.orders.as_mut().unwrap().push(seen);
        assert_eq!(observed.violations().len(), 1, "{finals:?}");
    }

    // Still holding its stock: reserved no longer matches the completed orders.
    let mut observed = quiet();
    observed
        .orders
        .as_mut()
        .unwrap()
        .push(cancelled_after_completion());
    observed.stock = Ok(Stock::from([("A".into(), (8, 2)), ("B".into(), (4, 1))]));
    assert_eq!(
        observed.violations().len(),
        1,
        "{:?}",
        observed.violations()
    );

    // An order cancelled while pending has only the cancellation notice.
    let mut seen = cancelled_after_completion();
    seen.completed_first = Ok(false);
    let mut observed = quiet();
    observed.orders.as_mut().unwrap().push(seen);
    assert_eq!(
        observed.violations().len(),
        1,
        "{:?}",
        observed.violations()
    );
}
