//! `loadgen provider`: a stand-in card processor for benchmarks of the HTTP payment path
//! (CONTRACT §7, issue 35). It answers `POST /v1/charges` and `POST /v1/refunds` under an
//! `Idempotency-Key` after a fixed latency, declines new charges at a given rate, gives
//! every repeat of a key its stored answer and refuses a key reused with another body
//! (422). It keeps everything in memory and does no work beyond a map lookup per request,
//! so what a benchmark measures is payment-service, not the provider.
//!
//! Also `GET /health` (for scripts that wait for it) and `GET /stats` (what it did, as
//! JSON: charges, declines, refunds, repeats, refused).
//!
//! # Layout
//! - this module: the command's settings, the routes, serving until stopped;
//! - `ledger`: the stored answers and the charges a refund may give back.

mod ledger;

pub use ledger::{ChargeBody, Counts, Ledger, RefundBody};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `loadgen provider …`
#[derive(Debug, Clone, clap::Args)]
pub struct ProviderArgs {
    /// Milliseconds every answer waits before it goes out (a real processor's round trip).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// The chance that a new charge is declined (402): 0 never, 1 always.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub decline_rate: f64,
    /// The port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
}

fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text} is not a rate between 0 and 1")),
    }
}

/// The provider's state, shared by its handlers.
struct Provider {
    latency: Duration,
    /// Held only while a request is looked up and stored, never across the latency.
    ledger: Mutex<Ledger>,
}

/// The routes of a provider with these settings.
pub fn router(latency: Duration, decline_rate: f64) -> Router {
    let provider = Arc::new(Provider {
        latency,
        ledger: Mutex::new(Ledger::new(decline_rate)),
    });
    Router::new()
        .route("/v1/charges", post(charge))
        .route("/v1/refunds", post(refund))
        .route("/health", get(|| async { "ok" }))
        .route("/stats", get(stats))
        .with_state(provider)
}

/// Serves until ctrl-c or SIGTERM; prints the address it listens on first.
pub async fn run(args: &ProviderArgs) -> Result<bool, String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .map_err(|error| format!("cannot listen on {}:{}: {error}", args.host, args.port))?;
    let addr = listener.local_addr().map_err(|error| error.to_string())?;
    println!(
        "loadgen provider listening on http://{addr} (latency {} ms, decline rate {})",
        args.latency_ms, args.decline_rate
    );
    let app = router(Duration::from_millis(args.latency_ms), args.decline_rate);
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await
        .map_err(|error| error.to_string())?;
    Ok(true)
}

/// Resolves on ctrl-c or SIGTERM (what bench scripts send).
async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be watched");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn charge(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (key, body) = match parse::<ChargeBody>(&headers, &body) {
        Ok(request) => request,
        Err(why) => return bad_request(why),
    };
    let answer = provider.ledger().charge(&key, body);
    provider.answer_after_latency(answer).await
}

async fn refund(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (key, body) = match parse::<RefundBody>(&headers, &body) {
        Ok(request) => request,
        Err(why) => return bad_request(why),
    };
    let answer = provider.ledger().refund(&key, body);
    provider.answer_after_latency(answer).await
}

async fn stats(State(provider): State<Arc<Provider>>) -> Json<Counts> {
    Json(provider.ledger().counts())
}

impl Provider {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer was decided (and stored) at once; it goes out after the latency, as a
    /// processor's would after its own round trip.
    async fn answer_after_latency(&self, (status, body): ledger::Answer) -> Response {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(body)).into_response()
    }
}

/// The request's key and body, or why it is a bad request: one without a key, or whose
/// body is not the JSON it should be, is not a use of any key.
fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<(String, T), String> {
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .filter(|key| !key.is_empty())
        .ok_or("an Idempotency-Key header is required")?;
    let body: T = serde_json::from_slice(body).map_err(|error| format!("bad body: {error}"))?;
    Ok((key.to_owned(), body))
}

fn bad_request(why: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": why}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The routes served on a free local port; the base URL.
    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// One request's status and JSON body.
    async fn send(base: &str, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("the provider answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn charges_and_refunds_answer_as_contract_section_7_says() {
        let app = serve(router(Duration::ZERO, 0.0)).await;
        let body = json!({"order_id": "o1", "amount": 15000, "currency": "usd"});
        let (status, charged) = send(&app, "/v1/charges", Some("o1:1"), body.clone()).await;
        assert_eq!(status, 201, "{charged}");
        assert_eq!(charged["status"], "succeeded");
        assert_eq!(
            send(&app, "/v1/charges", Some("o1:1"), body).await,
            (201, charged.clone())
        );
        let other = json!({"order_id": "o1", "amount": 1, "currency": "usd"});
        assert_eq!(send(&app, "/v1/charges", Some("o1:1"), other).await.0, 422);

        let refund = json!({"charge_id": charged["id"], "amount": 15000});
        let (status, refunded) = send(&app, "/v1/refunds", Some("o1:refund"), refund.clone()).await;
        assert_eq!(status, 201, "{refunded}");
        assert!(refunded["id"].as_str().unwrap().starts_with("re_"));
        assert_eq!(
            send(&app, "/v1/refunds", Some("o1:refund"), refund).await,
            (201, refunded)
        );
    }

    #[tokio::test]
    async fn a_request_without_a_key_or_with_a_bad_body_is_a_400() {
        let app = serve(router(Duration::ZERO, 0.0)).await;
        let body = json!({"order_id": "o1", "amount": 100, "currency": "usd"});
        assert_eq!(send(&app, "/v1/charges", None, body).await.0, 400);
        let bad = json!({"order_id": "o1"});
        assert_eq!(send(&app, "/v1/charges", Some("o1:1"), bad).await.0, 400);
    }

    #[tokio::test]
    async fn every_answer_waits_for_the_latency() {
        let app = serve(router(Duration::from_millis(150), 1.0)).await;
        let body = json!({"order_id": "o1", "amount": 100, "currency": "usd"});
        let started = std::time::Instant::now();
        let (status, declined) = send(&app, "/v1/charges", Some("o1:1"), body).await;
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(status, 402, "{declined}");
        assert_eq!(declined["status"], "declined");
    }
}
