//! The caller of a request, as handlers take it: [`Caller`] for routes any valid token may
//! use, [`AdminCaller`] for those that need `orders:admin`. Which routes take which is each
//! service's own policy; here is only how a caller is found. The host puts the
//! [`Authentication`] in every request's extensions; while it is off, every caller is
//! [`Caller::Open`] and no header is looked at.

use super::error::AuthError;
use super::verify::{ADMIN_SCOPE, Authenticator, Identity};
use crate::http::ApiError;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, header, request::Parts};

/// Whether authentication is on in this process, and with what.
#[derive(Clone, Default)]
pub struct Authentication(pub Option<Authenticator>);

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Authentication is off: the API is open, as in the original.
    Open,
    /// A valid token without `orders:admin`: this customer, and only it.
    Customer(String),
    /// A valid token with `orders:admin`: may read and act for every customer.
    Admin(String),
}

impl Caller {
    /// Whether this caller may see what belongs to `customer_id`.
    pub fn may_see(&self, customer_id: &str) -> bool {
        match self {
            Self::Open | Self::Admin(_) => true,
            Self::Customer(subject) => subject == customer_id,
        }
    }

    /// Whether this caller may see what belongs to `owner`; something whose owner is not
    /// known (`None`) only a caller who sees everyone may see.
    pub fn may_see_owned_by(&self, owner: Option<&str>) -> bool {
        match owner {
            Some(customer_id) => self.may_see(customer_id),
            None => self.only_customer().is_none(),
        }
    }

    /// The only customer this caller may see, or `None` for everyone.
    pub fn only_customer(&self) -> Option<&str> {
        match self {
            Self::Customer(subject) => Some(subject),
            Self::Open | Self::Admin(_) => None,
        }
    }

    /// The token's `sub`, when a token was checked.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Self::Open => None,
            Self::Customer(subject) | Self::Admin(subject) => Some(subject),
        }
    }

    fn from_identity(identity: Identity) -> Self {
        if identity.admin {
            Self::Admin(identity.subject)
        } else {
            Self::Customer(identity.subject)
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(authenticator) = parts
            .extensions
            .get::<Authentication>()
            .and_then(|auth| auth.0.clone())
        else {
            return Ok(Self::Open);
        };
        let token = bearer_token(&parts.headers)?;
        let identity = authenticator.verify(token).await?;
        Ok(Self::from_identity(identity))
    }
}

/// A caller whose token has `orders:admin` (or any caller while authentication is off).
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

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

    #[test]
    fn a_customer_sees_only_its_own_and_an_admin_everyone() {
        let customer = Caller::Customer("customer-1".into());
        assert!(customer.may_see("customer-1"));
        assert!(!customer.may_see("customer-2"));
        assert_eq!(customer.only_customer(), Some("customer-1"));
        let admin = Caller::Admin("ops".into());
        assert!(admin.may_see("customer-2"));
        assert_eq!(admin.only_customer(), None);
        assert!(Caller::Open.may_see("anyone"));
        assert!(!customer.may_see_owned_by(None));
        assert!(customer.may_see_owned_by(Some("customer-1")));
        assert!(admin.may_see_owned_by(None));
        assert!(Caller::Open.may_see_owned_by(None));
    }
}
