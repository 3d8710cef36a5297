#!/usr/bin/env bash
# Compares builds of the system with one fixed procedure (issue 20): each revision is built
# once into a folder of its own, then every step runs for every build in turn, round after
# round (A B A B …), each run on a fresh stack of its own (bench/scenario.sh) measured by the
# outside driver (bench/outside.py), with statements and commits per saga.
#
#   bench/compare.sh [--rounds N] [--steps "closed paced"] REV [REV …]
#
#   --rounds N   rounds of every step for every build (default 2)
#   --steps S    which outside steps, in order (default "closed paced"): closed = wrk, 64
#                connections, 10 s, then drain; paced = 100 orders/s, 2,000 orders.
#                A step named STEP-httpN (closed-http0, paced-http150, …) is STEP with the
#                payments going over HTTP to `loadgen provider --latency-ms N` (this tree's
#                loadgen, started for the run; docs/benchmark-provider.md) instead of the
#                built-in simulator; "all" = the simulator's two steps and the HTTP path's
#                four (latency 0 and 150 ms), interleaved
#   --env "K=V"  extra environment for the services of every run (e.g. MAX_PENDING_ORDERS=1000000)
#   REV          any git revision; WORKTREE means the working tree's own release build (in
#                CARGO_TARGET_DIR, if set); REV@K=V[,K=V…] runs that build with extra settings
#                of its own (e.g. main@ADMISSION_TARGET_MS=0 beside main), interleaved
#
# BENCH_WRAP, if set, prefixes every run (e.g. a command that keeps other work off the box).
# The stacks listen from BENCH_PORT_BASE (default 18000), away from a dev stack on 8000; the
# benchmark provider on BENCH_PROVIDER_PORT (default BENCH_PORT_BASE + 90).
#
# Builds go to target/bench-builds/<sha>/ (the four binaries; the compile shares
# target/bench-builds/target, so a later commit rebuilds only what changed). Every run's
# JSON goes to bench/results/compare.jsonl with `rev`, `round` and `run` added; the table
# at the end shows each build's runs side by side.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=2 steps="closed paced" extra_env=
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --env) extra_env=$2; shift 2 ;;
        --) shift; break ;;
        -*) echo "compare: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { sed -n 2,25p "$0" >&2; exit 2; }
[ "$steps" != all ] ||
    steps="closed closed-http0 closed-http150 paced paced-http0 paced-http150"

builds=target/bench-builds
binaries=(order-service inventory-service payment-service notification-service)

# build REV: prints the folder holding that revision's four binaries.
build() {
    local rev=$1 sha dir
    if [ "$rev" = WORKTREE ]; then
        cargo build --release -q --locked -p order-service -p inventory-service \
            -p payment-service -p notification-service >&2
        echo "${CARGO_TARGET_DIR:-target}/release"
        return
    fi
    sha=$(git rev-parse --short=9 "$rev^{commit}")
    dir=$builds/$sha
    if [ ! -x "$dir/notification-service" ]; then
        echo "compare: building $rev ($sha)" >&2
        [ -d "$builds/src" ] || git worktree add --detach "$builds/src" "$sha" >&2
        git -C "$builds/src" checkout -q --detach "$sha"
        (cd "$builds/src" && CARGO_TARGET_DIR=../target cargo build --release -q --locked \
            -p order-service -p inventory-service -p payment-service -p notification-service) >&2
        mkdir -p "$dir"
        for b in "${binaries[@]}"; do cp "$builds/target/release/$b" "$dir/"; done
    fi
    echo "$dir"
}

declare -A dirs
for rev in "$@"; do dirs[$rev]=$(build "${rev%%@*}"); done
# rev_env REV: the settings after REV's @, space-separated for env(1).
rev_env() { case $1 in *@*) echo "${1#*@}" | tr ',' ' ' ;; esac; }

[ -x target/bench-venv/bin/python ] || {
    python3 -m venv target/bench-venv && target/bench-venv/bin/pip install -q pika matplotlib; }

