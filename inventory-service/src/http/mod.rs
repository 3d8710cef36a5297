//! inventory-service's HTTP API: `/api/inventory`, and the operator log of its restocks
//! ([`operator_log`]).

pub mod operator_log;

use crate::stock::{self, Product};
use axum::extract::State;
use axum::response::Response;
use common::auth::Caller;
use common::http::responses::{BearerRequired, DatabaseDown, JsonBodyRejected};
use common::http::{
    Actor, ApiError, ErrorBody, FieldError, IfNoneMatch, Json, Path, TokenAdmin,
    ValidationErrorBody, tagged_json,
};
use common::ids::ProductId;
use common::store::Store;
use contract::OrderId;
use contract::reads::ReservationView;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most stock one product may be set to.
const MAX_AVAILABLE: i64 = 1_000_000_000;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(get_product, set_stock))
        .routes(routes!(get_reservation))
        .merge(operator_log::router())
        .with_state(state)
}

/// Every product with its stock. With authentication on, any valid token may read it.
#[utoipa::path(get, path = "/api/inventory", tag = "inventory",
    params(IfNoneMatch),
    responses(
    (status = 200, description = "Every product, by id", body = Vec<Product>),
    BearerRequired,
    DatabaseDown),
    security((), ("bearer" = [])))]
async fn list_products(
    _caller: Caller,
    condition: IfNoneMatch,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    Ok(tagged_json(
        &condition,
        &stock::list(state.store.pool()).await?,
    ))
}

/// One product's stock. With authentication on, any valid token may read it.
#[utoipa::path(get, path = "/api/inventory/{product_id}", tag = "inventory",
    params(("product_id" = inline(ProductId), Path),
        IfNoneMatch),
    responses(
        (status = 200, description = "The product", body = Product),
        BearerRequired,
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 422, description = "Not a product id", body = ValidationErrorBody),
        DatabaseDown),
    security((), ("bearer" = [])))]
async fn get_product(
    _caller: Caller,
    condition: IfNoneMatch,
    State(state): State<AppState>,
    product_id: ProductId,
) -> Result<Response, ApiError> {
    let product = stock::find(state.store.pool(), product_id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("Product"))?;
    Ok(tagged_json(&condition, &product))
}

/// An order's reservation and the `InventoryReserved` that announced it — what
/// order-service's saga view shows of inventory (it passes its caller's token on). With
/// authentication on, a customer reads only its own orders' reservations (another's
/// answers 404, like an unknown order); `orders:admin` reads every one.
#[utoipa::path(get, path = "/api/inventory/reservations/{order_id}", tag = "inventory",
    params(("order_id" = OrderId, Path, description = "The order id"),
        IfNoneMatch),
    responses(
        (status = 200, description = "The reservation", body = ReservationView),
        BearerRequired,
        (status = 404, description = "inventory-service has not seen this order, or it is another customer's", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrorBody),
        DatabaseDown),
    security((), ("bearer" = [])))]
async fn get_reservation(
    caller: Caller,
    condition: IfNoneMatch,
    State(state): State<AppState>,
    Path(order_id): Path<OrderId>,
) -> Result<Response, ApiError> {
    // Another customer's reservation reads exactly like one never seen.
    let reservation = stock::reservation(state.store.pool(), order_id)
        .await?
        .filter(|found| caller.may_see_owned_by(found.customer_id.as_deref()))
        .ok_or_else(|| ApiError::not_found("Reservation"))?;
    Ok(tagged_json(&condition, &reservation.view))
}

#[derive(Debug, Deserialize, ToSchema)]
struct SetStock {
    /// Units available for new orders, 0 to 10^9.
    #[schema(minimum = 0, maximum = 1000000000)]
    available: i64,
}

/// Sets a product's available stock (a restock or a correction), creating the product.
/// Reserved stock belongs to orders and is left as it is. The change and its operator log
/// entry (with the stock it replaced) commit together. Admin route that keeps to the shared
/// token (CONTRACT §12): `Authorization: Bearer $ADMIN_TOKEN`; a JWT, even an
/// `orders:admin` one, is not it.
#[utoipa::path(put, path = "/api/inventory/{product_id}", tag = "inventory",
    params(("product_id" = inline(ProductId), Path)),
    request_body = SetStock,
    responses(
        (status = 200, description = "The product after the change", body = Product),
        (status = 401, description = "No or a wrong admin token (a JWT is not it)", body = ErrorBody),
        (status = 403, description = "Admin routes are off (ADMIN_TOKEN unset)", body = ErrorBody),
        JsonBodyRejected,
        (status = 422, description = "A bad value", body = ValidationErrorBody),
        DatabaseDown),
    security(("admin_token" = [])))]
async fn set_stock(
    _admin: TokenAdmin,
    State(state): State<AppState>,
    // A bad id is reported together with a bad body, not instead of it.
    product_id: Result<ProductId, ApiError>,
    Json(body): Json<SetStock>,
) -> Result<axum::Json<Product>, ApiError> {
    let mut errors = Vec::new();
    let product_id = match product_id {
        Ok(id) => Some(id),
        Err(ApiError::Validation(problems)) => {
            errors.extend(problems);
            None
        }
        Err(other) => return Err(other),
    };
    if !(0..=MAX_AVAILABLE).contains(&body.available) {
        errors.push(FieldError::new(
            vec!["body".into(), "available".into()],
            format!("must be an integer from 0 to {MAX_AVAILABLE}"),
        ));
    }
    let Some(product_id) = product_id.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let mut tx = state.store.pool().begin().await?;
    let previous = stock::find_for_update(&mut tx, product_id.as_str()).await?;
    let product =
        stock::set_available(&mut *tx, product_id.as_str(), body.available as i32).await?;
    let detail = json!({ "previous": previous.map(|p| json!({
        "available": p.available, "reserved": p.reserved
    })) });
    let result = json!({ "available": product.available, "reserved": product.reserved });
    common::operator_log::append(
        &mut *tx,
        &Actor::AdminToken,
        "restock",
        product_id.as_str(),
        detail,
        result,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%product_id, available = product.available, "stock set");
    Ok(axum::Json(product))
}
