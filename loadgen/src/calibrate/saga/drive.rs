//! Driving the stand-in system the way bench/outside.py drives the real one, so the two can
//! be set side by side: a closed loop (a fixed number of clients, each posting its next
//! order as soon as the last one is committed, as wrk's connections do, then a drain until
//! every saga ended) for throughput, and a paced open loop (one post every 1/rate s,
//! whatever is still running) for latency; CPU read over each, from the first post to the
//! last saga's end.

use super::system::Client;
use crate::calibrate::cpu::{CpuUse, CpuWindow};
use crate::report::Percentiles;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Clients of the closed loop, each with one POST in flight, as the outside driver's 64
/// wrk connections.
pub const CLIENTS: usize = 64;
/// Orders per second of the paced step, as the outside driver's paced step.
pub const PACED_RATE: f64 = 100.0;

/// What the closed loop did.
#[derive(Debug)]
pub struct ClosedLoop {
    /// Sagas posted in the window, all of which ended.
    pub sagas: usize,
    /// From the first post to the last saga's end.
    pub seconds: f64,
    pub sagas_per_s: f64,
    /// Over those seconds, per saga.
    pub cpu_ms_per_saga: CpuUse,
}

/// What the paced step did.
#[derive(Debug)]
pub struct Paced {
    pub sagas: usize,
    /// From the post to the last notification's commit.
    pub latency_ms: Percentiles,
    /// From the first post to the last saga's end, per saga.
    pub cpu_ms_per_saga: CpuUse,
}

/// Runs [`CLIENTS`] sagas at once, so that pools and channels are open before anything is
/// measured.
pub async fn warm_up(client: &Client) -> Result<(), String> {
    let mut sagas = JoinSet::new();
    for _ in 0..CLIENTS {
        let client = client.clone();
        sagas.spawn(async move { client.saga().await.map(|_| ()) });
    }
    while let Some(outcome) = sagas.join_next().await {
        outcome.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// [`CLIENTS`] clients post for `window`, then every saga posted is waited for; throughput
/// is sagas over the time from the first post to the last end. Posting outruns the sagas,
/// so a backlog builds in the queues and the hops work in full batches, as under wrk.
pub async fn closed_loop(client: &Client, window: Duration) -> Result<ClosedLoop, String> {
    let cpu = CpuWindow::start();
    let started = Instant::now();
    let deadline = started + window;
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let client = client.clone();
        clients.spawn(async move {
            let mut placed = Vec::new();
            while Instant::now() < deadline {
                placed.push(client.place().await?);
            }
            Ok::<_, String>(placed)
        });
    }
    let mut placed = Vec::new();
    while let Some(posted) = clients.join_next().await {
        placed.extend(posted.map_err(|e| e.to_string())??);
    }
    // Oldest first: sagas end about in the order they were posted.
    placed.sort_by_key(|saga| saga.posted);
    let sagas = placed.len();
    let mut last_end = started;
    for saga in placed {
        let (_, ended) = client.ended(saga).await?;
        last_end = last_end.max(ended);
    }
    let used = cpu.finish();
    let seconds = (last_end - started).as_secs_f64();
    Ok(ClosedLoop {
        sagas,
        seconds,
        sagas_per_s: sagas as f64 / seconds,
        cpu_ms_per_saga: used.ms_per(sagas),
    })
}

/// [`PACED_RATE`] posts per second for `window`, open loop; every saga is waited for.
pub async fn paced(client: &Client, window: Duration) -> Result<Paced, String> {
    let count = (PACED_RATE * window.as_secs_f64()).round().max(1.0) as usize;
    let period = Duration::from_secs_f64(1.0 / PACED_RATE);
    let cpu = CpuWindow::start();
    let started = Instant::now();
    let mut sagas = JoinSet::new();
    for n in 0..count {
        tokio::time::sleep_until((started + period * n as u32).into()).await;
        let client = client.clone();
        sagas.spawn(async move { client.saga().await });
    }
    let mut latencies = Vec::with_capacity(count);
    while let Some(saga) = sagas.join_next().await {
        let (posted, ended) = saga.map_err(|e| e.to_string())??;
        latencies.push(ended - posted);
    }
    let used = cpu.finish();
    Ok(Paced {
        sagas: count,
        latency_ms: Percentiles::of(latencies),
        cpu_ms_per_saga: used.ms_per(count),
    })
}
