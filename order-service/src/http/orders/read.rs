//! What the three reads of one order (`GET /api/orders/{id}`, `…/events`, `…/saga`) share:
//! the failures they document, and that a customer sees only its own order — another's
//! answers as an unknown one does, so a customer cannot learn which ids exist.

use crate::http::AppState;
use crate::repo::{self, OwnedTimeline};
use common::auth::Caller;
use common::http::{ApiError, ErrorBody, ValidationErrorBody};
use uuid::Uuid;

/// The answers only a read of one order gives, for `responses(…)` in its `#[utoipa::path]`
/// beside the common ones ([`common::http::responses`]). Only described: the handlers
/// answer with [`ApiError`].
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ReadFailures {
    #[response(status = 404, description = "No such order (or another customer's)")]
    NotFound(ErrorBody),
    #[response(status = 422, description = "Not a UUID")]
    NotAUuid(ValidationErrorBody),
}

/// The answer to another customer's order: the same as to an unknown one.
pub(in crate::http) fn not_found() -> ApiError {
    ApiError::not_found("Order")
}

/// `found`, if `caller` may see it; `customer` names whose order it is.
pub(in crate::http) fn visible<T>(
    found: Option<T>,
    caller: &Caller,
    customer: impl Fn(&T) -> &str,
) -> Result<T, ApiError> {
    found
        .filter(|order| caller.may_see(customer(order)))
        .ok_or_else(not_found)
}

/// The order's timeline, if `caller` may see the order.
pub(in crate::http) async fn timeline(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<OwnedTimeline, ApiError> {
    let found = repo::owned_timeline(state.store.pool(), id).await?;
    visible(found, caller, |owned| &owned.customer_id)
}
