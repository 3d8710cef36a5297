//! CONTRACT §6 — what must hold once the system goes quiet — as pure checks over what a
//! client collected from the services' APIs. The end-to-end tests and `loadgen` collect in
//! their own ways (every order or one run's, dead letters by `message_id` or by depth) and
//! hand the same [`Observed`] to [`Observed::violations`], so both are exactly as strict:
//! an answer that could not be read is a violation, never "empty".
//!
//! The checker spells the API's values (`COMPLETED`, `PROCESSED`, `OrderConfirmed`, …) as
//! the contract does, not through `common`'s constants, so a rename in the services cannot
//! silently move what is checked.
//!
//! # Layout
//! - [`answers`]: the API answers the checks read, parsed strictly.
//! - [`checks`]: [`Observed`] and the five invariants over it (each broken on purpose in
//!   `checks/tests.rs`).

pub mod answers;
pub mod checks;

pub use answers::{
    Notification, Order, OrderItem, OrderStatus, Payment, PaymentStatus, Product, Stock,
    TimelineStep, completed_in, parse, read, stock,
};
pub use checks::{DeadLetters, Expected, Held, Observed, Seen};
