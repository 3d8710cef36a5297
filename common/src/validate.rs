//! Input rules shared by several APIs.

use crate::http::FieldError;
use serde_json::Value;

/// Longest `customer_id` or `product_id`, in characters.
pub const MAX_ID_CHARS: usize = 100;

/// An identifier must be non-blank and at most [`MAX_ID_CHARS`] characters.
pub fn check_id(id: &str, loc: Vec<Value>, errors: &mut Vec<FieldError>) {
    if id.trim().is_empty() {
        errors.push(FieldError::new(loc, "must not be empty"));
    } else if id.chars().count() > MAX_ID_CHARS {
        errors.push(FieldError::new(
            loc,
            format!("must be at most {MAX_ID_CHARS} characters"),
        ));
    }
}
