//! Who calls: [`Caller`] for routes any valid token may use, [`AdminCaller`] for those
//! that need `orders:admin`, and what each may see. Which routes take which is each
//! service's own policy; the HTTP layer finds the caller of a request (`http::caller`).

use super::verify::{Authenticator, Identity};

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

    pub(crate) fn from_identity(identity: Identity) -> Self {
        if identity.admin {
            Self::Admin(identity.subject)
        } else {
            Self::Customer(identity.subject)
        }
    }
}

/// A caller whose token has `orders:admin` (or any caller while authentication is off).
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

#[cfg(test)]
mod tests {
    use super::*;

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
