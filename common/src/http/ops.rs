//! Operational endpoints every service serves: `/health`, `/ready`, `/metrics`, and the
//! dead-letter admin (`GET /admin/dlq`, `POST /admin/dlq/replay`, `POST /admin/dlq/discard`,
//! which need the admin token: see [`super::admin`]). Also the middleware that counts and times HTTP requests.

use super::admin::Admin;
use super::error::{ApiError, ErrorBody, ValidationErrorBody};
use super::extract::{Json as JsonBody, Query};
use super::readiness::{self, BrokerState};
use crate::amqp::broker::Broker;
use crate::amqp::dead_letters;
use crate::store::Store;
use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the operational endpoints look at.
#[derive(Clone)]
pub struct OpsState {
    pub store: Store,
    pub broker: Broker,
    /// The service's own fields for a ready `/ready` body, if it has any.
    pub ready_report: Option<ReadyReport>,
    /// With authentication on, `/ready` waits for the first set of signing keys.
    pub auth: Option<crate::auth::Authenticator>,
}

/// Fields a service adds to the body of a ready `/ready` — state of its own that is worth
/// seeing but does not make it unready (e.g. `"provider": "open"` while a circuit
/// breaker holds calls to an outside provider back).
pub type ReadyReport = Arc<dyn Fn() -> BTreeMap<String, String> + Send + Sync>;

/// The operational endpoints, documented.
pub fn router(state: OpsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(list_dead_letters))
        .routes(routes!(replay_dead_letters))
        .routes(routes!(discard_dead_letter))
        .with_state(state)
}

/// `/health` and a ready `/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: String,
    /// `/ready` only: the RabbitMQ node (`host:port`) the service is connected to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rabbitmq_node: Option<String>,
    /// `/ready` only: `connected`, or `blocked` while a RabbitMQ resource alarm holds
    /// publishing back (the service stays ready: events wait in its outbox).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerState>,
    /// `/ready` only, while blocked: RabbitMQ's reason and for how long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_detail: Option<String>,
    /// `/ready` only: the service's own fields, e.g. a circuit breaker's state
    /// (`"provider": "open"`).
    #[serde(flatten)]
    pub details: BTreeMap<String, String>,
}

/// A `/ready` that is not.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotReady {
    /// `not ready`.
    pub status: String,
    /// What does not work.
    pub detail: String,
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process runs", body = Status)))]
async fn health() -> Json<Status> {
    Json(Status {
        status: "ok".into(),
        rabbitmq_node: None,
        broker: None,
        broker_detail: None,
        details: BTreeMap::new(),
    })
}

/// 200 when the database answers, RabbitMQ is connected (blocked by a resource alarm
/// counts: `"broker": "blocked"`), the outbox gets events out and (with authentication on)
/// the signing keys are loaded, else 503 with the reason.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Database and broker work", body = Status),
    (status = 503, description = "Something does not work", body = NotReady)))]
async fn ready(State(state): State<OpsState>) -> Response {
    match readiness::check(&state).await {
        Ok(broker) => Json(Status {
            status: "ready".into(),
            rabbitmq_node: Some(broker.node),
            broker: Some(broker.state),
            broker_detail: broker.detail,
            details: state
                .ready_report
                .as_ref()
                .map(|report| report())
                .unwrap_or_default(),
        })
        .into_response(),
        Err(reasons) => {
            let body = NotReady {
                status: "not ready".into(),
                detail: reasons.join("; "),
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// Prometheus text format (metric names: see the README).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<OpsState>) -> Response {
    if let Ok(backlog) = crate::outbox::backlog(state.store.pool()).await {
        metrics::gauge!("outbox_backlog").set(backlog as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
        .into_response()
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
    (status = 401, description = "No or a wrong admin token", body = ErrorBody),
    (status = 403, description = "Admin routes are off (ADMIN_TOKEN unset)", body = ErrorBody),
    (status = 422, description = "A bad parameter", body = ValidationErrorBody),
    (status = 503, description = "RabbitMQ is not connected", body = ErrorBody)),
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
    (status = 401, description = "No or a wrong admin token", body = ErrorBody),
    (status = 403, description = "Admin routes are off (ADMIN_TOKEN unset)", body = ErrorBody),
    (status = 415, description = "Neither a JSON content type nor X-Requested-By", body = ErrorBody),
    (status = 503, description = "RabbitMQ is not connected", body = ErrorBody)),
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
    (status = 400, description = "Not JSON", body = ErrorBody),
    (status = 401, description = "No or a wrong admin token", body = ErrorBody),
    (status = 403, description = "Admin routes are off (ADMIN_TOKEN unset)", body = ErrorBody),
    (status = 415, description = "Not application/json", body = ErrorBody),
    (status = 422, description = "A bad message id", body = ValidationErrorBody),
    (status = 503, description = "RabbitMQ is not connected", body = ErrorBody)),
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

/// Counts and times every request by its route template (not the raw path, which would
/// make one series per order id) and its method, `OTHER` for a made-up one (which would
/// otherwise add series forever).
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "path" => path.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "path" => path)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The standard methods by name; anything else is `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_s_own_fields_sit_beside_the_status_in_a_ready_body() {
        let report: ReadyReport =
            Arc::new(|| BTreeMap::from([("provider".to_owned(), "open".to_owned())]));
        let body = Status {
            status: "ready".into(),
            rabbitmq_node: Some("127.0.0.1:5672".into()),
            broker: Some(BrokerState::Blocked),
            broker_detail: Some("low on memory, for 3 s".into()),
            details: report(),
        };
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            serde_json::json!({"status": "ready", "rabbitmq_node": "127.0.0.1:5672",
                "broker": "blocked", "broker_detail": "low on memory, for 3 s", "provider": "open"})
        );
    }
}
