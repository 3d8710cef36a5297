//! The numbers of a run: POST latency, load shed, end-to-end throughput, saga latency.

use crate::args::Args;
use crate::drive::{Run, SHED, Try};
use crate::watch::Ending;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct Report {
    pub orders: usize,
    pub concurrency: usize,
    pub offered_rate: Option<f64>,
    /// Orders per second the POSTs went out at (first tries, over the time from the first
    /// POST to the last answer).
    pub achieved_post_rate: f64,
    /// POST answers by status code (0: no answer), every try of every order.
    pub statuses: BTreeMap<u16, usize>,
    /// Every POST answer's latency, whatever the status.
    pub post_latency_ms: Percentiles,
    /// The latency of the POSTs answered 201 only.
    pub accepted_post_latency_ms: Percentiles,
    /// Orders accepted (201, or 200 for a replayed `Idempotency-Key`).
    pub accepted: usize,
    /// POSTs answered 503 (load shed, CONTRACT §9), every try of every order.
    pub shed: usize,
    /// 503 answers per second, over the time from the first POST to the last answer.
    pub shed_per_s: f64,
    /// The latency of the 503 answers: shedding must be fast.
    pub shed_latency_ms: Percentiles,
    /// Orders that took more than one POST (`--retry-shed`).
    pub retried_orders: usize,
    /// Sagas that reached COMPLETED or CANCELLED, per second, from the first POST to the
    /// last ending.
    pub throughput: f64,
    /// From the start of the order's first POST (so a retried order's wait counts) to the
    /// terminal event reaching loadgen; accepted orders only.
    pub saga_latency_ms: Percentiles,
    pub completed: usize,
    pub cancelled: usize,
    /// `--cancel-rate`: cancellations asked for, and how many were answered 200.
    pub cancels_asked: usize,
    pub cancels_done: usize,
    /// Accepted orders whose saga did not end within `--settle-secs`.
    pub unfinished: usize,
    pub duration_s: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub(crate) fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index].as_secs_f64() * 1000.0
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

impl Report {
    pub fn new(args: &Args, run: &Run, endings: &HashMap<Uuid, Ending>) -> Self {
        let tries: Vec<Try> = run.placed.iter().flat_map(|p| &p.tries).copied().collect();
        let mut statuses = BTreeMap::new();
        for answer in &tries {
            *statuses.entry(answer.status).or_insert(0) += 1;
        }
        let latencies = |status: Option<u16>| {
            let matching = tries
                .iter()
                .filter(|t| status.is_none_or(|s| t.status == s));
            Percentiles::of(matching.map(|t| t.latency).collect())
        };
        let shed = statuses.get(&SHED).copied().unwrap_or(0);
        let accepted: Vec<_> = run.placed.iter().filter(|p| p.id.is_some()).collect();
        let saga: Vec<Duration> = accepted
            .iter()
            .filter_map(|p| {
                endings
                    .get(&p.id?)
                    .map(|e| e.at.saturating_duration_since(p.started))
            })
            .collect();
        let last_ending = endings
            .values()
            .map(|e| e.at)
            .max()
            .unwrap_or(run.posted_until);
        let span = last_ending
            .saturating_duration_since(run.started)
            .as_secs_f64()
            .max(1e-9);
        let posting = run
            .posted_until
            .saturating_duration_since(run.started)
            .as_secs_f64()
            .max(1e-9);
        let completed = endings.values().filter(|e| e.completed).count();
        Self {
            orders: args.orders,
            concurrency: args.concurrency,
            offered_rate: args.rate,
            achieved_post_rate: run.placed.len() as f64 / posting,
            statuses,
            post_latency_ms: latencies(None),
            accepted_post_latency_ms: latencies(Some(201)),
            accepted: accepted.len(),
            shed,
            shed_per_s: shed as f64 / posting,
            shed_latency_ms: latencies(Some(SHED)),
            retried_orders: run.placed.iter().filter(|p| p.tries.len() > 1).count(),
            throughput: endings.len() as f64 / span,
            saga_latency_ms: Percentiles::of(saga),
            completed,
            cancelled: endings.len() - completed,
            cancels_asked: run.placed.iter().filter(|p| p.cancel.is_some()).count(),
            cancels_done: run.placed.iter().filter(|p| p.cancel == Some(200)).count(),
            unfinished: accepted.len() - endings.len(),
            duration_s: span,
        }
    }

    /// The report as the one JSON object `--json` prints.
    fn to_json(&self, problems: Option<&[String]>) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("a report serializes");
        value["invariants_checked"] = problems.is_some().into();
        value["invariant_violations"] = problems.unwrap_or_default().into();
        value
    }

    /// `problems` is `None` when the check was skipped (`--no-check`).
    pub fn print(&self, json: bool, problems: Option<&[String]>) {
        if json {
            println!("{}", self.to_json(problems));
            return;
        }
        let rate = self
            .offered_rate
            .map(|r| format!("{r:.0}/s offered"))
            .unwrap_or_else(|| "closed loop".into());
        println!(
            "orders        {} ({rate}, concurrency {}), POSTs at {:.0}/s",
            self.orders, self.concurrency, self.achieved_post_rate
        );
        println!(
            "POST answers  {:?}, {} orders accepted, {} retried",
            self.statuses, self.accepted, self.retried_orders
        );
        println!(
            "POST latency  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms (201 only: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms)",
            self.post_latency_ms.p50,
            self.post_latency_ms.p99,
            self.post_latency_ms.max,
            self.accepted_post_latency_ms.p50,
            self.accepted_post_latency_ms.p99,
            self.accepted_post_latency_ms.max
        );
        println!(
            "shed          {} 503s ({:.1}/s), latency p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            self.shed,
            self.shed_per_s,
            self.shed_latency_ms.p50,
            self.shed_latency_ms.p99,
            self.shed_latency_ms.max
        );
        println!(
            "throughput    {:.0} sagas/s end to end ({} completed, {} cancelled, {} unfinished) in {:.1} s",
            self.throughput, self.completed, self.cancelled, self.unfinished, self.duration_s
        );
        println!(
            "saga latency  p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            self.saga_latency_ms.p50,
            self.saga_latency_ms.p95,
            self.saga_latency_ms.p99,
            self.saga_latency_ms.max
        );
        if self.cancels_asked > 0 {
            println!(
                "cancels       {} asked, {} cancelled (200), {} refused or failed",
                self.cancels_asked,
                self.cancels_done,
                self.cancels_asked - self.cancels_done
            );
        }
        match problems {
            None => println!("invariants    not checked (--no-check)"),
            Some([]) => println!("invariants    hold"),
            Some(problems) => {
                println!("invariants    {} VIOLATED:", problems.len());
                for problem in problems.iter().take(20) {
                    println!("  - {problem}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
