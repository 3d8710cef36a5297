//! Admin routes (CONTRACT §8, §16): routes that change state or show message bodies need
//! `Authorization: Bearer $ADMIN_TOKEN` or, while authentication is on (§12), a JWT whose
//! scope has `orders:admin`. A handler opts in by taking an [`Admin`] argument (first, so a
//! caller without the token learns nothing from body parsing); the host puts the
//! configured [`AdminToken`] and [`Authentication`] into every request's extensions. The
//! [`Actor`] it yields names the operator in the operator log.

use super::error::ApiError;
use crate::auth::{Authentication, Authenticator};
use axum::extract::FromRequestParts;
use axum::http::{Method, header, request::Parts};
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The header a client without a JSON body sends to show it is not a cross-site form.
pub const EXPLICIT_HEADER: &str = "x-requested-by";

/// The configured `ADMIN_TOKEN`; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(Arc<str>);

impl AdminToken {
    pub fn new(token: &str) -> Self {
        Self(token.into())
    }

    /// Compares in constant time, so response timing does not leak how much of a guess
    /// was right.
    fn matches(&self, offered: &str) -> bool {
        self.0.as_bytes().ct_eq(offered.as_bytes()).into()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// What the host knows about admin access: the token, or that admin routes are off.
#[derive(Clone, Debug, Default)]
pub struct AdminAccess(pub Option<AdminToken>);

/// Proof that the request carried the admin token or an `orders:admin` JWT (and, for a
/// state-changing method, was not a cross-site form), with who it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(pub Actor);

/// Who performed an admin action, as the operator log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The shared `ADMIN_TOKEN`: nobody in particular.
    AdminToken,
    /// The `sub` of a JWT with `orders:admin`.
    Subject(String),
}

impl Actor {
    /// `admin-token` or the token's subject.
    pub fn name(&self) -> &str {
        match self {
            Self::AdminToken => "admin-token",
            Self::Subject(subject) => subject,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let access = parts
            .extensions
            .get::<AdminAccess>()
            .cloned()
            .unwrap_or_default();
        let authentication = parts
            .extensions
            .get::<Authentication>()
            .and_then(|auth| auth.0.clone());
        if access.0.is_none() && authentication.is_none() {
            return Err(ApiError::Forbidden(
                "admin routes are off: set ADMIN_TOKEN".into(),
            ));
        }
        let Some(offered) = offered_bearer(parts) else {
            return Err(ApiError::Unauthorized(
                "admin route: send Authorization: Bearer <ADMIN_TOKEN>".into(),
            ));
        };
        let actor = if access
            .0
            .as_ref()
            .is_some_and(|token| token.matches(offered))
        {
            Actor::AdminToken
        } else if let Some(authenticator) = authentication {
            admin_subject(&authenticator, offered).await?
        } else {
            return Err(ApiError::Unauthorized("admin token is wrong".into()));
        };
        if changes_state(&parts.method) && !explicit(parts) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "admin actions need Content-Type: application/json or an {EXPLICIT_HEADER} \
                 header (so a cross-site form cannot trigger them)"
            )));
        }
        Ok(Admin(actor))
    }
}

/// Proof that the request carried the shared `ADMIN_TOKEN` itself (and, for a
/// state-changing method, was not a cross-site form): for what CONTRACT §12 keeps to that
/// token — setting stock — where an `orders:admin` JWT is not enough. Its actor is always
/// [`Actor::AdminToken`].
#[derive(Debug)]
pub struct TokenAdmin;

