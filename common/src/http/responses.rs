//! Answers many routes document alike, for `responses(…)` in a `#[utoipa::path]`, so each
//! description is written once. They are only described — the handlers answer through
//! [`super::ApiError`] and `tagged_json` — hence `allow(dead_code)`.

use super::ErrorBody;
use utoipa::IntoResponses;

/// A tagged read's answer to an `If-None-Match` that names the current tag.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum NotModified {
    #[response(
        status = 304,
        description = "Not modified: If-None-Match names the current ETag"
    )]
    NotModified,
}

/// A route of the API when authentication is on.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BearerRequired {
    #[response(
        status = 401,
        description = "Authentication is on and no valid bearer token was sent"
    )]
    Unauthenticated(ErrorBody),
}

/// An admin route (`Authorization: Bearer $ADMIN_TOKEN` or an `orders:admin` JWT).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AdminRequired {
    #[response(status = 401, description = "No or a wrong admin token")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Admin routes are off (ADMIN_TOKEN unset)")]
    AdminOff(ErrorBody),
}

/// A route that needs the database.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum DatabaseDown {
    #[response(status = 503, description = "The database is unavailable")]
    Unavailable(ErrorBody),
}

/// A route that needs the broker.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BrokerDown {
    #[response(status = 503, description = "RabbitMQ is not connected")]
    Unavailable(ErrorBody),
}
