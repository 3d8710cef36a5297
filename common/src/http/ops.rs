//! Operational endpoints every service serves: `/health`, `/ready`, `/metrics`, and the
//! dead-letter admin (`GET /admin/dlq`, `POST /admin/dlq/replay`). Also the middleware that
//! counts and times HTTP requests.

use super::error::ApiError;
use super::extract::Query;
use crate::amqp::broker::Broker;
use crate::amqp::dead_letters;
use crate::store::Store;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};

/// What the operational endpoints look at.
#[derive(Clone)]
pub struct OpsState {
    pub store: Store,
    pub broker: Broker,
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/admin/dlq", get(list_dead_letters))
        .route("/admin/dlq/replay", post(replay_dead_letters))
        .with_state(state)
}

/// 200 while the process runs.
async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the database answers and the broker is connected, else 503 with the reason.
async fn ready(State(state): State<OpsState>) -> Response {
    let database = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(state.store.pool()),
    )
    .await;
    let database = match database {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("database: {error}")),
        Err(_) => Err("database: no answer within 2 s".to_owned()),
    };
    let broker = match state.broker.current() {
        Some(_) => Ok(()),
        None => Err("RabbitMQ: not connected".to_owned()),
    };
    let reasons: Vec<String> = [database, broker]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if reasons.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "detail": reasons.join("; ")})),
        )
            .into_response()
    }
}

/// Prometheus text format.
async fn metrics(State(state): State<OpsState>) -> Response {
    if let Ok(backlog) = crate::outbox::backlog(&state.store).await {
        metrics::gauge!("outbox_backlog").set(backlog as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct PeekParams {
    limit: Option<usize>,
}

/// The service's dead-letter queue: its depth and up to `limit` (default 20) messages,
/// left in place.
async fn list_dead_letters(
    State(state): State<OpsState>,
    Query(params): Query<PeekParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = params.limit.unwrap_or(20).min(500);
    let link = state
        .broker
        .current()
        .ok_or_else(|| ApiError::Unavailable("RabbitMQ is not connected".into()))?;
    let queue = state
        .broker
        .topology()
        .dead_letter_queue(state.broker.service());
    let broken = |error: lapin::Error| ApiError::Unavailable(format!("RabbitMQ: {error}"));
    let depth = dead_letters::depth(&state.broker, &link)
        .await
        .map_err(broken)?;
    let messages = dead_letters::peek(&state.broker, &link, limit)
        .await
        .map_err(broken)?;
    Ok(Json(
        json!({"queue": queue, "depth": depth, "messages": messages}),
    ))
}

/// Moves every dead letter back to the service's queue for another try.
async fn replay_dead_letters(
    State(state): State<OpsState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let link = state
        .broker
        .current()
        .ok_or_else(|| ApiError::Unavailable("RabbitMQ is not connected".into()))?;
    let replayed = dead_letters::replay(&state.broker, &link)
        .await
        .map_err(|error| ApiError::Unavailable(format!("RabbitMQ: {error}")))?;
    Ok(Json(json!({"replayed": replayed})))
}

/// Counts and times every request by its route template (not the raw path, which would
/// make one series per order id).
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "path" => path.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "path" => path)
        .record(started.elapsed().as_secs_f64());
    response
}
