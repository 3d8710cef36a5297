#!/usr/bin/env bash
# How far past the admission bound the PENDING orders go when several order-service
# replicas share it (issue 31, item 3). Each replica reserves places against the last count
# of PENDING orders (ten a second) plus its own; the others' new orders since that count
# are unseen, so with n replicas the count can pass the bound.
#
#   MAX_PENDING_ORDERS=1000 ADMISSION_TARGET_MS=0 \
#     bench/scenario.sh --replicas N --script bench/overshoot.sh -- RATE [SECS]
#
# Offers RATE orders/s for SECS s (default 20) through every order-service replica in turn
# (loadgen, 512 POSTs in flight, a 503 gives the order up), counts the PENDING orders in
# the run's order database every ~50 ms meanwhile, and prints one JSON line: the bound
# (MAX_PENDING_ORDERS), the samples, the largest count and the 99th/50th percentiles of the
# counts taken while the bound was reached, and loadgen's report (completed, shed, saga p99).
set -euo pipefail
cd "$(dirname "$0")/.."

rate=${1:?usage: bench/overshoot.sh RATE [SECS]}
secs=${2:-20}
bound=${MAX_PENDING_ORDERS:-1000}
order_db=${SCENARIO_DATABASES%% *}
samples=$(mktemp)
report=$(mktemp)
trap 'rm -f "$samples" "$report"' EXIT

cargo build --release -q --locked -p loadgen
target/release/loadgen --order-url "${ORDER_URLS:-$ORDER_URL}" --inventory-url "$INVENTORY_URL" \
    --rate "$rate" --duration "$secs" --concurrency 512 --json >"$report" &
loadgen=$!
while kill -0 "$loadgen" 2>/dev/null; do
    psql -q -At -h 127.0.0.1 -U postgres -d "$order_db" \
        -c "SELECT count(*) FROM orders WHERE status = 'PENDING'" >>"$samples" || true
    sleep 0.05
done
wait "$loadgen" || echo "overshoot: loadgen reported a failure (see its report)" >&2

replicas=$(tr ',' '\n' <<<"${ORDER_URLS:-$ORDER_URL}" | wc -l)
jq -c -s --argjson bound "$bound" --argjson replicas "$replicas" --argjson rate "$rate" \
    --slurpfile report "$report" '
    def pct($p): (sort | .[((length - 1) * $p | floor)]);
    ([.[] | select(. >= $bound * 0.9)]) as $full
    | {replicas: $replicas, offered_per_s: $rate, bound: $bound, samples: length,
       max_pending: max, over_bound_max: (max - $bound),
       full_samples: ($full | length),
       full_p50: (if ($full | length) > 0 then ($full | pct(0.5)) else null end),
       full_p99: (if ($full | length) > 0 then ($full | pct(0.99)) else null end),
       completed: $report[0].completed, shed: $report[0].shed,
       saga_p99_ms: $report[0].saga_latency_ms.p99}' "$samples"
