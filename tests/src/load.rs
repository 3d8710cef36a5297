//! Orders posted continuously through a fault: a new `POST /api/orders` every tick, each
//! in its own task (one that hangs does not hold the next back), each outcome recorded
//! with when it was sent and answered — so a test can say what was accepted, refused or
//! left unanswered while the fault lasted, and wait for every accepted order to end.

use crate::TestStack;
use crate::api::order_body;
use ::contract::Service;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long one POST may wait for its answer before it counts as unanswered.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// What became of one POST.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// 201: the order's id.
    Accepted(String),
    /// Any other answer — a 503 while a dependency is away — which creates nothing
    /// (CONTRACT §9): its status and body.
    Refused(StatusCode, Value),
    /// No answer: the connection was refused or cut, or nothing came within 15 s. The
    /// order may exist or not.
    Unanswered(String),
}

/// One POST of the load.
#[derive(Debug, Clone)]
pub struct Posted {
    pub sent: Instant,
    pub answered: Instant,
    pub outcome: Outcome,
}

impl Posted {
    /// The order's id if it was accepted.
    pub fn accepted(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Accepted(id) => Some(id),
            _ => None,
        }
    }

    /// Sent and answered within `from..to`.
    pub fn within(&self, from: Instant, to: Instant) -> bool {
        from <= self.sent && self.answered <= to
    }
}

/// Orders being posted; [`Load::stop`] ends it.
pub struct Load {
    /// order-service's `POST /api/orders` URL; it moves when order-service restarts.
    target: Arc<Mutex<String>>,
    posted: Arc<Mutex<Vec<Posted>>>,
    stop: CancellationToken,
    ticker: tokio::task::JoinHandle<()>,
}

impl TestStack {
    /// Starts posting an order (one unit of product A) to order-service every `every`.
    pub fn post_orders_throughout(&self, every: Duration) -> Load {
        let target = Arc::new(Mutex::new(self.url(Service::Order, "/api/orders")));
        let posted = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let http = self.http.clone();
        let ticker = tokio::spawn({
            let (target, posted, stop) = (target.clone(), posted.clone(), stop.clone());
            async move {
                let body = order_body("customer-load", &[("product-A", 1)], 2.0);
                let mut posts = JoinSet::new();
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    let url = lock(&target).clone();
                    let request = http.post(url).json(&body).timeout(ANSWER_WITHIN);
                    let posted = posted.clone();
                    posts.spawn(async move {
                        let sent = Instant::now();
                        let outcome = outcome_of(request.send().await).await;
                        lock(&posted).push(Posted {
                            sent,
                            answered: Instant::now(),
                            outcome,
                        });
                    });
                    while posts.try_join_next().is_some() {}
                }
                while posts.join_next().await.is_some() {}
            }
        });
        Load {
            target,
            posted,
            stop,
            ticker,
        }
    }
}

async fn outcome_of(sent: reqwest::Result<reqwest::Response>) -> Outcome {
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Outcome::Unanswered(error.to_string()),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(error) => return Outcome::Unanswered(format!("{status}, then {error}")),
    };
    match (status, body["id"].as_str()) {
        (StatusCode::CREATED, Some(id)) => Outcome::Accepted(id.to_owned()),
        _ => Outcome::Refused(status, body),
    }
}

impl Load {
    /// Posts go to order-service's current address from now on (after a restart).
    pub fn retarget(&self, stack: &TestStack) {
        *lock(&self.target) = stack.url(Service::Order, "/api/orders");
    }

    /// Every POST answered (or given up on) so far.
    pub fn posted(&self) -> Vec<Posted> {
        lock(&self.posted).clone()
    }

    /// The ids of the orders accepted so far.
    pub fn accepted(&self) -> Vec<String> {
        accepted(&self.posted())
    }

    /// Waits until `more` orders have been accepted beyond those accepted now.
    pub async fn await_more_accepted(&self, more: usize) {
        let before = self.accepted().len();
        crate::eventually(
            &format!("{more} more orders accepted"),
            Duration::from_secs(60),
            || async {
                match self.accepted().len() - before {
                    n if n >= more => Ok(()),
                    n => Err(format!("{n} accepted; posted: {}", summary(&self.posted()))),
                }
            },
        )
        .await;
    }

    /// Stops posting, waits for the POSTs in flight, and returns every one.
    pub async fn stop(self) -> Vec<Posted> {
        self.stop.cancel();
        self.ticker.await.expect("the load's task ends");
        lock(&self.posted).clone()
    }
}

/// The ids of the accepted orders among `posted`.
pub fn accepted(posted: &[Posted]) -> Vec<String> {
    posted
        .iter()
        .filter_map(|p| p.accepted().map(str::to_owned))
        .collect()
}

/// "12 accepted, 3 refused (503), 1 unanswered", for messages.
pub fn summary(posted: &[Posted]) -> String {
    let mut accepted = 0;
    let mut refused = std::collections::BTreeMap::<u16, usize>::new();
    let mut unanswered = 0;
    for post in posted {
        match &post.outcome {
            Outcome::Accepted(_) => accepted += 1,
            Outcome::Refused(status, _) => *refused.entry(status.as_u16()).or_default() += 1,
            Outcome::Unanswered(_) => unanswered += 1,
        }
    }
    format!("{accepted} accepted, refused {refused:?}, {unanswered} unanswered")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
