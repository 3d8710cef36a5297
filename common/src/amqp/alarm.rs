//! RabbitMQ's resource alarms as a state of the connection.
//!
//! When a node runs low on memory or disk it blocks every connection that publishes
//! (`connection.blocked`) until the alarm clears (`connection.unblocked`). Nothing is wrong
//! with the connection meanwhile, and lapin sends nothing on it (no publish, no declaration,
//! no ack) until it is unblocked: a block is a pause, not a failure. [`Alarm`] follows the
//! connection's events so that publishing and declaring can wait it out instead of timing
//! out and giving the connection up, and `/ready` can say `"broker": "blocked"`.
//!
//! [`Alarm::within`] is the timeout every broker operation uses: its clock runs only while
//! the connection is not blocked, so a link that stops answering is still given up after the
//! same time, and a blocked one never is.

use futures_util::StreamExt;
use lapin::{Connection, Event};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Whether the broker lets the connection send, and since when.
#[derive(Debug, Clone)]
pub enum Flow {
    /// Not blocked (since the connection opened or the last block cleared).
    Open { since: Instant },
    /// Blocked by a resource alarm; `reason` is RabbitMQ's (`low on memory`, `low on disk`).
    Blocked { since: Instant, reason: String },
}

impl Flow {
    pub fn is_blocked(&self) -> bool {
        matches!(self, Self::Blocked { .. })
    }
}

/// A broker operation that did not finish within its time while the connection was open.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("RabbitMQ did not answer within {0:?} (not counting time blocked by an alarm)")]
pub struct TimedOut(pub Duration);

/// The block state of one connection, kept by a task that follows its events; the task ends
/// with the last clone of the [`super::broker::Link`] holding this.
#[derive(Debug)]
pub struct Alarm {
    flow: watch::Receiver<Flow>,
    _watcher: DropGuard,
}

impl Alarm {
    /// Follows `connection`'s blocks from now on; `node` names it in the logs.
    pub(crate) fn watch(connection: &Connection, node: &str) -> Self {
        let since = Instant::now();
        let initial = if connection.status().blocked() {
            Flow::Blocked {
                since,
                reason: "blocked when the connection opened".to_owned(),
            }
        } else {
            Flow::Open { since }
        };
        let (sender, flow) = watch::channel(initial);
        let stop = CancellationToken::new();
        tokio::spawn(follow(
            connection.events_listener(),
            sender,
            node.to_owned(),
            stop.clone(),
        ));
        Self {
            flow,
            _watcher: stop.drop_guard(),
        }
    }

    /// The state right now.
    pub fn flow(&self) -> Flow {
        self.flow.borrow().clone()
    }

    pub fn is_blocked(&self) -> bool {
        self.flow.borrow().is_blocked()
    }

    /// Resolves once the connection is not blocked (at once if it is not).
    pub async fn cleared(&self) {
        let mut flow = self.flow.clone();
        // An ended watcher (the connection is gone) leaves nothing to wait for.
        let _ = flow.wait_for(|flow| !flow.is_blocked()).await;
    }

    /// Runs `work` until it ends or `limit` has passed while the connection was not blocked.
    pub async fn within<F: Future>(&self, limit: Duration, work: F) -> Result<F::Output, TimedOut> {
        within(self.flow.clone(), limit, work).await
    }
}

/// [`Alarm::within`] on a receiver of the connection's [`Flow`].
async fn within<F: Future>(
    mut flow: watch::Receiver<Flow>,
    limit: Duration,
    work: F,
) -> Result<F::Output, TimedOut> {
    let mut work = std::pin::pin!(work);
    let mut left = limit;
    loop {
        let blocked = flow.borrow_and_update().is_blocked();
        let started = Instant::now();
        tokio::select! {
            output = &mut work => return Ok(output),
            _ = tokio::time::sleep(left), if !blocked => return Err(TimedOut(limit)),
            changed = flow.changed() => {
                if !blocked {
                    left = left.saturating_sub(started.elapsed());
                }
                if changed.is_err() {
                    // No more news of blocks: the plain clock for the rest.
                    return tokio::time::timeout(left, work).await.map_err(|_| TimedOut(limit));
                }
            }
        }
    }
}

/// Keeps `sender` up to date with the connection's blocks until `stop` or the events end.
async fn follow(
    events: impl futures_util::Stream<Item = Event> + Send + 'static,
    sender: watch::Sender<Flow>,
    node: String,
    stop: CancellationToken,
) {
    let mut events = std::pin::pin!(events);
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => break,
            event = events.next() => event,
        };
        match event {
            None => break,
            Some(Event::ConnectionBlocked(reason)) => {
                tracing::warn!(%node, %reason, "RabbitMQ blocked the connection (resource alarm); publishing and declaring wait until it clears");
                metrics::gauge!("rabbitmq_blocked").set(1.0);
                sender.send_replace(Flow::Blocked {
                    since: Instant::now(),
                    reason,
                });
            }
            Some(Event::ConnectionUnblocked) => {
                let blocked_for = match &*sender.borrow() {
                    Flow::Blocked { since, .. } => since.elapsed(),
                    Flow::Open { .. } => Duration::ZERO,
                };
                tracing::info!(%node, ?blocked_for, "RabbitMQ unblocked the connection; publishing resumes");
                metrics::gauge!("rabbitmq_blocked").set(0.0);
                sender.send_replace(Flow::Open {
                    since: Instant::now(),
                });
            }
            Some(_) => {}
        }
    }
    if sender.borrow().is_blocked() {
        metrics::gauge!("rabbitmq_blocked").set(0.0);
        sender.send_replace(Flow::Open {
            since: Instant::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Flow {
        Flow::Open {
            since: Instant::now(),
        }
    }

    fn blocked() -> Flow {
        Flow::Blocked {
            since: Instant::now(),
            reason: "low on memory".into(),
        }
    }

    #[tokio::test]
    async fn an_open_link_that_does_not_answer_times_out() {
        let (_sender, flow) = watch::channel(open());
        let answer = within(
            flow,
            Duration::from_millis(100),
            std::future::pending::<()>(),
        )
        .await;
        assert!(answer.is_err());
    }

    #[tokio::test]
    async fn nothing_times_out_while_the_connection_is_blocked() {
        let (_sender, flow) = watch::channel(blocked());
        let work = tokio::time::sleep(Duration::from_millis(500));
        assert!(within(flow, Duration::from_millis(100), work).await.is_ok());
    }

    #[tokio::test]
    async fn time_blocked_does_not_count_against_the_limit() {
        let (sender, flow) = watch::channel(open());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            sender.send_replace(blocked());
            tokio::time::sleep(Duration::from_millis(1600)).await;
            sender.send_replace(open());
            // Kept until the work is over, so the flow does not end.
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        // 2 s of work, 1.6 s of it blocked: 0.4 s counts against 1 s.
        let work = tokio::time::sleep(Duration::from_secs(2));
        assert!(within(flow, Duration::from_secs(1), work).await.is_ok());
    }

    #[tokio::test]
    async fn a_block_that_clears_lets_the_clock_run_on() {
        let (sender, flow) = watch::channel(blocked());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            sender.send_replace(open());
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let started = Instant::now();
        let answer = within(
            flow,
            Duration::from_millis(200),
            std::future::pending::<()>(),
        )
        .await;
        assert!(answer.is_err());
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
}
