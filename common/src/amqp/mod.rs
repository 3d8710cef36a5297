//! RabbitMQ: one supervised connection per service ([`broker`], [`nodes`], over TLS with
//! [`tls`]), the topology
//! every service declares ([`topology`]), publishing with confirms ([`publish`]), the
//! consumer loop ([`consumer`]), the headers a failing message gathers ([`headers`]) and
//! the dead-letter queues ([`dead_letters`]).

pub mod broker;
pub mod consumer;
pub mod dead_letters;
pub mod headers;
pub mod nodes;
pub mod publish;
pub mod tls;
pub mod topology;
