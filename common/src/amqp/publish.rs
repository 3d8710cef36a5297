//! Publishing with publisher confirms: a message counts as sent only once RabbitMQ has
//! written it (persistent, to a durable queue) and said so. Every publish is `mandatory`:
//! a message no queue takes (a binding or queue deleted by hand) comes back as
//! `basic.return` and counts as a failed publish, instead of vanishing.

use lapin::PublisherConfirm;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel};

/// Why a publish did not count.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("RabbitMQ is not connected")]
    NotConnected,
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ refused the message (negative confirm)")]
    Nacked,
    #[error("no queue takes messages routed {routing_key:?} on {exchange:?} ({reply})")]
    Returned {
        exchange: String,
        routing_key: String,
        reply: String,
    },
}

/// Sends one message and returns its pending confirm, so callers can pipeline many
/// publishes and then wait for all the confirms together.
pub(crate) async fn send(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<PublisherConfirm, PublishError> {
    Ok(channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            payload,
            properties,
        )
        .await?)
}

/// Waits for every confirm; any negative one, or any message returned unrouted, fails the
/// whole batch.
pub(crate) async fn confirmed(
    confirms: impl IntoIterator<Item = PublisherConfirm>,
) -> Result<(), PublishError> {
    let mut failure = None;
    for confirm in confirms {
        let confirmation = confirm.await?;
        let acked = confirmation.is_ack();
        if let Some(returned) = confirmation.take_message() {
            failure.get_or_insert(PublishError::Returned {
                exchange: returned.delivery.exchange.to_string(),
                routing_key: returned.delivery.routing_key.to_string(),
                reply: returned.reply_text.to_string(),
            });
        } else if !acked {
            failure.get_or_insert(PublishError::Nacked);
        }
    }
    failure.map_or(Ok(()), Err)
}
