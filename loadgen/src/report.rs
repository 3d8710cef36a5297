//! The numbers of a run: POST latency, end-to-end throughput, saga latency.

use crate::args::Args;
use crate::drive::Run;
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
    /// Orders per second the POSTs went out at.
    pub achieved_post_rate: f64,
    /// POST answers by status code (0: no answer).
    pub statuses: BTreeMap<u16, usize>,
    pub post_latency_ms: Percentiles,
    /// Sagas that reached COMPLETED or CANCELLED, per second, from the first POST to the
    /// last ending.
    pub throughput: f64,
    /// From the start of the POST to the terminal event reaching loadgen.
    pub saga_latency_ms: Percentiles,
    pub completed: usize,
    pub cancelled: usize,
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
    fn of(mut samples: Vec<Duration>) -> Self {
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
        let mut statuses = BTreeMap::new();
        for placed in &run.placed {
            *statuses.entry(placed.status).or_insert(0) += 1;
        }
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
            post_latency_ms: Percentiles::of(run.placed.iter().map(|p| p.latency).collect()),
            throughput: endings.len() as f64 / span,
            saga_latency_ms: Percentiles::of(saga),
            completed,
            cancelled: endings.len() - completed,
            unfinished: accepted.len() - endings.len(),
            duration_s: span,
        }
    }

    /// `problems` is `None` when the check was skipped (`--no-check`).
    pub fn print(&self, json: bool, problems: Option<&[String]>) {
        if json {
            let mut value = serde_json::to_value(self).expect("a report serializes");
            value["invariants_checked"] = problems.is_some().into();
            value["invariant_violations"] = problems.unwrap_or_default().into();
            println!("{value}");
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
        println!("POST answers  {:?}", self.statuses);
        println!(
            "POST latency  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            self.post_latency_ms.p50, self.post_latency_ms.p99, self.post_latency_ms.max
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
