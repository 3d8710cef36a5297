//! CPU time of the processes that do a saga's work — PostgreSQL (`postgres`: the backends
//! and the server's own workers), RabbitMQ (`beam.smp`) and this process — read from /proc
//! the way bench/outside.py reads it: utime + stime of each process (all its threads, live
//! and finished), sampled once a second, so a backend that exits during the window still
//! counts up to its last sample, and one that starts during it counts from zero.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the processes are read while a window is open.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Whose CPU it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Postgres,
    RabbitMq,
    Loadgen,
}

/// CPU seconds (or, divided, milliseconds per saga) by process group.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuUse {
    pub postgres: f64,
    pub rabbitmq: f64,
    /// This process: the hops, the publishers and the clients.
    pub loadgen: f64,
}

impl CpuUse {
    pub fn total(&self) -> f64 {
        self.postgres + self.rabbitmq + self.loadgen
    }

    /// Milliseconds per saga, for `sagas` sagas.
    pub fn ms_per(&self, sagas: usize) -> Self {
        let per = |seconds: f64| seconds * 1000.0 / sagas.max(1) as f64;
        Self {
            postgres: per(self.postgres),
            rabbitmq: per(self.rabbitmq),
            loadgen: per(self.loadgen),
        }
    }
}

/// CPU ticks per process (pid → group, utime + stime).
type Sample = HashMap<u32, (Group, u64)>;

/// The processes' CPU from a starting sample on.
struct Meter {
    first: Sample,
    last: Sample,
}

impl Meter {
    fn tick(&mut self) {
        self.last.extend(sample());
    }
}

/// An open measurement: sampled in the background until [`CpuWindow::finish`].
pub struct CpuWindow {
    meter: Arc<Mutex<Meter>>,
    sampler: JoinHandle<()>,
}

impl CpuWindow {
    pub fn start() -> Self {
        let first = sample();
        let meter = Arc::new(Mutex::new(Meter {
            last: first.clone(),
            first,
        }));
        let sampled = meter.clone();
        let sampler = tokio::spawn(async move {
            loop {
                tokio::time::sleep(SAMPLE_EVERY).await;
                lock(&sampled).tick();
            }
        });
        Self { meter, sampler }
    }

    /// The CPU seconds used since [`CpuWindow::start`].
    pub fn finish(self) -> CpuUse {
        self.sampler.abort();
        let mut meter = lock(&self.meter);
        meter.tick();
        let seconds_per_tick = 1.0 / ticks_per_second();
        let mut used = CpuUse::default();
        for (pid, (group, ticks)) in &meter.last {
            let before = meter.first.get(pid).map_or(0, |(_, ticks)| *ticks);
            let seconds = ticks.saturating_sub(before) as f64 * seconds_per_tick;
            match group {
                Group::Postgres => used.postgres += seconds,
                Group::RabbitMq => used.rabbitmq += seconds,
                Group::Loadgen => used.loadgen += seconds,
            }
        }
        used
    }
}

fn lock(meter: &Mutex<Meter>) -> std::sync::MutexGuard<'_, Meter> {
    meter.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every process of the three groups, now.
fn sample() -> Sample {
    let own = std::process::id();
    let mut out = Sample::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((comm, ticks)) = parse_stat(&stat) {
            let group = if pid == own {
                Group::Loadgen
            } else if comm.starts_with("postgres") {
                Group::Postgres
            } else if comm.starts_with("beam.smp") {
                Group::RabbitMq
            } else {
                continue;
            };
            out.insert(pid, (group, ticks));
        }
    }
    out
}

/// The command name and utime + stime of a `/proc/<pid>/stat` line (proc(5)). The name is
/// in parentheses and may itself hold spaces or parentheses, so the fields are counted
/// from the last `)`.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let mut fields = stat.get(close + 2..)?.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we know).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|hz| *hz > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_cpu_ticks_even_with_odd_names() {
        let line = "4242 (beam.smp) S 1 4242 4242 0 -1 4194560 1 0 0 0 170 30 0 0 20 0 40 0 1 2 3";
        assert_eq!(parse_stat(line), Some(("beam.smp", 200)));
        let odd = "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 2 3";
        assert_eq!(parse_stat(odd), Some(("a (b) c", 11)));
        assert_eq!(parse_stat("7 (cut"), None);
    }

    #[test]
    fn cpu_per_saga_divides_every_group() {
        let used = CpuUse {
            postgres: 2.0,
            rabbitmq: 1.0,
            loadgen: 0.5,
        };
        let per = used.ms_per(1000);
        assert_eq!((per.postgres, per.rabbitmq, per.loadgen), (2.0, 1.0, 0.5));
        assert_eq!(per.total(), 3.5);
    }
}
