//! The time limit of every request, answered like every other error (503 `{"detail": …}`),
//! and the [`Budget`] that lets a handler about to do something irreversible say so.
//!
//! tower-http's `TimeoutLayer` drops the handler when time is up, whatever it is doing. A
//! POST whose transaction is already committing would then answer 503 and still create its
//! order. Here a handler first calls [`Budget::commit`]: from then on the limit no longer
//! cuts it short (its own work is bounded instead); a request the limit gave up on is
//! refused by `commit`, so it is never written afterwards.

use super::error::ApiError;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const OPEN: u8 = 0;
const COMMITTED: u8 = 1;
const GAVE_UP: u8 = 2;

/// One request's time budget, shared by the time limit and the handler.
#[derive(Clone, Debug)]
pub struct Budget {
    state: Arc<AtomicU8>,
    deadline: Instant,
}

impl Budget {
    pub fn new(limit: Duration) -> Self {
        Self {
            state: Arc::new(AtomicU8::new(OPEN)),
            deadline: Instant::now() + limit,
        }
    }

    /// When the time limit answers 503 unless the handler has committed.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Promises to see the request through: the limit will wait for the handler's answer.
    /// `false` when the limit has already answered 503, so the work must not be done.
    pub fn commit(&self) -> bool {
        match self
            .state
            .compare_exchange(OPEN, COMMITTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == COMMITTED,
        }
    }

    /// Whether the limit gave up on the request (its caller got 503 already).
    pub fn given_up(&self) -> bool {
        self.state.load(Ordering::Acquire) == GAVE_UP
    }

    /// The limit's side of [`Budget::commit`]: `true` if it may answer 503 now.
    fn give_up(&self) -> bool {
        self.state
            .compare_exchange(OPEN, GAVE_UP, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// A handler's budget; outside the time limit (e.g. in a unit test) an hour.
impl<S: Send + Sync> FromRequestParts<S> for Budget {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Budget>()
            .cloned()
            .unwrap_or_else(|| Budget::new(Duration::from_secs(3600))))
    }
}

/// Middleware: answers 503 `{"detail": …}` to a request still running after `limit`,
/// unless its handler has committed (then waits for its answer).
pub async fn limit(State(limit): State<Duration>, mut request: Request, next: Next) -> Response {
    let budget = Budget::new(limit);
    request.extensions_mut().insert(budget.clone());
    let handler = next.run(request);
    tokio::pin!(handler);
    tokio::select! {
        response = &mut handler => return response,
        _ = tokio::time::sleep_until(budget.deadline()) => {}
    }
    if budget.give_up() {
        tracing::warn!(?limit, "request took too long; answered 503");
        return ApiError::Unavailable(format!(
            "the request did not finish within {} s; try again shortly",
            limit.as_secs()
        ))
        .into_response();
    }
    handler.await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    use std::sync::Mutex;
    use tower::ServiceExt;

    const LIMIT: Duration = Duration::from_millis(100);

    async fn call(app: Router) -> (StatusCode, Option<String>, Vec<u8>) {
        let app = app.layer(axum::middleware::from_fn_with_state(LIMIT, limit));
        let response = app
            .oneshot(axum::http::Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, retry_after, body.to_vec())
    }

    #[tokio::test]
    async fn a_request_over_the_limit_gets_503_with_a_detail() {
        let app = Router::new().route(
            "/",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
        let (status, retry_after, body) = call(app).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after.is_some());
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["detail"].is_string(), "{body}");
    }

    #[tokio::test]
    async fn a_committed_request_is_waited_for() {
        let app = Router::new().route(
            "/",
            get(|budget: Budget| async move {
                assert!(budget.commit());
                tokio::time::sleep(LIMIT * 3).await;
                "done"
            }),
        );
        let (status, _, body) = call(app).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"done");
    }

    #[tokio::test]
    async fn a_request_given_up_on_cannot_commit_any_more() {
        let seen: Arc<Mutex<Option<Budget>>> = Arc::default();
        let app = Router::new().route(
            "/",
            get({
                let seen = seen.clone();
                |budget: Budget| async move {
                    *seen.lock().unwrap() = Some(budget);
                    std::future::pending::<()>().await;
                }
            }),
        );
        let (status, _, _) = call(app).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let budget = seen.lock().unwrap().take().expect("the handler ran");
        assert!(budget.given_up());
        assert!(
            !budget.commit(),
            "work the caller was told failed must not be done"
        );
    }
}
