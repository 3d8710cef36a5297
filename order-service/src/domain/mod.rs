//! The rules of an order, free of I/O.

pub mod new_order;
pub mod status;

pub use new_order::{CreateOrderRequest, NewOrder};
pub use status::{OrderStatus, Outcome};
