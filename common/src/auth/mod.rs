//! Customer authentication (CONTRACT §12): bearer JWTs signed by an OpenID provider.
//! On when `AUTH_JWKS_URL`, `AUTH_PUBLIC_KEY` or `AUTH_ISSUER` is set, unless
//! `AUTH_DISABLED=true`. The machinery is here, once; which route needs what (a customer's
//! own orders, `orders:admin`) is each service's.
//!
//! # Layout
//! - [`config`]: the `AUTH_*` variables.
//! - [`discovery`]: the https rule for key sources, and OpenID discovery of `jwks_uri`.
//! - [`keys`]: a key set from a JWKS document or a PEM key, each key bound to its algorithm.
//! - [`store`]: the set in force, fetched, refreshed and rate-limited.
//! - [`verify`]: checking one token ([`Authenticator`]) into an [`Identity`].
//! - [`extract`]: the [`Caller`] and [`AdminCaller`] extractors handlers take.
//! - [`error`]: [`AuthError`], mapped to 401/403 by [`crate::http::ApiError`].

pub mod config;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod keys;
pub mod store;
pub mod verify;

pub use config::{AuthConfig, AuthSetting};
pub use error::AuthError;
pub use extract::{AdminCaller, Authentication, Caller};
pub use verify::{ADMIN_SCOPE, Authenticator, Identity};
