//! An order's status and the one rule about it: it leaves `PENDING` once, for
//! `COMPLETED` or `CANCELLED`, and never changes again.

use common::text_enum::TextEnum;
use contract::events::CancellationReason;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderStatus {
    Pending,
    Completed,
    Cancelled,
}

/// How a saga ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Cancelled(CancellationReason),
}

impl TextEnum for OrderStatus {
    const ALL: &'static [Self] = &[Self::Pending, Self::Completed, Self::Cancelled];

    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

common::text_enum_sqlx!(OrderStatus);

impl OrderStatus {
    /// The status after `outcome`, or `None` when the order has already ended (a late or
    /// repeated event, which must change nothing).
    pub fn finish(self, outcome: Outcome) -> Option<OrderStatus> {
        match self {
            Self::Pending => Some(outcome.status()),
            Self::Completed | Self::Cancelled => None,
        }
    }
}

impl Outcome {
    pub fn status(self) -> OrderStatus {
        match self {
            Self::Completed => OrderStatus::Completed,
            Self::Cancelled(_) => OrderStatus::Cancelled,
        }
    }

    pub fn reason(self) -> Option<CancellationReason> {
        match self {
            Self::Completed => None,
            Self::Cancelled(reason) => Some(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CancellationReason::*;

    #[test]
    fn a_pending_order_ends_once() {
        assert_eq!(
            OrderStatus::Pending.finish(Outcome::Completed),
            Some(OrderStatus::Completed)
        );
        for reason in [InventoryUnavailable, PaymentFailed, Timeout] {
            assert_eq!(
                OrderStatus::Pending.finish(Outcome::Cancelled(reason)),
                Some(OrderStatus::Cancelled)
            );
        }
    }

    #[test]
    fn an_ended_order_never_changes() {
        for ended in [OrderStatus::Completed, OrderStatus::Cancelled] {
            assert_eq!(ended.finish(Outcome::Completed), None);
            assert_eq!(ended.finish(Outcome::Cancelled(Timeout)), None);
        }
    }

    #[test]
    fn statuses_read_back_from_their_names() {
        for status in [
            OrderStatus::Pending,
            OrderStatus::Completed,
            OrderStatus::Cancelled,
        ] {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(OrderStatus::parse("pending"), None);
    }
}
