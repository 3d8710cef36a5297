//! `GET /api/orders`: newest first, filtered and paginated.

use super::OrderView;
use crate::domain::OrderStatus;
use crate::http::AppState;
use crate::repo::{self, OrderFilter};
use axum::extract::State;
use common::auth::Caller;
use common::http::responses::{BearerRequired, DatabaseDown};
use common::http::{ApiError, Query, ValidationErrorBody};
use common::ids::CustomerId;
use common::text_enum::TextEnum;
use serde::Deserialize;
use utoipa::IntoParams;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Only orders with this status.
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    /// Only this customer's orders.
    customer_id: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Orders to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

impl ListParams {
    fn into_filter(self) -> Result<OrderFilter, ApiError> {
        let mut errors = Vec::new();
        let at = |name: &str| vec!["query".into(), name.into()];
        let status = match self.status.as_deref() {
            None | Some("") => None,
            Some(text) => {
                let status = OrderStatus::parse(&text.to_ascii_uppercase());
                if status.is_none() {
                    errors.push(common::http::FieldError::new(
                        at("status"),
                        "must be PENDING, COMPLETED or CANCELLED",
                    ));
                }
                status
            }
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(common::http::FieldError::new(
                at("limit"),
                format!("must be from 1 to {MAX_LIMIT}"),
            ));
        }
        let customer_id = match self.customer_id.filter(|id| !id.is_empty()) {
            None => None,
            Some(id) => CustomerId::parse(id)
                .map_err(|error| errors.push(error.at(at("customer_id"))))
                .ok(),
        };
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            errors.push(common::http::FieldError::new(
                at("offset"),
                "must be 0 or more",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(OrderFilter {
            status,
            customer_id,
            limit,
            offset,
        })
    }
}

/// Newest first, filtered by `status` and `customer_id`, paginated by `limit`/`offset`. A
/// customer's token lists only its own orders (another `customer_id` lists none).
#[utoipa::path(get, path = "/api/orders", tag = "orders", params(ListParams),
    responses(
        (status = 200, description = "The orders, newest first", body = Vec<OrderView>),
        BearerRequired,
        (status = 422, description = "A bad parameter", body = ValidationErrorBody),
        DatabaseDown),
    security((), ("bearer" = [])))]
pub(super) async fn list_orders(
    caller: Caller,
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Vec<OrderView>>, ApiError> {
    let mut filter = params.into_filter()?;
    if let Some(own) = caller.only_customer() {
        if filter
            .customer_id
            .as_ref()
            .is_some_and(|named| named.as_str() != own)
        {
            return Ok(axum::Json(Vec::new()));
        }
        filter.customer_id =
            Some(CustomerId::parse(own).map_err(|_| {
                ApiError::Forbidden("the token's subject is not a customer id".into())
            })?);
    }
    let orders = repo::list(state.store.pool(), &filter).await?;
    Ok(axum::Json(
        orders.into_iter().map(OrderView::from).collect(),
    ))
}
