//! The dead-letter admin routes: look at the service's dead-letter queue, move its
//! messages back for another try, or discard those of one `message_id`.

use super::OpsState;
use crate::amqp::dead_letters;
use crate::http::admin::Admin;
use crate::http::error::{ApiError, ValidationErrorBody};
use crate::http::extract::{Json as JsonBody, Query};
use crate::http::responses::{AdminAction, AdminRequired, BrokerDown, JsonBodyRejected};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The three routes, documented.
pub(super) fn routes() -> OpenApiRouter<OpsState> {
    OpenApiRouter::new()
        .routes(routes!(list_dead_letters))
        .routes(routes!(replay_dead_letters))
        .routes(routes!(discard_dead_letter))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PeekParams {
    /// How many messages to show, 0 to 500 (default 20).
    #[param(minimum = 0, maximum = 500)]
    limit: Option<usize>,
}

/// A dead-letter queue and its first messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterQueue {
    pub queue: String,
    pub depth: u32,
    pub messages: Vec<dead_letters::DeadLetter>,
}

/// How many dead letters a replay moved.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub replayed: u32,
}

/// The service's dead-letter queue: its depth and up to `limit` messages, left in place.
/// Admin route: `Authorization: Bearer $ADMIN_TOKEN`.
#[utoipa::path(get, path = "/admin/dlq", tag = "operations", params(PeekParams), responses(
    (status = 200, description = "The queue and its first messages", body = DeadLetterQueue),
    AdminRequired,
    (status = 422, description = "A bad parameter", body = ValidationErrorBody),
    BrokerDown),
    security(("admin_token" = [])))]
async fn list_dead_letters(
    _admin: Admin,
    State(state): State<OpsState>,
    Query(params): Query<PeekParams>,
) -> Result<Json<DeadLetterQueue>, ApiError> {
    let limit = params.limit.unwrap_or(20);
    if limit > 500 {
        return Err(ApiError::invalid(
            vec!["query".into(), "limit".into()],
            "must be from 0 to 500",
        ));
    }
    let link = state
        .broker
        .current()
        .ok_or_else(|| ApiError::Unavailable("RabbitMQ is not connected".into()))?;
    let own = state.broker.own_queue();
    let broken = |error: lapin::Error| ApiError::Unavailable(format!("RabbitMQ: {error}"));
    let depth = dead_letters::depth(&link, &own.dead_letters)
        .await
        .map_err(broken)?;
    let messages = dead_letters::peek(&link, own, limit)
        .await
        .map_err(broken)?;
    Ok(Json(DeadLetterQueue {
        queue: own.dead_letters.clone(),
        depth,
        messages,
    }))
}

/// Moves every dead letter back to the service's queue for another try. Admin route:
/// `Authorization: Bearer $ADMIN_TOKEN`, and `Content-Type: application/json` or an
/// `X-Requested-By` header (a cross-site form has neither).
#[utoipa::path(post, path = "/admin/dlq/replay", tag = "operations", responses(
    (status = 200, description = "How many were moved", body = Replayed),
    AdminAction,
    BrokerDown),
    security(("admin_token" = [])))]
async fn replay_dead_letters(
    _admin: Admin,
    State(state): State<OpsState>,
) -> Result<Json<Replayed>, ApiError> {
    let link = state
        .broker
        .current()
        .ok_or_else(|| ApiError::Unavailable("RabbitMQ is not connected".into()))?;
    let replayed = dead_letters::replay(&link, state.broker.own_queue())
        .await
        .map_err(|error| ApiError::Unavailable(format!("RabbitMQ: {error}")))?;
    Ok(Json(Replayed { replayed }))
}

/// Which dead letter to discard.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Discard {
    /// The `message_id` of the dead letters to remove (as `GET /admin/dlq` shows it).
    #[schema(min_length = 1, max_length = 255)]
    pub message_id: String,
}

/// How many dead letters a discard removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Discarded {
    pub discarded: u32,
}

/// Removes the dead letters with one `message_id` for good, leaving the others in place.
/// Admin route: `Authorization: Bearer $ADMIN_TOKEN` and a JSON body.
#[utoipa::path(post, path = "/admin/dlq/discard", tag = "operations", request_body = Discard,
    responses(
    (status = 200, description = "How many were removed", body = Discarded),
    AdminRequired,
    JsonBodyRejected,
    (status = 422, description = "A bad message id", body = ValidationErrorBody),
    BrokerDown),
    security(("admin_token" = [])))]
async fn discard_dead_letter(
    _admin: Admin,
    State(state): State<OpsState>,
    JsonBody(body): JsonBody<Discard>,
) -> Result<Json<Discarded>, ApiError> {
    if body.message_id.is_empty() || body.message_id.len() > 255 {
        return Err(ApiError::invalid(
            vec!["body".into(), "message_id".into()],
            "must be 1 to 255 characters",
        ));
    }
    let link = state
        .broker
        .current()
        .ok_or_else(|| ApiError::Unavailable("RabbitMQ is not connected".into()))?;
    let discarded = dead_letters::discard(&link, state.broker.own_queue(), &body.message_id)
        .await
        .map_err(|error| ApiError::Unavailable(format!("RabbitMQ: {error}")))?;
    Ok(Json(Discarded { discarded }))
}