out=bench/results/compare.jsonl
mkdir -p bench/results
run=$(date -u +%Y-%m-%dT%H:%M:%SZ)
args_for() { case ${1%%-http*} in closed) echo "closed --connections 64 --seconds 10" ;; paced) echo "paced --rate 100 --orders 2000" ;; esac; }

# The HTTP path's steps need this tree's loadgen, which plays the card processor.
provider_port=${BENCH_PROVIDER_PORT:-$((${BENCH_PORT_BASE:-18000} + 90))}
provider_pid=
case " $steps " in *-http*) cargo build --release -q --locked -p loadgen >&2 ;; esac

# start_provider STEP: for an HTTP step, starts the provider with the step's latency and
# sets provider_env to the services' settings for it; empty for a simulator step.
start_provider() {
    provider_env=
    case $1 in *-http*) ;; *) return 0 ;; esac
    local latency=${1##*-http}
    target/release/loadgen provider --latency-ms "$latency" --port "$provider_port" >/dev/null &
    provider_pid=$!
    for _ in $(seq 1 50); do
        curl -sf "http://127.0.0.1:$provider_port/health" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$provider_port/health" >/dev/null ||
        { echo "compare: the benchmark provider did not start on :$provider_port" >&2; exit 1; }
    # The default timeout (5 s), said out loud: a slow answer under load is not an unknown
    # outcome here.
    provider_env="PAYMENT_PROVIDER_URL=http://127.0.0.1:$provider_port PAYMENT_PROVIDER_TIMEOUT_MS=5000"
}

# Stops the provider of the last run, saying what it did (charges, repeats, …) on stderr.
stop_provider() {
    [ -n "$provider_pid" ] || return 0
    echo "compare: provider $(curl -sf "http://127.0.0.1:$provider_port/stats" || echo '(no stats)')" >&2
    kill -TERM "$provider_pid" 2>/dev/null || true
    wait "$provider_pid" 2>/dev/null || true
    provider_pid=
}
trap stop_provider EXIT

for round in $(seq 1 "$rounds"); do
    for step in $steps; do
        for rev in "$@"; do
            echo "compare: round $round, $step, $rev" >&2
            start_provider "$step"
            log=$(mktemp)
            # shellcheck disable=SC2086
            if ! result=$(${BENCH_WRAP:-} env $extra_env $(rev_env "$rev") $provider_env bench/scenario.sh --port-base "${BENCH_PORT_BASE:-18000}" --bin-dir "${dirs[$rev]}" --statements \
                    --script bench/outside.py -- $(args_for "$step") 2>"$log" | tail -1); then
                echo "compare: the run failed; its log:" >&2
                tail -20 "$log" >&2
                rm -f "$log"
                stop_provider
                continue
            fi
            stop_provider
            stmts=$(grep -o 'scenario-statements .*' "$log" | cut -d' ' -f2-)
            rm -f "$log"
            echo "$result" | jq -c --arg rev "$rev" --arg run "$run" --argjson round "$round" \
                --arg env "$extra_env" --argjson st "${stmts:-{\}}" --arg step "$step" \
                '. + $st + {rev: $rev, round: $round, run: $run, env: $env, step: $step}' | tee -a "$out"
        done
    done
done

echo
jq -r --arg run "$run" 'select(.run == $run) |
    [.rev, .step, (.round|tostring), (.throughput|tostring), "\(.saga_p50_ms) / \(.saga_p99_ms)",
     (.cpu_ms_per_saga|tostring), "\(.statements_per_saga // "-") (\(.commits_per_saga // "-"))",
     "\(.completed)+\(.cancelled)"] | @tsv' "$out" |
    sort -s -k2,2 -k1,1 |
    (echo -e "rev\tstep\tround\tsagas/s\tsaga p50 / p99 ms\tCPU ms/saga\tstatements (commits)/saga\tended"; cat) |
    column -t -s $'\t'
