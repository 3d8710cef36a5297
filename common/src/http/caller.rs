//! The caller of a request, as handlers take it ([`Caller`], [`AdminCaller`]): the host
//! puts the [`Authentication`] in every request's extensions; while it is off, every
//! caller is [`Caller::Open`] and no header is looked at.

use super::ApiError;
use crate::auth::{ADMIN_SCOPE, AdminCaller, AuthError, Authentication, Caller};
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, header, request::Parts};

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(authenticator) = parts
            .extensions
            .get::<Authentication>()
            .and_then(|auth| auth.0.clone())
        else {
            return Ok(Caller::Open);
        };
        let token = bearer_token(&parts.headers)?;
        let identity = authenticator.verify(token).await?;
        Ok(Caller::from_identity(identity))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Customer(_) => Err(AuthError::Scope(ADMIN_SCOPE).into()),
            caller => Ok(Self(caller)),
        }
    }
}

/// The token of `Authorization: Bearer <token>`; a token anywhere else (a query string, a
/// cookie) is never read.
fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(AuthError::Missing(
            "authentication required: send Authorization: Bearer <token>",
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::invalid("the Authorization header is not visible ASCII"))?
        .trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                Err(AuthError::invalid("the bearer token is empty"))
            } else {
                Ok(token)
            }
        }
        _ => Err(AuthError::Missing(
            "authentication required: Authorization must use the Bearer scheme",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_a_bearer_authorization_carries_a_token() {
        assert_eq!(bearer_token(&headers("Bearer a.b.c")), Ok("a.b.c"));
        assert_eq!(bearer_token(&headers("bearer  a.b.c ")), Ok("a.b.c"));
        assert!(matches!(
            bearer_token(&headers("Basic dXNlcjpwYXNz")),
            Err(AuthError::Missing(_))
        ));
        assert!(matches!(
            bearer_token(&headers("a.b.c")),
            Err(AuthError::Missing(_))
        ));
        assert!(matches!(
            bearer_token(&HeaderMap::new()),
            Err(AuthError::Missing(_))
        ));
        assert!(matches!(
            bearer_token(&headers("Bearer ")),
            Err(AuthError::Missing(_) | AuthError::Invalid(_))
        ));
    }
}
