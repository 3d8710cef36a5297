//! The answers every admin action on the dead letters documents besides its 200 and its 404
//! (which says what was not found), for `responses(…)` in its `#[utoipa::path]`.

use common::http::ErrorBody;

/// Only described: the handlers answer with `ApiError`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ActionFailures {
    #[response(status = 401, description = "No or a wrong admin token")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Admin routes are off (ADMIN_TOKEN unset)")]
    AdminOff(ErrorBody),
    #[response(
        status = 415,
        description = "Neither a JSON content type nor X-Requested-By"
    )]
    NotMarked(ErrorBody),
    #[response(status = 503, description = "RabbitMQ is not connected")]
    Unavailable(ErrorBody),
}
