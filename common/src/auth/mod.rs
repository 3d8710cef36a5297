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
//! - [`caller`]: who calls — [`Caller`], [`AdminCaller`] — and what each may see; the
//!   HTTP layer finds them in a request.
//! - [`error`]: [`AuthError`], which the HTTP layer's one error mapping turns into 401/403.

pub mod caller;
pub mod config;
pub mod discovery;
pub mod error;
pub mod keys;
pub mod store;
pub mod verify;

pub use caller::{AdminCaller, Authentication, Caller};
pub use config::{AuthConfig, AuthSetting};
pub use error::AuthError;
pub use verify::{ADMIN_SCOPE, Authenticator, Identity};
