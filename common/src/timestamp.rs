//! [`Timestamp`] lives in the `wire` crate, shared with the published language; re-exported
//! here under its old path.

pub use wire::timestamp::*;
