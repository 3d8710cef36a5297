//! One error type for every API, mapped to HTTP in one place. Bodies are `{"detail": …}`
//! as FastAPI writes them: a string, or for validation a list of `{loc, msg, type}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404 with this detail: for a resource the path names, build it with
    /// [`ApiError::not_found`].
    #[error("{0}")]
    NotFound(String),
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// No or a wrong admin token.
    #[error("{0}")]
    Unauthorized(String),
    /// Admin routes are off (no `ADMIN_TOKEN`), or a customer acting for another.
    #[error("{0}")]
    Forbidden(String),
    /// No, or no valid, bearer JWT where authentication is on (CONTRACT §12).
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("request body is larger than {} bytes", super::MAX_BODY_BYTES)]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    /// 503 with a `Retry-After` of this many whole seconds (at least one).
    #[error("{0}")]
    Busy(String, std::time::Duration),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A failure that is ours, not the client's: answered with a bare 500, logged with its
    /// cause chain. Build it with [`ApiError::internal`].
    #[error("internal error")]
    Internal(#[source] Cause),
}

/// What an [`ApiError::Internal`] keeps of its cause: the error itself (so the log can
/// follow its sources), or a sentence where no error value exists.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// One validation problem, located like FastAPI does: `["body", "items", 0, "quantity"]`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where: `body`, `query`, `path` or `header`, then field names and list indexes.
    pub loc: Vec<LocPart>,
    /// What is wrong, for a human.
    pub msg: String,
    /// `missing`, `type_error` or `value_error`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
}

/// One step of a [`FieldError`] location: a name or a list index.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocPart {
    Name(String),
    Index(usize),
}

impl From<&str> for LocPart {
    fn from(name: &str) -> Self {
        Self::Name(name.to_owned())
    }
}

impl From<String> for LocPart {
    fn from(name: String) -> Self {
        Self::Name(name)
    }
}

impl From<usize> for LocPart {
    fn from(index: usize) -> Self {
        Self::Index(index)
    }
}

/// The body of every error but validation: `{"detail": "Order not found"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

/// The body of a 422: every problem found, located.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    pub detail: Vec<FieldError>,
}

impl FieldError {
    pub fn new(loc: Vec<LocPart>, msg: impl Into<String>) -> Self {
        Self {
            loc,
            msg: msg.into(),
            kind: "value_error",
        }
    }
}

impl ApiError {
    /// The 404 of a resource the path names: `{"detail": "<What> not found"}` (`what` is
    /// `Order`, `Product`…). Services answer the same when the resource exists but the
    /// caller may not see it, so a caller cannot learn which ids exist.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// A 500 whose cause is kept for the log, never shown to the client.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn invalid(loc: Vec<LocPart>, msg: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(loc, msg)])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, detail) = match &self {
            Self::NotFound(what) => (StatusCode::NOT_FOUND, json!(what)),
            Self::Validation(errors) => (StatusCode::UNPROCESSABLE_ENTITY, json!(errors)),
            Self::BadRequest(why) => (StatusCode::BAD_REQUEST, json!(why)),
            Self::Conflict(why) => (StatusCode::CONFLICT, json!(why)),
            Self::Unauthorized(why) => (StatusCode::UNAUTHORIZED, json!(why)),
            Self::Forbidden(why) => (StatusCode::FORBIDDEN, json!(why)),
            Self::MethodNotAllowed(why) => (StatusCode::METHOD_NOT_ALLOWED, json!(why)),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, json!(self.to_string())),
            Self::UnsupportedMediaType(why) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!(why)),
            Self::Unavailable(why) | Self::Busy(why, _) => {
                (StatusCode::SERVICE_UNAVAILABLE, json!(why))
            }
            Self::Database(error) if crate::db::is_unreachable(error) => {
                tracing::warn!(%error, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!("the database is unavailable; try again shortly"),
                )
            }
            Self::Database(error) => {
                tracing::error!(%error, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, json!("internal error"))
            }
            Self::Internal(cause) => {
                tracing::error!(error = %Causes(cause.as_ref()), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, json!("internal error"))
            }
            Self::Auth(error) => return auth_response(error),
        };
        let mut response = (status, axum::Json(json!({ "detail": detail }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let secs = match &self {
                Self::Busy(_, after) => after.as_secs().max(1),
                _ => 1,
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"admin\""),
            );
        }
        response
    }
}

/// An error followed by its sources, `: `-separated, for a log line that says why.
struct Causes<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(source) = next {
            write!(f, ": {source}")?;
            next = source.source();
        }
        Ok(())
    }
}

/// A request authentication turned away (RFC 6750 §3): 401 with `WWW-Authenticate:
/// Bearer`, plus `error="invalid_token"` when a token was sent; 403 with
/// `error="insufficient_scope"` for a valid token without the scope; 503 while no keys are
/// loaded.
fn auth_response(error: &crate::auth::AuthError) -> Response {
    use crate::auth::AuthError;
    let (status, challenge) = match error {
        AuthError::Missing(_) => (StatusCode::UNAUTHORIZED, "Bearer".to_owned()),
        AuthError::Invalid(_) => (
            StatusCode::UNAUTHORIZED,
            "Bearer error=\"invalid_token\"".to_owned(),
        ),
        AuthError::Scope(scope) => (
            StatusCode::FORBIDDEN,
            format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
        ),
        AuthError::KeysUnavailable => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "detail": error.to_string() })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    let mut response = (status, axum::Json(json!({ "detail": error.to_string() }))).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A write that failed, wrapped as the intake wraps it.
    #[derive(Debug, thiserror::Error)]
    #[error("the order was not written")]
    struct NotWritten(#[source] std::io::Error);

    #[tokio::test]
    async fn an_internal_error_keeps_its_causes_and_shows_the_client_none() {
        let error = ApiError::internal(NotWritten(std::io::Error::other("disk full")));
        let cause = error.source().expect("the cause is kept");
        assert_eq!(
            Causes(cause).to_string(),
            "the order was not written: disk full"
        );
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"detail":"internal error"}"#);
    }
}
