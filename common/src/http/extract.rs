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
    let document: Value = serde_json::from_slice(bytes)
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
