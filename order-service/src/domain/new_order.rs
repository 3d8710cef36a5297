//! A new order as the client sends it, and the checked [`NewOrder`] made from it.

use common::http::FieldError;
use common::http::LocPart;
use common::ids::{CustomerId, ProductId};
use contract::events::LineItem;
use contract::money::Money;
use contract::quantity::{Quantity, QuantityError};
use serde::Deserialize;

/// Most lines in one order.
pub const MAX_ITEMS: usize = 100;

/// The body of `POST /api/orders`, typed but not yet checked.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"customer_id": "customer-123",
    "items": [{"product_id": "product-A", "quantity": 2}, {"product_id": "product-B", "quantity": 1}],
    "total_amount": 150.0}))]
pub struct CreateOrderRequest {
    /// Checked by [`NewOrder::parse`], so every problem of the body is reported at once.
    /// Required while authentication is off; with it on, it defaults to the token's `sub`
    /// and a customer may name only itself (CONTRACT §12).
    #[schema(value_type = Option<CustomerId>)]
    #[serde(default)]
    pub customer_id: Option<String>,
    /// 1 to 100 lines; the same product may appear twice (the quantities add up).
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ItemRequest>,
    /// Greater than 0, at most 2 decimals, at most 10^12.
    #[schema(exclusive_minimum = 0.0, maximum = 1000000000000.0, multiple_of = 0.01)]
    pub total_amount: f64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ItemRequest {
    #[schema(value_type = ProductId)]
    pub product_id: String,
    /// A whole number; `2.0` counts as 2, as JSON Schema says.
    #[schema(value_type = i64, minimum = 1, maximum = 10000)]
    pub quantity: serde_json::Number,
}

/// A JSON number as a whole number, if it is one.
fn whole(number: &serde_json::Number) -> Option<i64> {
    number.as_i64().or_else(|| {
        let value = number.as_f64()?;
        (value.fract() == 0.0 && value.abs() < 9.0e15).then_some(value as i64)
    })
}

/// An order that passed every rule of CONTRACT §2. Its fields are private, so
/// [`NewOrder::parse`] is the only way to have one.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    customer_id: CustomerId,
    items: Vec<LineItem>,
    total: Money,
}

impl NewOrder {
    pub fn customer_id(&self) -> &CustomerId {
        &self.customer_id
    }

    /// The lines as the client sent them: one per line, the same product possibly twice.
    pub fn items(&self) -> &[LineItem] {
        &self.items
    }

    pub fn total(&self) -> Money {
        self.total
    }

    /// Checks every field and reports all problems at once, located like FastAPI.
    pub fn parse(request: CreateOrderRequest) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let at = |path: &[LocPart]| {
            let mut loc = vec![LocPart::from("body")];
            loc.extend_from_slice(path);
            loc
        };

