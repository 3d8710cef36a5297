use super::*;
use crate::drive::Placed;
use clap::Parser;
use std::time::Instant;

fn answer(status: u16, ms: u64) -> Try {
    Try {
        status,
        latency: Duration::from_millis(ms),
    }
}

#[test]
fn shed_answers_and_retried_orders_are_counted_apart_from_accepted_ones() {
    let args = Args::try_parse_from(["loadgen", "--orders", "3", "--retry-shed"]).unwrap();
    let started = Instant::now();
    let (first, retried) = (Uuid::new_v4(), Uuid::new_v4());
    let placed = vec![
        Placed {
            id: Some(first),
            started,
            tries: vec![answer(201, 5)],
            cancel: None,
        },
        Placed {
            id: Some(retried),
            started,
            tries: vec![answer(503, 2), answer(503, 3), answer(201, 8)],
            cancel: None,
        },
        // Given up: still shed when its retry budget ran out.
        Placed {
            id: None,
            started,
            tries: vec![answer(503, 1)],
            cancel: None,
        },
    ];
    let run = Run {
        placed,
        started,
        posted_until: started + Duration::from_secs(2),
    };
    let endings = HashMap::from([
        (
            first,
            Ending {
                at: started + Duration::from_millis(40),
                completed: true,
            },
        ),
        (
            retried,
            Ending {
                // Counted from its first try, 2 s before.
                at: started + Duration::from_millis(2_050),
                completed: true,
            },
        ),
    ]);
    let report = Report::new(&args, &run, &endings);
    let json = report.to_json(Some(&[]));
    println!("{json}");

    assert_eq!(json["statuses"], serde_json::json!({"201": 2, "503": 3}));
    assert_eq!(json["shed"], 3);
    assert_eq!(json["shed_per_s"], 1.5);
    assert_eq!(json["accepted"], 2);
    assert_eq!(json["retried_orders"], 1);
    assert_eq!(json["completed"], 2);
    assert_eq!(json["unfinished"], 0);
    assert_eq!(json["shed_latency_ms"]["p50"], 2.0);
    assert_eq!(json["shed_latency_ms"]["max"], 3.0);
    assert_eq!(json["accepted_post_latency_ms"]["p50"], 5.0);
    assert_eq!(json["accepted_post_latency_ms"]["max"], 8.0);
    assert_eq!(json["post_latency_ms"]["max"], 8.0);
    assert_eq!(json["saga_latency_ms"]["max"], 2050.0);
    assert_eq!(json["achieved_post_rate"], 1.5);
}

#[test]
fn a_run_without_503s_reports_zero_shed() {
    let args = Args::try_parse_from(["loadgen", "--orders", "1"]).unwrap();
    let started = Instant::now();
    let run = Run {
        placed: vec![Placed {
            id: None,
            started,
            tries: vec![answer(0, 30_000)],
            cancel: None,
        }],
        started,
        posted_until: started + Duration::from_secs(30),
    };
    let json = Report::new(&args, &run, &HashMap::new()).to_json(None);
    assert_eq!(json["shed"], 0);
    assert_eq!(json["shed_latency_ms"]["p99"], 0.0);
    assert_eq!(json["accepted"], 0);
    assert_eq!(json["retried_orders"], 0);
    assert_eq!(json["statuses"], serde_json::json!({"0": 1}));
    assert_eq!(json["invariants_checked"], false);
}
