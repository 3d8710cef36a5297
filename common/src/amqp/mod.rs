//! RabbitMQ: one supervised connection per service, the topology every service declares,
//! publishing with confirms, and the consumer loop.

pub mod broker;
pub mod consumer;
pub mod dead_letters;
pub mod headers;
pub mod nodes;
pub mod publish;
pub mod topology;
