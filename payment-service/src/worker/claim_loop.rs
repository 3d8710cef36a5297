//! The worker's loop: claims due rows as call slots free up and as the breaker lets them
//! out, and works each in a task of its own.

use super::{CLAIM_BATCH, Left, POLL, PaymentWorker, wake};
use crate::breaker::{Gate, PROBE_WAIT, Permit};
use crate::payments::{self, PaymentRow};
use common::trace::TraceHeaders;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

impl PaymentWorker {
    /// Works until `stop`; in-flight provider calls finish (each bounded by its timeout).
    /// Rows are claimed as calls free up, so one slow provider call holds back no other.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let this = self;
        let bell = this.wake.bell.clone();
        let listener = tokio::spawn(wake::listen(this.store.clone(), bell.clone(), stop.clone()));
        tracing::info!(provider = %this.provider.describe(), "payment worker started");
        this.log_unfinished().await;
        let slots = this.slots.clone();
        while !stop.is_cancelled() {
            // The slots are taken before the claim: the consumer, which starts first
            // attempts on slots of its own, cannot take them between the claim and the call.
            let free = slots.available_permits().min(CLAIM_BATCH);
            let taken = match free {
                0 => None,
                n => slots.clone().try_acquire_many_owned(n as u32).ok(),
            };
            let Some(mut taken) = taken else {
                // Every slot is busy: the step that frees one rings the bell. Asking the
                // database meanwhile would only spin.
                tokio::select! {
                    _ = bell.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.cancelled() => {}
                }
                continue;
            };
            // What the breaker lets out: as many rows as there are free slots, the one row
            // of the probe, or none for a while (the rows stay due, their attempts unused).
            let (limit, probe) = match this.breaker.gate() {
                (Gate::Pass, _) => (free, None),
                (Gate::Probe, probe) => (1, probe),
                (Gate::Wait(wait), _) => {
                    tokio::select! {
                        _ = bell.notified() => {}
                        _ = tokio::time::sleep(wait.unwrap_or(PROBE_WAIT)) => {}
                        _ = stop.cancelled() => {}
                    }
                    continue;
                }
            };
            let claimed = payments::claim_due(this.store.pool(), limit as i64, this.lease).await;
            let wait = match claimed {
                Ok(rows) if rows.len() >= limit && probe.is_none() => {
                    this.spawn_steps(rows, None, &mut taken);
                    continue;
                }
                Ok(rows) => {
                    // Nothing more is due now: the consumer may start first attempts again.
                    // A probe that found no row is given back as the permit drops. Rows due
                    // later from this worker's steps wake it on time; other replicas' (and
                    // rows whose worker died) within a POLL.
                    this.wake.caught_up();
                    this.spawn_steps(rows, probe, &mut taken);
                    this.wake.until_soonest().min(POLL)
                }
                Err(error) => {
                    tracing::warn!(%error, "payment worker cannot read its rows; trying again");
                    POLL
                }
            };
            tokio::select! {
                _ = bell.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => {}
            }
        }
        this.in_flight.close();
        this.in_flight.wait().await;
        let _ = listener.await;
        tracing::info!("payment worker stopped");
    }

    /// Works each claimed row in its own task on one of the `taken` slots (what is left of
    /// them goes back as they drop), the first on the breaker's `probe` if there is one.
    fn spawn_steps(
        self: &Arc<Self>,
        rows: Vec<PaymentRow>,
        mut probe: Option<Permit>,
        taken: &mut OwnedSemaphorePermit,
    ) {
        for row in rows {
            let permit = probe.take();
            let Some(slot) = taken.split(1) else {
                // Claims never exceed the slots taken; should one, the row is due again
                // when its lease ends. (Releasing it would make it due never: `release` is
                // for rows with nothing left to do.)
                tracing::warn!(order_id = %row.order_id, "claimed a payment with no free slot; it is taken up again after its lease");
                continue;
            };
            self.spawn_step(row, permit, slot);
        }
    }

    /// Works one row in its own task on `slot`, with `permit` if the breaker's leave was
    /// taken already; a step that leaves its row due again soon (a declined attempt's
    /// backoff) or that was the probe (the breaker closed, or opened again) rings the bell.
    pub(super) fn spawn_step(
        self: &Arc<Self>,
        row: PaymentRow,
        permit: Option<Permit>,
        slot: OwnedSemaphorePermit,
    ) {
        let this = self.clone();
        // The step continues the trace of the message that asked for the payment.
        let span = tracing::info_span!(
            "payment",
            order_id = %row.order_id,
            otel.name = "payment step",
        );
        TraceHeaders {
            traceparent: row.traceparent.clone(),
            tracestate: row.tracestate.clone(),
        }
        .continue_in(&span);
        self.in_flight.spawn(
            async move {
                let was_probe = permit.as_ref().is_some_and(Permit::is_probe);
                let left = this.step(row, permit).await.unwrap_or_else(|error| {
                    tracing::warn!(%error, "payment step failed; it is taken up again after its lease");
                    Left::Nothing
                });
                drop(slot);
                // A loop that stopped claiming for want of a slot waits for this one; one
                // that waits for the probe looks at the breaker again.
                if let Left::Later(delay) = left {
                    this.wake.due_after(delay);
                }
                if left != Left::Nothing
                    || was_probe
                    || this.slots.available_permits() == 1
                {
                    this.wake.bell.notify_one();
                }
            }
            .instrument(span),
        );
    }
}
