//! `GET /admin/operator-log` of inventory-service: its restocks as the operator log keeps
//! them (CONTRACT §16). order-service's console reads it and merges it with its own.

use super::AppState;
use axum::Json;
use axum::extract::State;
use common::http::responses::{AdminRequired, DatabaseDown};
use common::http::{Admin, ApiError, Query, ValidationErrorBody};
use common::operator_log::{Entry, PageParams, page};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Names inventory-service's entries in the merged log.
const SERVICE: &str = "inventory";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(operator_log))
}

/// The restocks, newest first: `limit` entries (default 50, at most 500) older than
/// `before` (an entry's `at`). Append-only. Admin route: `Authorization: Bearer
/// $ADMIN_TOKEN` (or an `orders:admin` JWT).
#[utoipa::path(get, path = "/admin/operator-log", tag = "inventory", params(PageParams),
    responses(
    (status = 200, description = "The entries, newest first", body = Vec<Entry>),
    AdminRequired,
    (status = 422, description = "A bad limit or before", body = ValidationErrorBody),
    DatabaseDown),
    security(("admin_token" = [])))]
async fn operator_log(
    _admin: Admin,
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    let (limit, before) = params.parse()?;
    Ok(Json(
        page(state.store.pool(), limit, before, SERVICE).await?,
    ))
}
