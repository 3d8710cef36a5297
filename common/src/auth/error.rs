//! Why a request was not let in. The HTTP layer's `ApiError` maps these to HTTP in its
//! one place: 401 with `WWW-Authenticate: Bearer` (and `error="invalid_token"` when a token
//! was sent), 403 with `error="insufficient_scope"`, 503 while no keys are loaded.

/// A request that authentication turned away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token in `Authorization` (none at all, or another scheme).
    #[error("{0}")]
    Missing(&'static str),
    /// A token was sent and is not valid: the detail says why.
    #[error("{0}")]
    Invalid(String),
    /// A valid token without the scope the route needs.
    #[error("this needs a token with scope {0}")]
    Scope(&'static str),
    /// A JWKS set was never loaded, so no token can be checked yet.
    #[error("the signing keys are not loaded yet; try again shortly")]
    KeysUnavailable,
}

impl AuthError {
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid(detail.into())
    }
}
