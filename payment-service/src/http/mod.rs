//! payment-service's HTTP API: `GET /api/payments/{order_id}` and `GET /breaker`.

pub mod breaker;
pub mod payments;

use common::store::Store;
use utoipa_axum::router::OpenApiRouter;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub fn router(state: AppState) -> OpenApiRouter {
    payments::router()
        .merge(breaker::router())
        .with_state(state)
}
