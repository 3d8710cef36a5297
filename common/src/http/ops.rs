//! Operational endpoints every service serves: `/health`, `/ready`, `/metrics`, and the
//! dead-letter admin (`dlq`: `GET /admin/dlq`, `POST /admin/dlq/replay`,
//! `POST /admin/dlq/discard`, which need the admin token: see [`super::admin`]). Also the
//! middleware that counts and times HTTP requests (`track`).

mod dlq;
mod track;

pub use dlq::{DeadLetterQueue, Discard, Discarded, Replayed};
pub use track::track_requests;

use super::readiness::{self, BrokerState};
use crate::amqp::broker::Broker;
use crate::store::Store;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;
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
        .merge(dlq::routes())
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
    match readiness::check(&state.store, &state.broker, state.auth.as_ref()).await {
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
