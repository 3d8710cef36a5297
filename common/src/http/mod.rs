//! HTTP pieces every service uses: the error type and its JSON shape, extractors that
//! answer bad input with a 4xx in that shape, conditional GETs, and the operational
//! endpoints.

pub mod admin;
pub mod caller;
pub mod conditional;
pub mod error;
pub mod extract;
pub mod ops;
pub mod readiness;
pub mod responses;
pub mod timeout;

pub use admin::{Actor, Admin, AdminAccess, AdminToken, TokenAdmin};
pub use conditional::{IfNoneMatch, tagged_json, weakly_tagged_json};
pub use error::{ApiError, ErrorBody, FieldError, LocPart, ValidationErrorBody};
pub use extract::{Json, Path, Query};

/// Largest accepted request body (CONTRACT §2): larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
