//! `GET /asyncapi.json`: the AsyncAPI 3.0 document of every message of the saga, for the
//! exchange this stack runs on (`contract::asyncapi`), generated once at start.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

/// Served beside `/openapi.json`, undocumented in it like the docs themselves.
pub fn router<S: Clone + Send + Sync + 'static>(exchange: &str) -> OpenApiRouter<S> {
    let document = contract::asyncapi::document(exchange);
    let body: Arc<[u8]> = serde_json::to_vec(&document)
        .expect("the document serializes")
        .into();
    OpenApiRouter::new().route(
        "/asyncapi.json",
        get(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, "application/json")], body.to_vec()).into_response() }
        }),
    )
}
