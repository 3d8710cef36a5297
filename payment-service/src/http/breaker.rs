//! `GET /breaker`: the payment provider as the circuit breakers of every live replica see
//! it, read from the payment database ([`crate::breaker::replicas`]), so whichever replica
//! answers speaks for all of them. The dashboard shows it. It lives beside `/ready` rather
//! than under `/api/`: it says nothing about any customer. The states are public; what
//! tells an attacker about the hosts and the provider — process ids, the provider's own
//! words — only an admin caller (`ADMIN_TOKEN`, §8) sees.

use super::AppState;
use crate::breaker::State as BreakerState;
use crate::breaker::replicas::{self, ReplicaRow};
use axum::Json;
use axum::extract::State;
use common::http::responses::DatabaseDown;
use common::http::{Admin, ApiError};
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
    pub state: BreakerState,
    /// When it entered this state.
    pub since: Timestamp,
    /// Its last heartbeat; a process silent for 10 s is left out.
    pub seen_at: Timestamp,
    /// Only for an admin caller: where it runs and why it opened.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub detail: Option<ReplicaDetail>,
}

/// What an operator needs to act on a breaker, and nobody else should read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplicaDetail {
    pub pid: i32,
    /// The unknown outcome that opened it (the provider's answer), while it is not closed.
    pub failure: Option<String>,
}

impl ReplicaBreaker {
    fn from_row(row: ReplicaRow, with_detail: bool) -> Self {
        Self {
            replica_id: row.replica_id,
            state: row.state,
            since: row.since.into(),
            seen_at: row.seen_at.into(),
            detail: with_detail.then_some(ReplicaDetail {
                pid: row.pid,
                failure: row.failure,
            }),
        }
    }
}

/// The payment provider's circuit breakers (CONTRACT §13): `unavailable` while any live
/// replica's is open. Each replica's `pid` and `failure` (the provider's answer that opened
/// it) only with `Authorization: Bearer $ADMIN_TOKEN`; without it the same states, no detail.
#[utoipa::path(get, path = "/breaker", tag = "operations", responses(
    (status = 200, description = "Every live replica's breaker", body = Breakers),
    DatabaseDown),
    security((), ("admin_token" = [])))]
async fn get_breakers(
    admin: Result<Admin, ApiError>,
    State(state): State<AppState>,
) -> Result<Json<Breakers>, ApiError> {
    let with_detail = admin.is_ok();
    let rows = replicas::live(state.store.pool()).await?;
    Ok(Json(Breakers {
        provider: Availability::of(rows.iter().map(|row| row.state)),
        replicas: rows
            .into_iter()
            .map(|row| ReplicaBreaker::from_row(row, with_detail))
            .collect(),
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
