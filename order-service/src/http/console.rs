//! The failed-message console's backend (issue 13, CONTRACT §8): every service's
//! dead-letter queue, read and acted on from order-service — the dashboard is served here
//! and cannot call the other services' ports cross-origin. order-service reaches each
//! queue over its own broker link, since every queue name derives from the exchange.
//! Every route is an admin route, and every action is recorded in the operator log
//! ([`crate::operator_log`]). The groups ([`super::groups`]) and the edit
//! ([`super::edit`]) of §16 share its [`Act`] and the helpers of [`super::letters`].

use super::AppState;
use super::letters::{broken, link, no_dead_letter, queue_of, record, service};
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use common::amqp::dead_letters::{self, DeadLetter};
use common::http::ops::{Discarded, Replayed};
use common::http::responses::{AdminAction, AdminRequired, BrokerDown};
use common::http::{
    Actor, Admin, ApiError, ErrorBody, IfNoneMatch, Path, Query, ValidationErrorBody, tagged_json,
};
use contract::Service;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(replay_all))
        .routes(routes!(replay_one))
        .routes(routes!(discard_one))
}

/// One walk of the dead-letter queues at a time in this process: a peek holds the messages
/// it reads until it is done, so a replay or discard running meanwhile would not see them
/// (and the page polls every second).
pub(super) static WALKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many messages per queue to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Messages per queue, 0 to 500 (default 50).
    #[param(minimum = 0, maximum = 500)]
    limit: Option<usize>,
}

/// Every service's dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    pub services: Vec<ServiceDeadLetters>,
}

/// One service's dead-letter queue and its first messages, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceDeadLetters {
    /// `order`, `inventory`, `payment` or `notification`: the `{service}` of the routes.
    pub service: String,
    pub queue: String,
    pub depth: u32,
    pub messages: Vec<DeadLetter>,
}

/// A service's dead-letter queue.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ServicePath {
    /// `order`, `inventory`, `payment` or `notification` (or the full `…-service` name).
    service: String,
}

/// One dead letter of a service.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// `order`, `inventory`, `payment` or `notification` (or the full `…-service` name).
    pub(super) service: String,
    /// The dead letter's `message_id`, as `GET /admin/dead-letters` shows it.
    pub(super) message_id: String,
}

/// Every service's dead-letter queue: its depth and up to `limit` messages (error,
/// attempts, first and last failure, routing key, event type, id, body), left in place.
/// Tagged (CONTRACT §14): a poll whose `If-None-Match` names the current tag gets 304.
/// Admin route: `Authorization: Bearer $ADMIN_TOKEN` (or an `orders:admin` JWT).
#[utoipa::path(get, path = "/admin/dead-letters", tag = "dead letters", params(ListParams,
    IfNoneMatch),
    responses(
    (status = 200, description = "Every service's dead letters", body = DeadLetters),
    AdminRequired,
    (status = 422, description = "A bad parameter", body = ValidationErrorBody),
    BrokerDown),
    security(("admin_token" = [])))]
async fn list(
    _admin: Admin,
    condition: IfNoneMatch,
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if limit > 500 {
        return Err(ApiError::invalid(
            vec!["query".into(), "limit".into()],
            "must be from 0 to 500",
        ));
    }
    let link = link(&state)?;
    let _walking = WALKING.lock().await;
    let mut services = Vec::new();
    for service in Service::ALL {
        let queue = queue_of(&state, service);
        let depth = dead_letters::depth(&link, &queue.dead_letters)
            .await
            .map_err(broken)?;
        let messages = dead_letters::peek(&link, &queue, limit)
            .await
            .map_err(broken)?;
        services.push(ServiceDeadLetters {
            service: service.short_name().to_owned(),
            queue: queue.dead_letters,
            depth,
            messages,
        });
    }
    Ok(tagged_json(&condition, &DeadLetters { services }))
}

/// Moves every dead letter of `{service}` back to its queue for another try. Admin route:
/// `Authorization: Bearer $ADMIN_TOKEN`, and `Content-Type: application/json` or an
/// `X-Requested-By` header (a cross-site form has neither).
#[utoipa::path(post, path = "/admin/dead-letters/{service}/replay", tag = "dead letters",
    params(ServicePath), responses(
    (status = 200, description = "How many were moved", body = Replayed),
    (status = 404, description = "No such service", body = ErrorBody),
    AdminAction,
    BrokerDown),
    security(("admin_token" = [])))]
