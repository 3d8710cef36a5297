//! `GET /admin/operator-log` (CONTRACT §16): every admin action, newest first — the
//! console's from order-service's own log, the restocks from inventory-service's (read
//! through its admin route, like the other reads of [`super::peers`]), merged.

use super::{AppState, peers};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use common::http::responses::AdminRequired;
use common::http::{Admin, ApiError, ErrorBody, Query, ValidationErrorBody};
use common::operator_log::{Entry, PageParams, merge};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(operator_log))
}

/// Every admin action — replays, discards, edits, restocks, operator cancels — newest
/// first: `limit` entries (default 50, at most 500) older than `before` (an entry's `at`,
/// for the next page). Append-only: no route changes or deletes an entry. Admin route:
/// `Authorization: Bearer $ADMIN_TOKEN` (or an `orders:admin` JWT), passed on to
/// inventory-service.
#[utoipa::path(get, path = "/admin/operator-log", tag = "dead letters", params(PageParams),
    responses(
    (status = 200, description = "The entries, newest first", body = Vec<Entry>),
    AdminRequired,
    (status = 422, description = "A bad limit or before", body = ValidationErrorBody),
    (status = 503, description = "A database, or inventory-service, does not answer", body = ErrorBody)),
    security(("admin_token" = [])))]
async fn operator_log(
    _admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<PageParams>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    let (limit, before) = params.parse()?;
    let own = crate::operator_log::page(state.store.pool(), limit, before).await?;
    let mut path = format!("admin/operator-log?limit={limit}");
    if let Some(before) = before {
        path.push_str("&before=");
        path.push_str(&common::operator_log::format_moment(&before));
    }
    let restocks: Vec<Entry> = peers::read_from(
        &state,
        &state.inventory_url,
        &path,
        "inventory",
        headers.get(header::AUTHORIZATION),
    )
    .await
    .map_err(ApiError::Unavailable)?
    .unwrap_or_default();
    Ok(Json(merge(own, restocks, limit)))
}
