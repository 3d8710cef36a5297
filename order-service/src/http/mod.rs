//! order-service's HTTP API: `/api/orders`.

pub mod orders;

use axum::Router;
use common::store::Store;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub fn router(state: AppState) -> Router {
    orders::router().with_state(state)
}