async fn replay_all(
    Admin(actor): Admin,
    State(state): State<AppState>,
    Path(path): Path<ServicePath>,
) -> Result<Json<Replayed>, ApiError> {
    let service = service(&path.service)?;
    let link = link(&state)?;
    let _walking = WALKING.lock().await;
    let replayed = dead_letters::replay(&link, &queue_of(&state, service))
        .await
        .map_err(broken)?;
    let target = service.short_name();
    let result = json!({ "replayed": replayed });
    record(&state, &actor, "replay-all", target, json!({}), result).await?;
    Ok(Json(Replayed { replayed }))
}

/// Sends the dead letter `{message_id}` of `{service}` back to its queue, with its routing
/// key and headers, leaving the others in place and in order. Admin route, as the replay
/// of all.
#[utoipa::path(post, path = "/admin/dead-letters/{service}/{message_id}/replay",
    tag = "dead letters", params(MessagePath), responses(
    (status = 200, description = "How many were moved (more than one if the id repeats)", body = Replayed),
    (status = 404, description = "No such service, or no dead letter with that id", body = ErrorBody),
    AdminAction,
    BrokerDown),
    security(("admin_token" = [])))]
async fn replay_one(
    Admin(actor): Admin,
    State(state): State<AppState>,
    Path(path): Path<MessagePath>,
) -> Result<Json<Replayed>, ApiError> {
    let replayed = act_on_one(&state, &actor, &path, Act::Replay).await?;
    Ok(Json(Replayed { replayed }))
}

/// Removes the dead letter `{message_id}` of `{service}` for good, leaving the others in
/// place and in order. Admin route, as the replays.
#[utoipa::path(post, path = "/admin/dead-letters/{service}/{message_id}/discard",
    tag = "dead letters", params(MessagePath), responses(
    (status = 200, description = "How many were removed (more than one if the id repeats)", body = Discarded),
    (status = 404, description = "No such service, or no dead letter with that id", body = ErrorBody),
    AdminAction,
    BrokerDown),
    security(("admin_token" = [])))]
async fn discard_one(
    Admin(actor): Admin,
    State(state): State<AppState>,
    Path(path): Path<MessagePath>,
) -> Result<Json<Discarded>, ApiError> {
    let discarded = act_on_one(&state, &actor, &path, Act::Discard).await?;
    Ok(Json(Discarded { discarded }))
}

/// What an operator does with dead letters: one, or a group ([`super::groups`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum Act {
    Replay,
    Discard,
}

impl Act {
    /// The operator log's `action` (a group's adds `-group`).
    pub(super) fn action(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Discard => "discard",
        }
    }

    /// The key of the count in the operator log's `result`.
    pub(super) fn counted(self) -> &'static str {
        match self {
            Self::Replay => "replayed",
            Self::Discard => "discarded",
        }
    }
}

/// Replays or discards the dead letter `path` names (404 when there is none) and records
/// it; how many messages it was (more than one if the id repeats).
async fn act_on_one(
    state: &AppState,
    actor: &Actor,
    path: &MessagePath,
    act: Act,
) -> Result<u32, ApiError> {
    let service = service(&path.service)?;
    let link = link(state)?;
    let _walking = WALKING.lock().await;
    let queue = queue_of(state, service);
    let count = match act {
        Act::Replay => dead_letters::replay_one(&link, &queue, &path.message_id).await,
        Act::Discard => dead_letters::discard(&link, &queue, &path.message_id).await,
    }
    .map_err(broken)?;
    found(count, service, &path.message_id)?;
    let target = format!("{}/{}", service.short_name(), path.message_id);
    let counted = act.counted();
    let result = json!({ counted: count });
    record(state, actor, act.action(), &target, json!({}), result).await?;
    Ok(count)
}

fn found(count: u32, service: Service, message_id: &str) -> Result<(), ApiError> {
    if count == 0 {
        return Err(no_dead_letter(service, message_id));
    }
    Ok(())
}
