//! What a service tells `common` about itself: the [`Descriptor`] each service crate builds
//! once and hands to `CommonConfig::from_vars`.
//!
//! `common` knows no service by name. The names, who consumes what and the queue names are
//! the published language's (the `contract` crate), which gives each service its
//! [`Descriptor::name`] and the broker [`Layout`](wire::layout::Layout) every
//! service declares; everything else about a service — its port, its database, its API's
//! description — lives in its own crate.

use wire::layout::Layout;

/// Who a service is, for `common`; each service crate has one `const`.
#[derive(Debug, Clone, Copy)]
pub struct Descriptor {
    /// `…-service`: the binary, the AMQP `app_id`, the log `service` field, the default
    /// `OTEL_SERVICE_NAME`, and the owner of one consumer queue of the [`Self::layout`].
    pub name: &'static str,
    /// The service's crate (`env!("CARGO_CRATE_NAME")`): its spans, with `common`'s, make
    /// up the saga's trace (see `trace::is_traced_span`).
    pub crate_name: &'static str,
    /// The port of the default `HTTP_ADDR` (on every interface).
    pub port: u16,
    /// The database of the default `DATABASE_URL`.
    pub database: &'static str,
    /// The OpenAPI document's description.
    pub description: &'static str,
    /// Every queue the published language puts on an exchange (`AMQP_EXCHANGE`), with
    /// its bindings: declared in full by every service at start (CONTRACT §4).
    pub layout: fn(exchange: &str) -> Layout,
}
