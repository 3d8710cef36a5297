//! `POST /api/orders/{id}/cancel` (CONTRACT §15): the customer changes their mind, or an
//! operator steps in. The body is optional: `{"reason": "…"}`, at most 500 characters.

use super::AppState;
use super::orders::OrderView;
use super::orders::read::not_found;
use crate::ending::cancel::{self, CancelRequest, Cancellation, Canceller};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use common::auth::Caller;
use common::http::Actor;
use common::http::extract::parse_json;
use common::http::responses::BearerRequired;
use common::http::{ApiError, ErrorBody, FieldError, Path, ValidationErrorBody};
use contract::OrderId;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest reason a caller may give, in characters.
const MAX_REASON_CHARS: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(cancel_order))
}

/// The optional body of a cancellation.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CancelOrderRequest {
    /// Why, in the caller's words (at most 500 characters); kept with the cancellation.
    #[schema(max_length = 500, example = "ordered the wrong size")]
    reason: Option<String>,
}

/// Cancels an order. `PENDING`: cancelled now; stock returns, a charge in flight is
/// refunded once it lands, and no new payment attempt starts. `COMPLETED` less than
/// `ORDER_CANCEL_WINDOW_SECS` ago: cancelled, stock returned, the charge refunded, the
/// customer told. Already `CANCELLED`: answered unchanged. The reason is
/// `CUSTOMER_CANCELLED`, or `OPERATOR_CANCELLED` for an `orders:admin` token or the admin
/// token.
#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "orders",
    params(("id" = OrderId, Path, description = "The order id")),
    request_body(content = Option<CancelOrderRequest>, description = "Optional: why"),
    responses(
        (status = 200, description = "The order, CANCELLED (now or before)", body = OrderView),
        (status = 400, description = "A body that is not JSON", body = ErrorBody),
        BearerRequired,
        (status = 404, description = "No such order (or another customer's)", body = ErrorBody),
        (status = 409, description = "It completed longer ago than the cancel window: nothing changed", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 422, description = "Not a UUID, or a reason over 500 characters", body = ValidationErrorBody),
        (status = 503, description = "The database is unavailable: nothing changed", body = ErrorBody)),
    security((), ("bearer" = [])))]
async fn cancel_order(
    canceller: Requester,
    State(state): State<AppState>,
    Path(id): Path<OrderId>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<OrderView>, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest(rejection.body_text()),
    })?;
    let note = parse_reason(&body)?;
    let request = CancelRequest {
        order_id: id,
        by: canceller.by,
        note,
        window: state.cancel_window,
    };
    let caller = canceller.caller;
    let mut uow = state.store.begin().await?;
    let outcome = cancel::cancel(&mut uow, request, |customer| caller.may_see(customer)).await?;
    match outcome {
        Cancellation::Cancelled(order) => {
            uow.commit().await?;
            Ok(axum::Json(order.into()))
        }
        Cancellation::AlreadyCancelled(order) => Ok(axum::Json(order.into())),
        Cancellation::TooLate(order) => Err(ApiError::Conflict(format!(
            "order {} completed at {} and can no longer be cancelled: the window is {} s",
            order.id,
            order
                .updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            state.cancel_window.as_secs()
        ))),
        Cancellation::NotFound => Err(not_found()),
    }
}

/// The optional reason: no body, or a JSON object with an optional `reason`.
fn parse_reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let request: CancelOrderRequest = parse_json(body)?;
    let reason = request.reason.map(|text| text.trim().to_owned());
    if reason
        .as_ref()
        .is_some_and(|text| text.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            vec!["body".into(), "reason".into()],
            format!("must be at most {MAX_REASON_CHARS} characters"),
        )]));
    }
    Ok(reason.filter(|text| !text.is_empty()))
}

/// Who is cancelling: the admin token (in both modes) or an `orders:admin` token is an
/// operator; anyone else a customer (with authentication on, one who may cancel only its
/// own orders).
struct Requester {
    by: Canceller,
    caller: Caller,
}

impl<S: Send + Sync> FromRequestParts<S> for Requester {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if common::http::admin::carries_admin_token(parts) {
            return Ok(Self {
                by: Canceller::Operator(Actor::AdminToken),
                caller: Caller::Admin("admin-token".into()),
            });
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        let by = match &caller {
            Caller::Open => Canceller::Customer(None),
            Caller::Customer(subject) => Canceller::Customer(Some(subject.clone())),
            Caller::Admin(subject) => Canceller::Operator(Actor::Subject(subject.clone())),
        };
        Ok(Self { by, caller })
    }
}
