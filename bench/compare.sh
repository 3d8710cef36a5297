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
#                connections, 10 s, then drain; paced = 100 orders/s, 2,000 orders
#   --env "K=V"  extra environment for the services of every run (e.g. MAX_PENDING_ORDERS=1000000)
#   REV          any git revision; WORKTREE means the working tree's own release build (in
#                CARGO_TARGET_DIR, if set)
#
# BENCH_WRAP, if set, prefixes every run (e.g. a command that keeps other work off the box).
# The stacks listen from BENCH_PORT_BASE (default 18000), away from a dev stack on 8000.
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
[ $# -ge 1 ] || { sed -n 2,20p "$0" >&2; exit 2; }

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
for rev in "$@"; do dirs[$rev]=$(build "$rev"); done

[ -x target/bench-venv/bin/python ] || {
    python3 -m venv target/bench-venv && target/bench-venv/bin/pip install -q pika matplotlib; }

out=bench/results/compare.jsonl
mkdir -p bench/results
run=$(date -u +%Y-%m-%dT%H:%M:%SZ)
args_for() { case $1 in closed) echo "closed --connections 64 --seconds 10" ;; paced) echo "paced --rate 100 --orders 2000" ;; esac; }

for round in $(seq 1 "$rounds"); do
    for step in $steps; do
        for rev in "$@"; do
            echo "compare: round $round, $step, $rev" >&2
            log=$(mktemp)
            # shellcheck disable=SC2086
            if ! result=$(${BENCH_WRAP:-} env $extra_env bench/scenario.sh --port-base "${BENCH_PORT_BASE:-18000}" --bin-dir "${dirs[$rev]}" --statements \
                    --script bench/outside.py -- $(args_for "$step") 2>"$log" | tail -1); then
                echo "compare: the run failed; its log:" >&2
                tail -20 "$log" >&2
                rm -f "$log"
                continue
            fi
            stmts=$(grep -o 'scenario-statements .*' "$log" | cut -d' ' -f2-)
            rm -f "$log"
            echo "$result" | jq -c --arg rev "$rev" --arg run "$run" --argjson round "$round" \
                --arg env "$extra_env" --argjson st "${stmts:-{\}}" \
                '. + $st + {rev: $rev, round: $round, run: $run, env: $env}' | tee -a "$out"
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
