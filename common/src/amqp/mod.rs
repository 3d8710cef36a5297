//! RabbitMQ: one supervised connection per service ([`broker`], [`nodes`], over TLS with
//! [`tls`]; why a node could not be used: [`open_error`]), the live [`link`] everyone uses
//! and the resource alarms that may block it ([`alarm`]), the topology every service
//! declares ([`topology`]), publishing with confirms ([`publish`]), the headers a failing
//! message gathers ([`headers`]) and the dead-letter queues ([`dead_letters`]). The
//! consumer loop, which applies messages in units of work, is the `consumer` module, a layer above.

pub mod alarm;
pub mod broker;
pub mod dead_letters;
pub mod headers;
pub mod link;
pub mod nodes;
pub mod open_error;
pub mod publish;
pub mod tls;
pub mod topology;
