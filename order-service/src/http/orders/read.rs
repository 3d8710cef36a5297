//! What the three reads of one order (`GET /api/orders/{id}`, `…/events`, `…/saga`) share:
//! the failures they document, and that a customer sees only its own order — another's
//! answers as an unknown one does, so a customer cannot learn which ids exist.

use crate::http::AppState;
use crate::repo::{self, OwnedTimeline};
use common::auth::Caller;
use common::http::responses::{BearerRequired, DatabaseDown};
use common::http::{ApiError, ErrorBody, ValidationErrorBody};
use contract::OrderId;
use std::collections::BTreeMap;
use utoipa::IntoResponses;
use utoipa::openapi::{RefOr, Response};

/// Every answer of a read of one order besides its 200, for `responses(…)` in its
/// `#[utoipa::path]`: the common ones ([`common::http::responses`]) and its own.
pub struct ReadFailures;

impl IntoResponses for ReadFailures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            BearerRequired::responses(),
            OwnFailures::responses(),
            DatabaseDown::responses(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The answers only a read of one order gives. Only described: the handlers answer with
/// [`ApiError`].
#[derive(IntoResponses)]
#[allow(dead_code)]
enum OwnFailures {
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
    id: OrderId,
) -> Result<OwnedTimeline, ApiError> {
    let found = repo::owned_timeline(state.store.pool(), id).await?;
    visible(found, caller, |owned| &owned.customer_id)
}
