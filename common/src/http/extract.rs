//! Extractors that turn every kind of bad input into an [`ApiError`] with a JSON body,
//! where axum's own would answer in plain text.

use super::error::{ApiError, FieldError, LocPart};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body: 415 without a JSON content type, 413 when too large, 400 when it is not
/// JSON, 422 (located) when it is JSON of the wrong shape.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let is_json = essence.eq_ignore_ascii_case("application/json")
            || essence.to_ascii_lowercase().ends_with("+json");
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            ));
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                    _ => ApiError::BadRequest(rejection.body_text()),
                })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON document into `T`, classifying errors as 400 (syntax) or 422 (shape).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let document = parse_document(bytes)
        .map_err(|error| ApiError::BadRequest(format!("Malformed JSON: {error}")))?;
    serde_path_to_error::deserialize(document).map_err(|error| {
        let inner = error.inner();
        let mut loc = vec![LocPart::from("body")];
        for segment in error.path().iter() {
            use serde_path_to_error::Segment;
            match segment {
                Segment::Seq { index } => loc.push((*index).into()),
                Segment::Map { key } => loc.push(key.clone().into()),
                Segment::Enum { variant } => loc.push(variant.clone().into()),
                Segment::Unknown => {}
            }
        }
        let message = strip_position(&inner.to_string());
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            loc.push(field.into());
            return ApiError::Validation(vec![FieldError {
                loc,
                msg: "Field required".into(),
                kind: "missing",
            }]);
        }
        ApiError::Validation(vec![FieldError {
            loc,
            msg: message,
            kind: "type_error",
        }])
    })
}

/// Most numbers beyond the range of `f64` one document may have.
const MAX_HUGE_NUMBERS: usize = 100;
/// What a number beyond the range of `f64` reads as: the largest `f64`, so it fails
/// every range rule with a located 422 like any other out-of-range value.
const HUGE: &[u8] = b"1.7976931348623157e308";

/// Parses a JSON document. A number too large for `f64` (`1e400`) is well-formed JSON, so it
/// is not a syntax error: it reads as the largest `f64` of its sign and fails validation.
fn parse_document(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut text = std::borrow::Cow::Borrowed(bytes);
    for _ in 0..MAX_HUGE_NUMBERS {
        let error = match serde_json::from_slice(&text) {
            Ok(document) => return Ok(document),
            Err(error) => error,
        };
        if !error.to_string().starts_with("number out of range") {
            return Err(error);
        }
        let Some(span) = number_at(&text, error.line(), error.column()) else {
            return Err(error);
        };
        let mut fixed = text[..span.start].to_vec();
        if text[span.start] == b'-' {
            fixed.push(b'-');
        }
        fixed.extend_from_slice(HUGE);
        fixed.extend_from_slice(&text[span.end..]);
        text = std::borrow::Cow::Owned(fixed);
    }
    serde_json::from_slice(&text)
}

/// The bytes of the number around serde_json's 1-based `line` and `column`.
fn number_at(text: &[u8], line: usize, column: usize) -> Option<std::ops::Range<usize>> {
    let line_start = if line <= 1 {
        0
    } else {
        text.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)?
            .0
            + 1
    };
    let at = (line_start + column.saturating_sub(1)).min(text.len());
    let is_number = |b: u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    let mut start = at;
    while start > line_start && is_number(text[start - 1]) {
        start -= 1;
    }
    let mut end = at;
    while end < text.len() && is_number(text[end]) {
        end += 1;
    }
    (start < end && text[start..end].iter().any(u8::is_ascii_digit)).then_some(start..end)
}

/// serde_json ends its messages with " at line 1 column 42"; the `loc` says it better.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// A path parameter; one that does not parse gets 422 located at `["path", …]`.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| ApiError::invalid(vec!["path".into()], rejection.body_text()))
    }
}

/// Query parameters; ones that do not parse get 422 located at `["query"]`.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| ApiError::invalid(vec!["query".into()], rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        quantity: i64,
    }

    fn errors(body: &str) -> ApiError {
        parse_json::<Body>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        assert!(matches!(errors("{"), ApiError::BadRequest(_)));
        assert!(matches!(errors("{} trailing"), ApiError::BadRequest(_)));
        assert!(matches!(errors(""), ApiError::BadRequest(_)));
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Amount {
        total: f64,
        #[serde(default)]
        more: Vec<f64>,
    }

    #[test]
    fn numbers_beyond_f64_are_out_of_range_values_not_syntax_errors() {
        for body in [
            r#"{"total": 1e400}"#,
            r#"{"total": -1E+400}"#,
            "{\n  \"total\":\n 123456789e400\n}",
            r#"{"more": [1e999, 2e999], "total": 1e400}"#,
        ] {
            let amount: Amount = parse_json(body.as_bytes()).expect(body);
            assert!(
                amount.total.is_finite() && amount.total.abs() == f64::MAX,
                "{body}"
            );
            assert!(amount.more.iter().all(|m| *m == f64::MAX), "{body}");
        }
        assert!(matches!(
            parse_json::<Amount>(br#"{"total": 1e400"#),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn shape_errors_are_located() {
        let ApiError::Validation(found) = errors(r#"{"name": "x", "items": [{"quantity": "2"}]}"#)
        else {
            panic!("expected a validation error");
        };
        let expected: Vec<LocPart> =
            vec!["body".into(), "items".into(), 0.into(), "quantity".into()];
        assert_eq!(found[0].loc, expected);

        let ApiError::Validation(found) = errors(r#"{"items": []}"#) else {
            panic!("expected a validation error");
        };
        let expected: Vec<LocPart> = vec!["body".into(), "name".into()];
        assert_eq!(found[0].loc, expected);
        assert_eq!(found[0].msg, "Field required");

        assert!(matches!(errors("[]"), ApiError::Validation(_)));
        assert!(matches!(errors("null"), ApiError::Validation(_)));
    }
}
