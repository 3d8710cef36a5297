//! The stand-in system of one run: scratch schemas, the run's exchange and queues, the four
//! services' pools, connections and publishers, the intake and the five hops — started
//! together, stopped together, and removed from both servers at the end whatever happened.

use super::broker::Topology;
use super::consumer::Consumer;
use super::failure::Failure;
use super::hops::Hop;
use super::intake::Intake;
use super::schema::{self, Database};
use super::service::Service;
use super::tracker::Tracker;
use lapin::{Connection, ConnectionProperties};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use uuid::Uuid;

/// How long a saga may take to end once it is awaited: in a drain, sagas end roughly in
/// the order they were posted, so this much time without the awaited one ending means the
/// run is stuck.
const SAGA_TIMEOUT: Duration = Duration::from_secs(30);

pub struct System {
    /// Names the schemas (`<run>_<service>`) and the exchange (`<run>`).
    pub run: String,
    database_url: String,
    amqp_url: String,
    services: Vec<Arc<Service>>,
    client: Client,
    /// Every background task: publishers, confirm waiters, outbox cleaners, the intake,
    /// the hops' consumers.
    tasks: JoinSet<()>,
}

/// What a "client" needs to run sagas; cheap to clone.
#[derive(Clone)]
pub struct Client {
    intake: Intake,
    tracker: Arc<Tracker>,
    failure: Failure,
}

/// A posted order whose saga may still be running.
pub struct Placed {
    pub posted: Instant,
    ended: oneshot::Receiver<Instant>,
}

impl Client {
    /// Posts one order; returns once it is committed, as a POST's answer would.
    pub async fn place(&self) -> Result<Placed, String> {
        let order_id = Uuid::now_v7();
        let ended = self.tracker.expect(order_id);
        let posted = Instant::now();
        tokio::select! {
            written = self.intake.post(order_id) => written?,
            reason = self.failure.failed() => return Err(reason),
        }
        Ok(Placed { posted, ended })
    }

    /// Waits until the saga of `placed` ended; when it was posted and when its last
    /// notification committed.
    pub async fn ended(&self, placed: Placed) -> Result<(Instant, Instant), String> {
        tokio::select! {
            ended = placed.ended => ended
                .map(|ended| (placed.posted, ended))
                .map_err(|_| "the saga's tracker is gone".to_owned()),
            reason = self.failure.failed() => Err(reason),
            _ = tokio::time::sleep(SAGA_TIMEOUT) => {
                Err(format!("a saga did not end within {SAGA_TIMEOUT:?} of being awaited"))
            }
        }
    }

    /// Posts one order and waits for its saga.
    pub async fn saga(&self) -> Result<(Instant, Instant), String> {
        let placed = self.place().await?;
        self.ended(placed).await
    }
}

impl System {
    pub async fn start(database_url: &str, amqp_url: &str) -> Result<Self, String> {
        let run = format!(
            "loadgen_saga_{}",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        match Self::build(&run, database_url, amqp_url).await {
            Ok(system) => Ok(system),
            Err(error) => {
                let _ = remove(&run, database_url, amqp_url).await;
                Err(error)
            }
        }
    }

    async fn build(run: &str, database_url: &str, amqp_url: &str) -> Result<Self, String> {
        schema::create(database_url, run).await?;
        let topology = Topology {
            exchange: run.to_owned(),
        };
        with_channel(amqp_url, async |channel| topology.declare(channel).await).await?;

        let failure = Failure::new();
        let mut tasks = JoinSet::new();
        let mut services = HashMap::new();
        for database in Database::ALL {
            let service = Service::start(
                database,
                run,
                database_url,
                amqp_url,
                &topology.exchange,
                &failure,
                &mut tasks,
            )
            .await?;
            services.insert(database, Arc::new(service));
        }
        let tracker = Arc::new(Tracker::default());
        for hop in Hop::ALL {
            let consumer = Consumer {
                hop,
                queue: topology.queue(hop),
                service: services[&hop.service()].clone(),
                tracker: tracker.clone(),
                failure: failure.clone(),
            };
            tasks.spawn(consumer.run());
        }
        let intake = Intake::start(services[&Database::Order].clone(), &failure, &mut tasks);
        Ok(Self {
            run: run.to_owned(),
            database_url: database_url.to_owned(),
            amqp_url: amqp_url.to_owned(),
            services: services.into_values().collect(),
            client: Client {
                intake,
                tracker,
                failure,
            },
            tasks,
        })
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Stops everything and removes the run's schemas, queues and exchange.
    pub async fn stop(mut self) -> Result<(), String> {
        // The measurement is over: what is still in flight (outbox deletes) goes with the
        // schemas.
        self.tasks.shutdown().await;
        for service in &self.services {
            service.close().await;
        }
        remove(&self.run, &self.database_url, &self.amqp_url).await
    }
}

/// Deletes the run's queues and exchange and drops its schemas.
async fn remove(run: &str, database_url: &str, amqp_url: &str) -> Result<(), String> {
    let topology = Topology {
        exchange: run.to_owned(),
    };
    let broker = with_channel(amqp_url, async |channel| topology.delete(channel).await).await;
    let database = schema::drop(database_url, run).await;
    broker.and(database)
}

/// Runs `work` on a channel of a connection of its own, closed afterwards.
async fn with_channel(
    amqp_url: &str,
    work: impl AsyncFnOnce(&lapin::Channel) -> Result<(), lapin::Error>,
) -> Result<(), String> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .map_err(|e| format!("RabbitMQ at {amqp_url}: {e}"))?;
    let outcome = match connection.create_channel().await {
        Ok(channel) => work(&channel).await,
        Err(error) => Err(error),
    };
    let _ = connection.close(200, "calibrated".into()).await;
    outcome.map_err(|e| format!("the calibration topology on RabbitMQ: {e}"))
}
