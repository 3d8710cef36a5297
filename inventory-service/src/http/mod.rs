//! inventory-service's HTTP API: `/api/inventory`.

use crate::stock::{self, Product};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use common::http::{ApiError, FieldError, Json, Path};
use common::store::Store;
use serde::Deserialize;

/// Most stock one product may be set to.
const MAX_AVAILABLE: i64 = 1_000_000_000;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/inventory", get(list_products))
        .route(
            "/api/inventory/{product_id}",
            get(get_product).put(set_stock),
        )
        .with_state(state)
}

async fn list_products(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<Product>>, ApiError> {
    Ok(axum::Json(stock::list(state.store.pool()).await?))
}

async fn get_product(
    State(state): State<AppState>,
    Path(product_id): Path<String>,
) -> Result<axum::Json<Product>, ApiError> {
    stock::find(state.store.pool(), &product_id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::NotFound("Product not found".into()))
}

#[derive(Debug, Deserialize)]
struct SetStock {
    available: i64,
}

/// Sets a product's available stock (a restock or a correction), creating the product.
async fn set_stock(
    State(state): State<AppState>,
    Path(product_id): Path<String>,
    Json(body): Json<SetStock>,
) -> Result<axum::Json<Product>, ApiError> {
    let mut errors = Vec::new();
    common::validate::check_id(
        &product_id,
        vec!["path".into(), "product_id".into()],
        &mut errors,
    );
    if !(0..=MAX_AVAILABLE).contains(&body.available) {
        errors.push(FieldError::new(
            vec!["body".into(), "available".into()],
            format!("must be an integer from 0 to {MAX_AVAILABLE}"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let product =
        stock::set_available(state.store.pool(), &product_id, body.available as i32).await?;
    tracing::info!(%product_id, available = product.available, "stock set");
    Ok(axum::Json(product))
}
