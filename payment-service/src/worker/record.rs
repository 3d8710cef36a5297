//! Recording the provider's answers: whatever answers are waiting — one at low load, dozens
//! under load — go into one transaction: the rows locked by their leases, one update per
//! kind of answer, the events in one outbox insert, one commit. A payment's answer used to
//! cost a transaction of its own; under load this is the worker's largest saving.
//!
//! An answer counts only while its worker still holds the row (its lease) and the row is
//! still at the attempt that was asked; otherwise it is dropped, as another worker or a
//! cancellation has moved the row on. If a group cannot be written, each answer is tried
//! on its own, so one bad answer never holds back the others.

use super::{Left, MAX_UNKNOWN_DELAY};
use crate::payments::{self, PaymentRow, PaymentStatus, answers::Batch};
use crate::provider::{ChargeAnswer, RefundAnswer, Unknown};
use common::retry::Backoff;
use common::store::{Store, UnitOfWork};
use contract::OrderId;
use contract::events::{Event, PaymentFailed, PaymentProcessed, PaymentRefunded};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Answers written in one transaction at most.
const MAX_GROUP: usize = 64;

/// What the provider said about one claimed row.
pub(super) struct Answer {
    pub order_id: OrderId,
    pub lease: Uuid,
    /// The step's span: what the answer leads to is logged, and its event traced, in it.
    pub span: tracing::Span,
    pub said: Said,
}

pub(super) enum Said {
    /// To try `attempt` of the charge, under `key`.
    Charge {
        attempt: u32,
        key: String,
        answer: ChargeAnswer,
    },
    /// To the refund, under `key`.
    Refund { key: String, answer: RefundAnswer },
}

/// The rules an answer is recorded by.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    pub max_attempts: u32,
    pub retry_base: Duration,
}

/// Hands answers to the recording task; cheap to clone.
#[derive(Clone)]
pub(super) struct Recorder {
    queue: mpsc::UnboundedSender<(Answer, oneshot::Sender<Result<Left, sqlx::Error>>)>,
}

impl Recorder {
    /// Starts the recording task; it ends when every `Recorder` is dropped.
    pub(super) fn start(store: Store, rules: Rules) -> Self {
        let (queue, answers) = mpsc::unbounded_channel();
        tokio::spawn(record_loop(store, rules, answers));
        Self { queue }
    }

    /// Records `answer` with whatever others are waiting; says what its row has left.
    pub(super) async fn record(&self, answer: Answer) -> Result<Left, sqlx::Error> {
        let (reply, recorded) = oneshot::channel();
        if self.queue.send((answer, reply)).is_err() {
            return Err(sqlx::Error::PoolClosed);
        }
        recorded.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }
}

type Waiting = (Answer, oneshot::Sender<Result<Left, sqlx::Error>>);

