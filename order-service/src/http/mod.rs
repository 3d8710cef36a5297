//! order-service's HTTP API: `/api/orders`, the saga view, the dashboard at `/` and its
//! failed-message console (`/admin/dead-letters…`: one by one, by group, edited; and the
//! operator log), and the AsyncAPI document of the saga's messages (`/asyncapi.json`).

pub mod asyncapi;
pub mod cancel;
pub mod console;
pub mod dashboard;
pub mod edit;
pub mod groups;
mod letters;
pub mod operator_log;
pub mod orders;
pub mod peers;
pub mod saga;

use common::amqp::broker::Broker;
use common::store::Store;
use utoipa_axum::router::OpenApiRouter;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Writes new orders, many per transaction.
    pub intake: crate::intake::Intake,
    /// For the dashboard's dead-letter depths and the failed-message console.
    pub broker: Broker,
    /// For the reads of the other services ([`peers`]): the dashboard's stock and the saga
    /// view's reservation from inventory-service, the payment provider's state from
    /// payment-service.
    pub http: reqwest::Client,
    pub inventory_url: reqwest::Url,
    pub payment_url: reqwest::Url,
    /// How long after completing an order may still be cancelled (CONTRACT §15).
    pub cancel_window: std::time::Duration,
}

pub fn router(state: AppState) -> OpenApiRouter {
    let exchange = state.broker.topology().exchange.clone();
    orders::router()
        .merge(cancel::router())
        .merge(asyncapi::router(&exchange))
        .merge(saga::router())
        .merge(dashboard::router())
        .merge(console::router())
        .merge(groups::router())
        .merge(edit::router())
        .merge(operator_log::router())
        .with_state(state)
}
