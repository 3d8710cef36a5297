//! `GET /breaker`: the payment provider as the circuit breakers of every live replica see
//! it, read from the payment database ([`crate::breaker::replicas`]), so whichever replica
//! answers speaks for all of them. The dashboard shows it. It lives beside `/ready` rather
//! than under `/api/`: it says nothing about any customer.

use super::AppState;
use crate::breaker::State as BreakerState;
use crate::breaker::replicas::{self, ReplicaRow};
use axum::Json;
use axum::extract::State;
use common::http::{ApiError, ErrorBody};
use common::timestamp::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_breakers))
}

/// The provider, as the replicas' breakers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Every live replica's breaker is closed.
    Available,
    /// None is open, but one is half-open: its next call is a probe.
    Recovering,
    /// At least one live replica's breaker is open: its payments wait.
    Unavailable,
    /// No replica is alive to tell.
    Unknown,
}

impl Availability {
    /// The worst of the replicas' states.
    pub fn of(states: impl IntoIterator<Item = BreakerState>) -> Self {
        states
            .into_iter()
            .map(|state| match state {
                BreakerState::Closed => Self::Available,
                BreakerState::HalfOpen => Self::Recovering,
                BreakerState::Open => Self::Unavailable,
            })
            .max_by_key(|availability| *availability as u8)
            .unwrap_or(Self::Unknown)
    }
}

/// Every live replica's breaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct Breakers {
    pub provider: Availability,
    pub replicas: Vec<ReplicaBreaker>,
}

/// One live payment-service process's breaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplicaBreaker {
    /// Chosen by the process at start.
    pub replica_id: Uuid,
    pub pid: i32,
    pub state: BreakerState,
    /// When it entered this state.
    pub since: Timestamp,
    /// The unknown outcome that opened it, while it is not closed.
    pub failure: Option<String>,
    /// Its last heartbeat; a process silent for 10 s is left out.
    pub seen_at: Timestamp,
}

impl From<ReplicaRow> for ReplicaBreaker {
    fn from(row: ReplicaRow) -> Self {
        Self {
            replica_id: row.replica_id,
            pid: row.pid,
            state: row.state,
            since: row.since.into(),
            failure: row.failure,
            seen_at: row.seen_at.into(),
        }
    }
}

/// The payment provider's circuit breakers (CONTRACT §13): `unavailable` while any live
/// replica's is open.
#[utoipa::path(get, path = "/breaker", tag = "operations", responses(
    (status = 200, description = "Every live replica's breaker", body = Breakers),
    (status = 503, description = "The database is unavailable", body = ErrorBody)))]
async fn get_breakers(State(state): State<AppState>) -> Result<Json<Breakers>, ApiError> {
    let rows = replicas::live(state.store.pool()).await?;
    Ok(Json(Breakers {
        provider: Availability::of(rows.iter().map(|row| row.state)),
        replicas: rows.into_iter().map(ReplicaBreaker::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_open_breaker_makes_the_provider_unavailable() {
        use BreakerState::*;
        assert_eq!(Availability::of([]), Availability::Unknown);
        assert_eq!(Availability::of([Closed, Closed]), Availability::Available);
        assert_eq!(
            Availability::of([Closed, HalfOpen]),
            Availability::Recovering
        );
        assert_eq!(
            Availability::of([Closed, Open, HalfOpen]),
            Availability::Unavailable
        );
    }
}
