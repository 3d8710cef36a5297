//! Input rules shared by several APIs.

use crate::http::{FieldError, LocPart};

/// Longest `customer_id` or `product_id`, in characters.
pub const MAX_ID_CHARS: usize = 100;

/// An identifier must be non-blank, at most [`MAX_ID_CHARS`] characters, and free of
/// control characters (PostgreSQL cannot even store NUL in text).
pub fn check_id(id: &str, loc: Vec<LocPart>, errors: &mut Vec<FieldError>) {
    if id.trim().is_empty() {
        errors.push(FieldError::new(loc, "must not be empty"));
    } else if id.chars().any(char::is_control) {
        errors.push(FieldError::new(loc, "must not contain control characters"));
    } else if id.chars().count() > MAX_ID_CHARS {
        errors.push(FieldError::new(
            loc,
            format!("must be at most {MAX_ID_CHARS} characters"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(id: &str) -> usize {
        let mut errors = Vec::new();
        check_id(id, vec!["body".into()], &mut errors);
        errors.len()
    }

    #[test]
    fn ids_are_short_printable_and_not_blank() {
        assert_eq!(problems("customer-123"), 0);
        assert_eq!(problems("ünïcode ok"), 0);
        assert_eq!(problems(""), 1);
        assert_eq!(problems(" \t"), 1);
        assert_eq!(problems("nul\0byte"), 1);
        assert_eq!(problems("line\nbreak"), 1);
        assert_eq!(problems(&"x".repeat(MAX_ID_CHARS)), 0);
        assert_eq!(problems(&"x".repeat(MAX_ID_CHARS + 1)), 1);
    }
}
