//! Learns when sagas end: a queue of loadgen's own, bound to `order.confirmed` and
//! `order.cancelled`, consumed without acks (it is exclusive and auto-deleted). The routing
//! keys and the bodies are `contract`'s, the services' published language.

use contract::events::{Envelope, Event, routing_key};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How a saga ended, and when loadgen heard of it.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    pub at: Instant,
    pub completed: bool,
}

pub struct Watcher {
    endings: Arc<Mutex<HashMap<Uuid, Ending>>>,
    _connection: Connection,
}

impl Watcher {
    pub async fn start(amqp_url: &str, exchange: &str) -> Result<Self, String> {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default())
            .await
            .map_err(|e| format!("RabbitMQ at {amqp_url}: {e}"))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| e.to_string())?;
        let queue = format!("loadgen-{}", Uuid::new_v4().simple());
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        channel
            .queue_declare(queue.as_str().into(), options, FieldTable::default())
            .await
            .map_err(|e| e.to_string())?;
        for key in [routing_key::ORDER_CONFIRMED, routing_key::ORDER_CANCELLED] {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| format!("binding to exchange {exchange}: {e}"))?;
        }
        let options = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let mut deliveries = channel
            .basic_consume(
                queue.as_str().into(),
                "loadgen".into(),
                options,
                FieldTable::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let endings: Arc<Mutex<HashMap<Uuid, Ending>>> = Arc::default();
        let sink = endings.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = deliveries.next().await {
                let at = Instant::now();
                let Ok(envelope) = Envelope::from_json(&delivery.data) else {
                    continue;
                };
                let completed = match envelope.event {
                    Event::OrderConfirmed(_) => true,
                    Event::OrderCancelled(_) => false,
                    _ => continue,
                };
                sink.lock()
                    .expect("not poisoned")
                    .entry(envelope.event.order_id().as_uuid())
                    .or_insert(Ending { at, completed });
            }
        });
        Ok(Self {
            endings,
            _connection: connection,
        })
    }

    pub fn ended_count(&self, orders: &[Uuid]) -> usize {
        let endings = self.endings.lock().expect("not poisoned");
        orders.iter().filter(|id| endings.contains_key(id)).count()
    }

    /// Waits until every order has ended or `timeout` passes; returns the endings seen.
    pub async fn wait_for(
        &self,
        orders: &[Uuid],
        timeout: Duration,
        show: bool,
    ) -> HashMap<Uuid, Ending> {
        let bar = if show {
            ProgressBar::new(orders.len() as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("settling {bar:40} {pos}/{len} sagas ended")
                .expect("a valid template"),
        );
        let deadline = Instant::now() + timeout;
        loop {
            let ended = self.ended_count(orders);
            bar.set_position(ended as u64);
            if ended == orders.len() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bar.finish_and_clear();
        let endings = self.endings.lock().expect("not poisoned");
        orders
            .iter()
            .filter_map(|id| endings.get(id).map(|e| (*id, *e)))
            .collect()
    }
}
