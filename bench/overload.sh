#!/usr/bin/env bash
# The overload step of issue 11: is throughput kept, and recovered, when far more is offered
# than the system can take?
#
#   bench/overload.sh RATE [SECS]      (e.g. 3 × the closed-loop figure: bench/overload.sh 1800)
#
# Needs the system running (e.g. `PAYMENT_SUCCESS_RATE=1 RUST_LOG=warn cargo run --release
# -p devstack`). Runs through loadgen, each step with --json and its invariant check:
#   1. closed loop, 5000 orders at concurrency 64, a shed order retried after Retry-After
#      (the capacity before);
#   2. RATE orders/s offered for SECS s (default 60), no retry: a 503 gives the order up;
#   3. the closed loop again (the capacity after: recovery).
# Appends the three reports to bench/results/overload.jsonl, each with `run` (when this run
# started) and `step` added, and prints a table: completed/s, accepted orders' saga p99,
# 503 p99 latency, 503s, unfinished — and completed/s during overload and in the second
# closed loop as a share of the first. The databases are vacuumed once, before the first
# step, not between steps: what the overload leaves behind is part of what step 3 measures.
# Exits non-zero when a step fails (unfinished sagas or a violated invariant), after the table.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=${1:?usage: bench/overload.sh RATE [SECS]}
secs=${2:-60}
out=bench/results/overload.jsonl
mkdir -p bench/results
loadgen=target/release/loadgen
cargo build --release -q --locked -p loadgen

# bench/scenario.sh --script names its run's own databases.
for db in ${SCENARIO_DATABASES:-order_db inventory_db payment_db notification_db}; do
    psql -q -h 127.0.0.1 -U postgres -d "$db" -c 'VACUUM ANALYZE' >/dev/null
done

run=$(date -u +%Y-%m-%dT%H:%M:%SZ)
reports=()
failed=()
# step NAME LOADGEN-ARGS...: one loadgen run; its report is kept and appended to $out.
step() {
    local name=$1 report
    shift
    echo "overload: $name: loadgen $*" >&2
    report=$("$loadgen" "$@" --json) || failed+=("$name")
    if [ -z "$report" ]; then
        echo "overload: $name gave no report" >&2
        exit 1
    fi
    report=$(jq -c --arg run "$run" --arg step "$name" '{run: $run, step: $step} + .' <<<"$report")
    echo "$report" >>"$out"
    reports+=("$report")
}

step closed-before --orders 5000 --concurrency 64 --retry-shed
# 503s come back at once, so 512 POSTs in flight keep up with any rate the box can answer;
# `POSTs/s` in the table shows whether loadgen really offered RATE.
step overload --rate "$rate" --duration "$secs" --concurrency 512
step closed-after --orders 5000 --concurrency 64 --retry-shed

completed_per_s() { jq '.completed / .duration_s' <<<"$1"; }
first=$(completed_per_s "${reports[0]}")
echo
printf '%-14s %9s %12s %14s %12s %8s %10s %-10s\n' step POSTs/s completed/s "saga p99 ms" "503 p99 ms" 503s unfinished invariants
for report in "${reports[@]}"; do
    jq -r '[.step, .achieved_post_rate, .completed / .duration_s, .saga_latency_ms.p99,
            (if .shed > 0 then .shed_latency_ms.p99 else "-" end), .shed, .unfinished,
            (.invariant_violations | if length == 0 then "hold" else "\(length) violated" end)]
           | @tsv' <<<"$report" |
        while IFS=$'\t' read -r name posts completed saga shed_p99 shed unfinished invariants; do
            [ "$shed_p99" = - ] || shed_p99=$(printf '%.1f' "$shed_p99")
            printf '%-14s %9.0f %12.0f %14.0f %12s %8d %10d %-10s\n' "$name" "$posts" "$completed" \
                "$saga" "$shed_p99" "$shed" "$unfinished" "$invariants"
        done
done
echo
jq -rn --argjson first "$first" --argjson over "$(completed_per_s "${reports[1]}")" \
    --argjson after "$(completed_per_s "${reports[2]}")" '
    def share($x): if $first > 0 then "\($x / $first * 100 | round) %" else "n/a" end;
    "completed/s during overload: \(share($over)) of the first closed loop (target ≥ 95 %)",
    "completed/s after overload:  \(share($after)) of the first closed loop (target: no degradation)"'
echo "reports appended to $out (run $run)"

if [ ${#failed[@]} -gt 0 ]; then
    echo "overload: failed steps: ${failed[*]}" >&2
    exit 1
fi
