//! Conditional GETs (CONTRACT §14): a read answers with an `ETag` — a hash of the JSON it
//! sends, so it changes exactly when what it shows does, with no query of its own — and
//! `Cache-Control: private, no-cache` (a client may keep it but must ask again); a request
//! whose `If-None-Match` names the current tag gets 304 with no body.

use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::convert::Infallible;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::{ObjectBuilder, Required, Type};

/// What every tagged read sends as `Cache-Control`.
pub const CACHE_CONTROL: &str = "private, no-cache";

/// The request's `If-None-Match`, if any. Never rejects: a malformed one matches nothing.
#[derive(Debug, Clone, Default)]
pub struct IfNoneMatch(Option<HeaderValue>);

impl IfNoneMatch {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self(headers.get(header::IF_NONE_MATCH).cloned())
    }

    /// Whether the header names `tag` (a quoted entity-tag) or is `*`. Weak comparison,
    /// as RFC 9110 §13.1.2 has for `If-None-Match`: `W/"x"` matches `"x"`.
    pub fn matches(&self, tag: &str) -> bool {
        let Some(value) = self.0.as_ref().and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let tag = opaque(tag);
        value.split(',').map(str::trim).any(|candidate| {
            candidate == "*" || (!candidate.is_empty() && opaque(candidate) == tag)
        })
    }
}

/// Documents the header for every read that takes it: `params(IfNoneMatch)` in a route's
/// `#[utoipa::path]`, so the description is written once.
impl IntoParams for IfNoneMatch {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let text =
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]));
        vec![
            ParameterBuilder::new()
                .name("If-None-Match")
                .parameter_in(ParameterIn::Header)
                .description(Some(
                    "An ETag of an earlier answer: 304 while it is still current",
                ))
                .required(Required::False)
                .schema(Some(text))
                .build(),
        ]
    }
}

/// An entity-tag without its weakness prefix.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// A strong tag for these bytes: the first 128 bits of their SHA-256, in hex.
pub fn strong_tag(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest.as_ref()[..16] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag
}

/// `body` as JSON with a strong `ETag` of its bytes, or 304 when `condition` names it.
pub fn tagged_json<T: Serialize>(condition: &IfNoneMatch, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let tag = strong_tag(&bytes);
            respond(condition, tag, bytes)
        }
        Err(error) => super::ApiError::internal(error).into_response(),
    }
}

/// `body` as JSON with a weak `ETag` of `version` — for a body that also carries what does
/// not count as a change (the moment it was made) — or 304 when `condition` names it.
pub fn weakly_tagged_json<T: Serialize, V: Serialize>(
    condition: &IfNoneMatch,
    body: &T,
    version: &V,
) -> Response {
    match (serde_json::to_vec(body), serde_json::to_vec(version)) {
        (Ok(bytes), Ok(version)) => {
            let tag = format!("W/{}", strong_tag(&version));
            respond(condition, tag, bytes)
        }
        (Err(error), _) | (_, Err(error)) => super::ApiError::internal(error).into_response(),
    }
}

fn respond(condition: &IfNoneMatch, tag: String, bytes: Vec<u8>) -> Response {
    let headers = [
        (
            header::ETAG,
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\"")),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
    ];
    if condition.matches(&tag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(value: &str) -> IfNoneMatch {
        IfNoneMatch(Some(HeaderValue::from_str(value).unwrap()))
    }

    #[test]
    fn the_tag_is_the_hash_of_the_bytes() {
        assert_eq!(strong_tag(b"[1]"), strong_tag(b"[1]"));
        assert_ne!(strong_tag(b"[1]"), strong_tag(b"[2]"));
        assert_eq!(strong_tag(b"").len(), 34);
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_a_star() {
        let tag = strong_tag(b"{}");
        assert!(condition(&tag).matches(&tag));
        assert!(condition(&format!("W/{tag}")).matches(&tag));
        assert!(condition(&format!("\"other\", {tag}")).matches(&tag));
        assert!(condition("*").matches(&tag));
        assert!(!condition("\"other\"").matches(&tag));
        assert!(!condition("").matches(&tag));
        assert!(!IfNoneMatch::default().matches(&tag));
    }

    #[tokio::test]
    async fn a_matching_request_gets_304_without_a_body() {
        let first = tagged_json(&IfNoneMatch::default(), &[1, 2, 3]);
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CACHE_CONTROL], CACHE_CONTROL);
        let tag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = tagged_json(&condition(&tag), &[1, 2, 3]);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], tag.as_str());
        let body = axum::body::to_bytes(again.into_body(), 1024).await.unwrap();
        assert!(body.is_empty());
        let changed = tagged_json(&condition(&tag), &[1, 2, 4]);
        assert_eq!(changed.status(), StatusCode::OK);
    }
}