async fn record_loop(store: Store, rules: Rules, mut answers: mpsc::UnboundedReceiver<Waiting>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while answers.recv_many(&mut group, MAX_GROUP).await > 0 {
        let waiting: Vec<Waiting> = std::mem::take(&mut group);
        let (answers, replies): (Vec<Answer>, Vec<_>) = waiting.into_iter().unzip();
        let results = match write(&store, &rules, &answers).await {
            Ok(lefts) => lefts.into_iter().map(Ok).collect(),
            Err(error) if answers.len() > 1 => {
                tracing::warn!(%error, answers = answers.len(), "a group of payment answers failed; recording them one by one");
                let mut results = Vec::with_capacity(answers.len());
                for answer in &answers {
                    let one = write(&store, &rules, std::slice::from_ref(answer)).await;
                    results.push(one.map(|mut lefts| lefts.pop().unwrap_or(Left::Nothing)));
                }
                results
            }
            Err(error) => vec![Err(error)],
        };
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// One transaction for `answers`; what each row has left, in order.
async fn write(store: &Store, rules: &Rules, answers: &[Answer]) -> Result<Vec<Left>, sqlx::Error> {
    let mut uow = store.begin().await?;
    let held: Vec<(OrderId, Uuid)> = answers.iter().map(|a| (a.order_id, a.lease)).collect();
    if held.len() > 1 {
        // The consumer's batches take these locks before any row; a group that locked its
        // rows without them could hold X and wait for Y while a batch holds Y and waits for X.
        let orders: Vec<OrderId> = held.iter().map(|(order_id, _)| *order_id).collect();
        payments::lock_orders(uow.conn(), &orders).await?;
    }
    let rows: HashMap<OrderId, PaymentRow> = payments::lock_leased_all(uow.conn(), &held)
        .await?
        .into_iter()
        .map(|row| (row.order_id, row))
        .collect();
    let mut batch = Batch::default();
    let mut lefts = Vec::with_capacity(answers.len());
    for answer in answers {
        let _entered = answer.span.enter();
        // The rows were locked by (order, lease), but two answers of one order — a stale
        // one from a lease that ran out and the one of the worker that claimed the row
        // again — may share this group, and both find the row: only the one whose lease it
        // still is counts.
        let held_still = rows
            .get(&answer.order_id)
            .filter(|row| row.lease == Some(answer.lease));
        let Some(now) = held_still else {
            tracing::info!("lease lost meanwhile; another worker finishes this payment");
            lefts.push(Left::Nothing);
            continue;
        };
        let (left, event) = decide(rules, now, &answer.said, &mut batch, &mut uow);
        if let Some((event, caused_by)) = event {
            uow.publish(event, caused_by);
        }
        lefts.push(left);
    }
    batch.write(uow.conn()).await?;
    uow.commit().await?;
    Ok(lefts)
}

/// What one answer does to its row (added to `batch`), the event it causes, and what the
/// row has left. Logged in the current (the step's) span once `uow` commits: a group that
/// fails, and is then written answer by answer, says each outcome once and only if it
/// happened.
fn decide(
    rules: &Rules,
    now: &PaymentRow,
    said: &Said,
    batch: &mut Batch,
    uow: &mut UnitOfWork,
) -> (Left, Option<(Event, Option<Uuid>)>) {
    let order_id = now.order_id;
    let amount = now.amount();
    match said {
        Said::Charge {
            attempt,
            key,
            answer,
        } => {
            let attempt = *attempt;
            let still_this_attempt = now.status == PaymentStatus::Pending
                && now.attempt_open
                && now.attempts() == attempt;
            if !still_this_attempt {
                return (Left::Nothing, None);
            }
            match answer {
                ChargeAnswer::Succeeded { charge_id } => {
                    batch.processed(order_id, charge_id);
                    let (charge_id, payment_id) = (charge_id.clone(), now.payment_id);
                    uow.after_commit(move || {
                        tracing::info!(attempt, %amount, %charge_id, %payment_id, "payment processed");
                    });
                    let event = Event::PaymentProcessed(PaymentProcessed {
                        order_id,
                        payment_id: now.payment_id,
                        amount,
                        attempts: attempt,
                    });
                    let left = if now.cancel_requested {
                        uow.after_commit(|| {
                            tracing::info!("the order was cancelled meanwhile; refund due");
                        });
                        Left::Due
                    } else {
                        Left::Nothing
                    };
                    (left, Some((event, now.reserved_event_id)))
                }
                ChargeAnswer::Declined { reason } if now.cancel_requested => {
                    batch.failed(
                        order_id,
                        format!("attempt {attempt} declined ({reason}); order cancelled"),
                    );
                    let reason = reason.clone();
                    uow.after_commit(move || {
                        tracing::info!(attempt, %reason, "payment declined and the order is cancelled; nothing charged");
                    });
                    (Left::Nothing, None)
                }
                ChargeAnswer::Declined { reason } if attempt >= rules.max_attempts => {
                    let failure = format!("Payment declined {attempt} times");
                    batch.failed(order_id, failure.clone());
                    let (last_reason, reason) = (reason.clone(), failure.clone());
                    uow.after_commit(move || {
                        tracing::info!(attempt, %last_reason, %reason, "payment failed");
                    });
                    let event = Event::PaymentFailed(PaymentFailed {
                        order_id,
                        amount,
                        reason: failure,
                        attempts: attempt,
                    });
                    (Left::Nothing, Some((event, now.reserved_event_id)))
                }
                ChargeAnswer::Declined { reason } => {
                    let delay = Backoff::nth_delay(rules.retry_base, attempt);
                    batch.declined(order_id, format!("declined: {reason}"), delay);
                    let (max_attempts, reason) = (rules.max_attempts, reason.clone());
                    uow.after_commit(move || {
                        tracing::info!(attempt, max_attempts, retry_in = ?delay, %reason, "payment declined; will retry");
                    });
                    (Left::Later(delay), None)
                }
                ChargeAnswer::Unknown(unknown) => {
                    let retry_in = ask_again_later(rules, now, unknown, key, batch);
                    (Left::Later(retry_in), None)
                }
            }
        }
        Said::Refund { key, answer } => {
            if !(now.refund_due() && now.refund_id.is_none()) {
                return (Left::Nothing, None);
            }
            match answer {
                RefundAnswer::Succeeded { refund_id } => {
                    batch.refunded(order_id, refund_id);
                    let refund_id = refund_id.clone();
                    uow.after_commit(move || {
                        tracing::info!(%amount, %refund_id, "payment refunded");
                    });
                    let event = Event::PaymentRefunded(PaymentRefunded {
                        order_id,
                        payment_id: now.payment_id,
                        amount,
                    });
                    (Left::Nothing, Some((event, now.cancel_event_id)))
                }
                RefundAnswer::Unknown(unknown) => {
                    let retry_in = ask_again_later(rules, now, unknown, key, batch);
                    (Left::Later(retry_in), None)
                }
            }
        }
    }
}

/// The outcome of the call under `key` (a charge attempt or the refund) is unknown: the
/// same key is asked again after a backoff that grows with each try, which it returns.
fn ask_again_later(
    rules: &Rules,
    now: &PaymentRow,
    unknown: &Unknown,
    key: &str,
    batch: &mut Batch,
) -> Duration {
    let tries = now.unknown_tries.max(0) as u32 + 1;
    let retry_in = Backoff::nth_delay(rules.retry_base, tries).min(MAX_UNKNOWN_DELAY);
    if unknown.client_bug {
        tracing::error!(reason = %unknown.reason, %key, ?retry_in, "the provider refused our request: a bug to look into; asking again with the same key, never a new one");
    } else {
        tracing::warn!(reason = %unknown.reason, %key, ?retry_in, "outcome unknown; will ask again with the same key");
    }
    batch.unknown(now.order_id, unknown.reason.clone(), retry_in);
    retry_in
}
