//! The saga-shaped ceiling: the system's whole message pattern with no service code — raw
//! sqlx and lapin, the same servers, the same rows — so a load run's figures can be read as
//! a share of what this box can do for this pattern.
//!
//! Per saga, as the real happy path: 4 persistent JSON messages (~300 bytes, delivery mode
//! 2, `application/json`), each published `mandatory` with a publisher confirm, fanned out
//! to 5 deliveries (`order.created` → inventory; `inventory.reserved` → payment;
//! `payment.processed` → order and notification; `order.confirmed` → notification), each
//! acked on its own after its commit; and one commit per hop with the rows the services
//! write — the POST's order and outbox rows, then each hop's inbox claim, state change and
//! outbox row, and the bulk deletes of confirmed outbox rows. Hops take what is waiting in
//! batches (up to 32 deliveries per transaction, prefetch 64, two batches at once) and the
//! POSTs are group-committed, as the services do, so this is a ceiling of the design, not
//! of a naive one. What the services do besides is left out: HTTP, tracing, metrics, the
//! payment worker, the timeout sweeper, load shedding.
//!
//! It runs in this process against a scratch schema per service in the calibration
//! database and a fresh exchange and queues, all removed at the end. It is driven as
//! bench/outside.py drives the real system: a closed loop of [`drive::CLIENTS`] posting
//! clients, then a drain, gives sagas per second; a paced step at [`drive::PACED_RATE`]/s
//! gives the latency from the post to the saga's last notification committed. Both report
//! CPU per saga over PostgreSQL, RabbitMQ and this process.
//!
//! # Layout
//! - [`system`]: starting and removing the stand-in system; a client's saga.
//! - [`drive`]: the closed loop and the paced step.
//! - [`intake`]: the POST. [`hops`]: what each consumer writes. [`consumer`]: batching,
//!   the inbox claim, the transaction and the acks.
//! - [`broker`]: exchange, queues, bindings and the publishers. [`outbox`]: its rows.
//! - [`schema`]: the scratch tables. [`message`]: bodies and properties.
//! - [`tracker`]: when a saga ends. [`failure`]: the first error of a background task.

mod broker;
mod consumer;
mod drive;
mod failure;
mod hops;
mod intake;
mod message;
mod outbox;
mod schema;
mod service;
mod system;
mod tracker;

use crate::calibrate::cpu::CpuUse;
use broker::Topology;
use drive::{CLIENTS, ClosedLoop, PACED_RATE, Paced};
use schema::Database;
use serde_json::{Value, json};
use std::time::Duration;
use system::System;

/// Publishes and deliveries of one saga (see the module doc).
const PUBLISHES_PER_SAGA: usize = 4;
const DELIVERIES_PER_SAGA: usize = 5;

/// The saga-shaped figures of one run.
#[derive(Debug)]
pub struct SagaShape {
    /// The scratch names: schemas `<run>_<service>`, exchange `<run>`.
    run: String,
    window: Duration,
    closed: ClosedLoop,
    paced: Paced,
}

/// Measures both steps, each for `window`, and removes the stand-in system again.
pub async fn measure(
    database_url: &str,
    amqp_url: &str,
    window: Duration,
) -> Result<SagaShape, String> {
    let system = System::start(database_url, amqp_url).await?;
    let client = system.client();
    let measured = async {
        drive::warm_up(&client).await?;
        let closed = drive::closed_loop(&client, window).await?;
        let paced = drive::paced(&client, window).await?;
        Ok::<_, String>((closed, paced))
    }
    .await;
    let run = system.run.clone();
    let removed = system.stop().await;
    let (closed, paced) = measured?;
    removed?;
    Ok(SagaShape {
        run,
        window,
        closed,
        paced,
    })
}

impl SagaShape {
    /// The line printed beside the raw ceilings.
    pub fn line(&self) -> String {
        let Self { closed, paced, .. } = self;
        format!(
            "Saga shape  {:>8.0} sagas/s closed loop ({CLIENTS} clients), CPU {:.2} ms/saga; \
             at {PACED_RATE}/s p50 {:.1} ms p99 {:.1} ms, CPU {:.2} ms/saga",
            closed.sagas_per_s,
            closed.cpu_ms_per_saga.total(),
            paced.latency_ms.p50,
            paced.latency_ms.p99,
            paced.cpu_ms_per_saga.total(),
        )
    }

    /// What the run created on the servers (and removed again).
    fn scratch(&self) -> Value {
        let topology = Topology {
            exchange: self.run.clone(),
        };
        json!({
            "exchange": topology.exchange,
            "queues": topology.queues(),
            "schemas": Database::ALL.map(|database| database.schema(&self.run)),
        })
    }

    pub fn to_json(&self) -> Value {
        let cpu = |used: &CpuUse| {
            json!({
                "total": used.total(),
                "postgres": used.postgres,
                "rabbitmq": used.rabbitmq,
                "loadgen": used.loadgen,
            })
        };
        json!({
            "scratch": self.scratch(),
            "publishes_per_saga": PUBLISHES_PER_SAGA,
            "deliveries_per_saga": DELIVERIES_PER_SAGA,
            "closed_loop": {
                "clients": CLIENTS,
                "posting_seconds": self.window.as_secs_f64(),
                "seconds": self.closed.seconds,
                "sagas": self.closed.sagas,
                "sagas_per_s": self.closed.sagas_per_s,
                "cpu_ms_per_saga": cpu(&self.closed.cpu_ms_per_saga),
            },
            "paced": {
                "rate_per_s": PACED_RATE,
                "sagas": self.paced.sagas,
                "latency_ms": self.paced.latency_ms,
                "cpu_ms_per_saga": cpu(&self.paced.cpu_ms_per_saga),
            },
        })
    }
}
