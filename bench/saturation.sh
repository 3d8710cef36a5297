#!/usr/bin/env bash
# The saturation curve: throughput and saga latency against offered load.
#
#   bench/saturation.sh [rates...]      (default: 50 100 200 300 400 500 600 800)
#
# Needs the system running (e.g. `PAYMENT_SUCCESS_RATE=1 RUST_LOG=warn cargo run --release
# -p devstack`). Each step offers a fixed rate for 20 s through loadgen (no retry: a 503
# gives the order up), checks the invariants, appends loadgen's JSON report to
# bench/results/saturation.jsonl and prints the step's shed rate (503s per second offered,
# loadgen's `shed_per_s`); a last closed-loop step measures the ceiling. bench/plot.py
# turns the file into the table and docs/saturation.png (with the shed rate). The databases
# are vacuumed between steps so that each step starts from the same state even where
# autovacuum is off.
set -euo pipefail
cd "$(dirname "$0")/.."

rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(50 100 200 300 400 500 600 800)
out=bench/results/saturation.jsonl
mkdir -p bench/results
: > "$out"
loadgen=target/release/loadgen
# devstack builds loadgen with the services (one feature set, no second build).
cargo build --release -q -p order-service -p inventory-service -p payment-service -p notification-service -p loadgen

# One line per step on stderr: what was offered, served and shed.
summary() {
    jq -r '"saturation: \(.offered_rate // "closed loop") offered: \(.throughput | floor) sagas/s, shed \(.shed) (\(.shed_per_s * 10 | round / 10)/s, p99 \(.shed_latency_ms.p99 | floor) ms), saga p99 \(.saga_latency_ms.p99 | floor) ms, \(.unfinished) unfinished"' >&2
}

vacuum() {
    for db in ${SCENARIO_DATABASES:-order_db inventory_db payment_db notification_db}; do
        psql -q -h 127.0.0.1 -U postgres -d "$db" -c 'VACUUM ANALYZE' >/dev/null
    done
}

for rate in "${rates[@]}"; do
    vacuum
    echo "saturation: $rate/s offered for 20 s" >&2
    "$loadgen" --rate "$rate" --duration 20 --concurrency 512 --json | tee -a "$out"
    tail -n 1 "$out" | summary
done
vacuum
echo "saturation: closed loop, concurrency 64" >&2
"$loadgen" --orders 10000 --concurrency 64 --json | tee -a "$out"
tail -n 1 "$out" | summary
