//! The HTTP application a host serves: the service's routes, the operational ones, the
//! generated OpenAPI document with `/docs`, and the layers every request passes through.

use crate::auth::{Authentication, Authenticator};
use crate::config::CommonConfig;
use crate::http::{AdminAccess, ApiError, MAX_BODY_BYTES, ops, responses, timeout};
use crate::service::Descriptor;
use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use std::time::Duration;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;
// Errors are logged where they are mapped to a status (`ApiError`), not again here.
use tower_http::trace::TraceLayer;

/// How long one HTTP request may take before it gets 503 (unless its handler committed to
/// finishing it: see [`timeout::Budget`]).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `api` (the service's own documented routes) with the operational ones merged in,
/// `/openapi.json` generated from both, and the browsable `/docs`.
pub(super) fn router(
    api: OpenApiRouter,
    ops: ops::OpsState,
    config: &CommonConfig,
    auth: Option<Authenticator>,
) -> Router {
    let (routes, openapi) = api.merge(ops::router(ops)).split_for_parts();
    routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", describe(openapi, &config.service)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(ops::track_requests))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(Extension(AdminAccess(config.admin_token.clone())))
        .layer(Extension(Authentication(auth)))
        .layer(axum::middleware::from_fn_with_state(
            REQUEST_TIMEOUT,
            timeout::limit,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(crate::trace::http_server_span)
                .on_failure(()),
        )
}

/// Unknown paths answer in the same JSON shape as every other error.
async fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("Method Not Allowed".into())
}

/// Titles the generated OpenAPI document with the service's name and description.
fn describe(mut openapi: OpenApi, service: &Descriptor) -> OpenApi {
    openapi.info.title = service.name.to_owned();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi.info.description = Some(service.description.to_owned());
    // The admin routes' `security(("admin_token" = []))` refers to this, the API's
    // `security(("bearer" = []))` to the next.
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A JWT from the OpenID provider (AUTH_ISSUER), for audience AUTH_AUDIENCE; \
                     needed only when authentication is on (AUTH_JWKS_URL or AUTH_PUBLIC_KEY). \
                     Its `sub` is the customer; scope `orders:admin` acts for every customer.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "admin_token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The service's ADMIN_TOKEN"))
                .build(),
        ),
    );
    responses::document_tagged_reads(&mut openapi);
    // utoipa fills these from its own crate metadata otherwise.
    openapi.info.license = None;
    openapi.info.contact = None;
    openapi
}
