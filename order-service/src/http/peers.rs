//! Reads of the other services' HTTP APIs: the dashboard's stock and circuit breakers, the
//! saga view's reservation.
//!
//! The one deliberate read-side coupling between the services: these views only show what
//! the other services own, so they ask the owners rather than keep read models of their
//! own. The saga never waits on these calls — services act only on events — and when a
//! service does not answer, the view says so (the dashboard) or shows what it has (the
//! saga view).

use super::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use common::auth::Caller;
use contract::OrderId;
use contract::reads::ReservationView;
use std::time::Duration;

/// How long a view waits for another service.
const TIMEOUT: Duration = Duration::from_secs(1);

/// The caller's own `Authorization`, to pass on when authentication is on: the other
/// services read the same tokens.
pub fn forwarded_token(caller: &Caller, headers: &HeaderMap) -> Option<HeaderValue> {
    match caller {
        Caller::Open => None,
        _ => headers.get(header::AUTHORIZATION).cloned(),
    }
}

/// `GET {base}{path}` as JSON, briefly: `None` when the service has no such thing (404),
/// an error naming the service when it does not answer or answers oddly.
pub async fn read_from<T: serde::de::DeserializeOwned>(
    state: &AppState,
    base: &reqwest::Url,
    path: &str,
    service: &str,
    authorization: Option<&HeaderValue>,
) -> Result<Option<T>, String> {
    let url = base.join(path).expect("a relative path joins");
    let mut request = state.http.get(url).timeout(TIMEOUT);
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value.as_bytes());
    }
    let response = request
        .send()
        .await
        .map_err(|error| format!("{service}-service unreachable: {error}"))?;
    if response.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let response = response
        .error_for_status()
        .map_err(|error| format!("{service}-service unreachable: {error}"))?;
    response
        .json()
        .await
        .map(Some)
        .map_err(|error| format!("{service}-service answered oddly: {error}"))
}

/// inventory-service's reservation of `order_id`; `None` while it has not seen the order.
pub async fn reservation(
    state: &AppState,
    order_id: OrderId,
    authorization: Option<&HeaderValue>,
) -> Result<Option<ReservationView>, String> {
    let path = format!("api/inventory/reservations/{order_id}");
    read_from(
        state,
        &state.inventory_url,
        &path,
        "inventory",
        authorization,
    )
    .await
}