        let customer_id = match request.customer_id {
            Some(id) => CustomerId::parse(id)
                .map_err(|error| errors.push(error.at(at(&["customer_id".into()])))),
            None => {
                errors.push(FieldError {
                    loc: at(&["customer_id".into()]),
                    msg: "Field required".into(),
                    kind: "missing",
                });
                Err(())
            }
        };
        if request.items.is_empty() {
            errors.push(FieldError::new(
                at(&["items".into()]),
                "must contain at least 1 item",
            ));
        }
        if request.items.len() > MAX_ITEMS {
            errors.push(FieldError::new(
                at(&["items".into()]),
                format!("must contain at most {MAX_ITEMS} items"),
            ));
        }
        let mut items = Vec::with_capacity(request.items.len());
        for (index, item) in request.items.into_iter().enumerate() {
            let line = |field: &str| at(&["items".into(), index.into(), field.into()]);
            let product_id = ProductId::parse(item.product_id)
                .map_err(|error| errors.push(error.at(line("product_id"))));
            let quantity = whole(&item.quantity)
                .ok_or(QuantityError)
                .and_then(Quantity::try_from)
                .map_err(|error| errors.push(FieldError::new(line("quantity"), error.to_string())));
            if let (Ok(product_id), Ok(quantity)) = (product_id, quantity) {
                // The events carry plain strings (see `common::ids`).
                items.push(LineItem {
                    product_id: product_id.into_inner(),
                    quantity,
                });
            }
        }
        let total = Money::from_decimal(request.total_amount)
            .map_err(|error| FieldError::new(at(&["total_amount".into()]), error.to_string()));
        match (customer_id, total) {
            (Ok(customer_id), Ok(total)) if errors.is_empty() => Ok(Self {
                customer_id,
                items,
                total,
            }),
            (_, Err(error)) => {
                errors.push(error);
                Err(errors)
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::ids::MAX_ID_CHARS;

    fn request(customer: &str, items: &[(&str, i64)], total: f64) -> CreateOrderRequest {
        CreateOrderRequest {
            customer_id: Some(customer.into()),
            items: items
                .iter()
                .map(|(product, quantity)| ItemRequest {
                    product_id: (*product).into(),
                    quantity: (*quantity).into(),
                })
                .collect(),
            total_amount: total,
        }
    }

    #[test]
    fn the_readme_order_parses() {
        let order = NewOrder::parse(request(
            "customer-123",
            &[("product-A", 2), ("product-B", 1)],
            150.0,
        ))
        .unwrap();
        assert_eq!(order.customer_id.as_str(), "customer-123");
        assert_eq!(order.items.len(), 2);
        assert_eq!(order.total.cents(), 15_000);
    }

    #[test]
    fn each_broken_rule_is_reported_where_it_is() {
        let long = "x".repeat(MAX_ID_CHARS + 1);
        let cases: Vec<(CreateOrderRequest, Vec<LocPart>)> = vec![
            (
                request("", &[("p", 1)], 1.0),
                vec!["body".into(), "customer_id".into()],
            ),
            (
                request("   ", &[("p", 1)], 1.0),
                vec!["body".into(), "customer_id".into()],
            ),
            (
                request(&long, &[("p", 1)], 1.0),
                vec!["body".into(), "customer_id".into()],
            ),
            (request("c", &[], 1.0), vec!["body".into(), "items".into()]),
            (
                request("c", &[("", 1)], 1.0),
                vec!["body".into(), "items".into(), 0.into(), "product_id".into()],
            ),
            (
                request("c", &[("p", 1), ("q", 0)], 1.0),
                vec!["body".into(), "items".into(), 1.into(), "quantity".into()],
            ),
            (
                request("c", &[("p", 10_001)], 1.0),
                vec!["body".into(), "items".into(), 0.into(), "quantity".into()],
            ),
            (
                request("c", &[("p", -3)], 1.0),
                vec!["body".into(), "items".into(), 0.into(), "quantity".into()],
            ),
            (
                request("c", &[("p", 1)], 0.0),
                vec!["body".into(), "total_amount".into()],
            ),
            (
                request("c", &[("p", 1)], -1.0),
                vec!["body".into(), "total_amount".into()],
            ),
            (
                request("c", &[("p", 1)], 1.234),
                vec!["body".into(), "total_amount".into()],
            ),
        ];
        for (request, loc) in cases {
            let errors = NewOrder::parse(request.clone()).unwrap_err();
            assert_eq!(errors.len(), 1, "{request:?}: {errors:?}");
            assert_eq!(errors[0].loc, loc, "{request:?}");
        }
    }

    #[test]
    fn a_whole_float_is_a_quantity_and_a_fraction_is_not() {
        let mut with_float = request("c", &[("p", 1)], 1.0);
        with_float.items[0].quantity = serde_json::Number::from_f64(2.0).unwrap();
        assert_eq!(
            NewOrder::parse(with_float).unwrap().items[0].quantity.get(),
            2
        );
        let mut with_fraction = request("c", &[("p", 1)], 1.0);
        with_fraction.items[0].quantity = serde_json::Number::from_f64(1.5).unwrap();
        assert!(NewOrder::parse(with_fraction).is_err());
    }

    #[test]
    fn too_many_items_are_refused() {
        let items: Vec<(&str, i64)> = (0..=MAX_ITEMS).map(|_| ("p", 1)).collect();
        assert!(NewOrder::parse(request("c", &items, 1.0)).is_err());
        let items: Vec<(&str, i64)> = (0..MAX_ITEMS).map(|_| ("p", 1)).collect();
        assert!(NewOrder::parse(request("c", &items, 1.0)).is_ok());
    }

    #[test]
    fn a_missing_customer_is_a_missing_field() {
        let mut body = request("c", &[("p", 1)], 1.0);
        body.customer_id = None;
        let errors = NewOrder::parse(body).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].kind, "missing");
        assert_eq!(
            errors[0].loc,
            vec![LocPart::from("body"), "customer_id".into()]
        );
    }

    #[test]
    fn all_problems_are_reported_together() {
        let errors = NewOrder::parse(request("", &[("", 0)], 0.0)).unwrap_err();
        assert_eq!(errors.len(), 4);
    }
}