impl<S: Send + Sync> FromRequestParts<S> for TokenAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let configured = parts
            .extensions
            .get::<AdminAccess>()
            .is_some_and(|access| access.0.is_some());
        if !configured {
            return Err(ApiError::Forbidden(
                "admin routes are off: set ADMIN_TOKEN".into(),
            ));
        }
        if !carries_admin_token(parts) {
            return Err(ApiError::Unauthorized(
                "this route needs Authorization: Bearer <ADMIN_TOKEN> (a JWT is not enough)".into(),
            ));
        }
        if changes_state(&parts.method) && !explicit(parts) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "admin actions need Content-Type: application/json or an {EXPLICIT_HEADER} \
                 header (so a cross-site form cannot trigger them)"
            )));
        }
        Ok(TokenAdmin)
    }
}

/// The subject of a JWT with `orders:admin`; a valid token without it is forbidden.
async fn admin_subject(authenticator: &Authenticator, offered: &str) -> Result<Actor, ApiError> {
    match authenticator.verify(offered).await {
        Ok(identity) if identity.admin => Ok(Actor::Subject(identity.subject)),
        Ok(_) => Err(ApiError::Forbidden(
            "admin route: the token's scope lacks orders:admin".into(),
        )),
        Err(_) => Err(ApiError::Unauthorized("admin token is wrong".into())),
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A JSON content type or the explicit header: neither can come from a plain HTML form.
fn explicit(parts: &Parts) -> bool {
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"));
    json || parts.headers.contains_key(EXPLICIT_HEADER)
}

/// Whether the request carries the configured admin token as its bearer token: for routes
/// that anyone may call but that let an operator do more (CONTRACT §15's operator cancel).
pub fn carries_admin_token(parts: &Parts) -> bool {
    let Some(token) = parts
        .extensions
        .get::<AdminAccess>()
        .and_then(|a| a.0.clone())
    else {
        return false;
    };
    offered_bearer(parts).is_some_and(|offered| token.matches(offered))
}

/// The token of an `Authorization: Bearer …` header, if the request has one.
fn offered_bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    async fn check(access: AdminAccess, request: Request<()>) -> Result<Admin, ApiError> {
        let (mut parts, ()) = request.into_parts();
        parts.extensions.insert(access);
        Admin::from_request_parts(&mut parts, &()).await
    }

    fn on() -> AdminAccess {
        AdminAccess(Some(AdminToken::new("s3cret")))
    }

    #[tokio::test]
    async fn no_token_configured_turns_admin_routes_off() {
        let request = Request::get("/admin/dlq")
            .header("authorization", "Bearer s3cret")
            .body(())
            .unwrap();
        let error = check(AdminAccess(None), request).await.unwrap_err();
        assert!(matches!(error, ApiError::Forbidden(_)), "{error}");
    }

    #[tokio::test]
    async fn a_missing_or_wrong_token_is_unauthorized() {
        for header in [
            None,
            Some("Bearer nope"),
            Some("Basic s3cret"),
            Some("s3cret"),
        ] {
            let mut request = Request::get("/admin/dlq");
            if let Some(value) = header {
                request = request.header("authorization", value);
            }
            let error = check(on(), request.body(()).unwrap()).await.unwrap_err();
            assert!(
                matches!(error, ApiError::Unauthorized(_)),
                "{header:?}: {error}"
            );
        }
        let ok = Request::get("/admin/dlq")
            .header("authorization", "bearer s3cret")
            .body(())
            .unwrap();
        assert!(check(on(), ok).await.is_ok());
    }

    #[tokio::test]
    async fn state_changing_calls_must_not_look_like_a_form() {
        let form = Request::post("/admin/dlq/replay")
            .header("authorization", "Bearer s3cret")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(())
            .unwrap();
        let error = check(on(), form).await.unwrap_err();
        assert!(
            matches!(error, ApiError::UnsupportedMediaType(_)),
            "{error}"
        );
        for (name, value) in [
            ("content-type", "application/json"),
            (EXPLICIT_HEADER, "ops"),
        ] {
            let request = Request::post("/admin/dlq/replay")
                .header("authorization", "Bearer s3cret")
                .header(name, value)
                .body(())
                .unwrap();
            assert!(check(on(), request).await.is_ok(), "{name}");
        }
    }
}
