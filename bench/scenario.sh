#!/usr/bin/env bash
# One benchmark scenario on a stack of its own: starts the four services (release build)
# as asked, waits until every process is ready, runs loadgen with the arguments after `--`,
# stops everything and drops the run's databases. Each run has a fresh exchange (so fresh
# queues, of the type asked for) and fresh databases, so scenarios do not disturb each other.
#
#   bench/scenario.sh [--nodes 3] [--quorum] [--replicas N] [--otlp] -- <loadgen args>
#
#   --nodes 3      the three-node cluster of tests/rabbit-cluster.sh, quorum queues; the
#                  services list all three nodes, loadgen watches from the first
#   --quorum       quorum queues on the one local node
#   --replicas N   N processes of every service; the order-service replicas take the POSTs
#                  in turn
#   --otlp         export every span to bench/otlp_sink.py (OTEL_EXPORTER_OTLP_ENDPOINT)
#   --bin-dir DIR  the services' binaries from DIR (e.g. another commit's release build)
#   --script S     run the script S (e.g. bench/overload.sh) with the arguments after `--`
#                  instead of loadgen; it finds the stack at the default ports, the exchange
#                  in AMQP_EXCHANGE, the databases in SCENARIO_DATABASES and every
#                  order-service replica in ORDER_URLS (comma-separated)
#   --port-base P  replica r of service i listens on P + i + 10 (r - 1) (default 8000, or
#                  BENCH_PORT_BASE); scripts get ORDER_URL and INVENTORY_URL, loadgen its URLs
#   --statements   after the run, print statements and commits per saga per database, from
#                  pg_stat_statements (needs shared_preload_libraries = 'pg_stat_statements')
#                  and pg_stat_database
#
# Settings: PAYMENT_SUCCESS_RATE=1 (every saga takes the longest path), RUST_LOG=warn.
# Service logs go to target/bench-logs/<run>/.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=1 replicas=1 otlp= quorum= statements= script= bin_dir=target/release port_base=${BENCH_PORT_BASE:-8000}
while [ $# -gt 0 ]; do
    case $1 in
        --nodes) nodes=$2; shift 2 ;;
        --replicas) replicas=$2; shift 2 ;;
        --quorum) quorum=1; shift ;;
        --otlp) otlp=1; shift ;;
        --bin-dir) bin_dir=$2; shift 2 ;;
        --statements) statements=1; shift ;;
        --port-base) port_base=$2; shift 2 ;;
        --script) script=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "scenario: unknown option $1" >&2; exit 2 ;;
    esac
done

# Another build's binaries (--bin-dir) are used as they are; loadgen is always this tree's.
if [ "$bin_dir" = target/release ]; then
    cargo build --release -q --locked -p order-service -p inventory-service -p payment-service \
        -p notification-service -p loadgen
elif [ -z "$script" ]; then
    cargo build --release -q --locked -p loadgen
fi

run=bench$(date +%s)
logs=target/bench-logs/$run
mkdir -p "$logs"
export AMQP_EXCHANGE=$run ADMIN_TOKEN=bench-admin-token-$run PAYMENT_SUCCESS_RATE=1 RUST_LOG=warn
if [ "$nodes" = 3 ]; then
    tests/rabbit-cluster.sh start >&2
    export AMQP_URL=$(tests/rabbit-cluster.sh urls) AMQP_QUEUE_TYPE=quorum
else
    export AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f
fi
[ -z "$quorum" ] || export AMQP_QUEUE_TYPE=quorum

services=(order inventory payment notification)
pids=()
stop() {
    [ ${#pids[@]} -eq 0 ] || kill -TERM "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    for short in "${services[@]}"; do
        psql -q -h 127.0.0.1 -U postgres -d postgres \
            -c "DROP DATABASE IF EXISTS ${run}_$short WITH (FORCE)" >/dev/null 2>&1 || true
    done
    # Idle queues of earlier runs would stay in RabbitMQ and cost the next runs.
    if [ "$nodes" = 1 ] && target/bench-venv/bin/python -c 'import pika' 2>/dev/null; then
        target/bench-venv/bin/python bench/drop_queues.py "$run" || true
    else
        echo "scenario: the queues of $run stay in RabbitMQ (bench/drop_queues.py needs pika in target/bench-venv)" >&2
    fi
}
trap stop EXIT

if [ -n "$otlp" ]; then
    python3 bench/otlp_sink.py 4318 >"$logs/otlp.log" 2>&1 &
    pids+=($!)
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
fi

await_ready() {
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$1/ready" >/dev/null && return 0
        sleep 0.2
    done
    echo "scenario: nothing ready on :$1 within 60 s; logs in $logs" >&2
    exit 1
}

order_urls=()
# Replica r of service i listens on port_base + i + 10 (r - 1); replicas start one after
# another so that the first creates the database and runs the migrations. A port someone
# else holds (a dev stack left running) would send the load to the wrong system.
for r in $(seq 1 "$replicas"); do
    for i in "${!services[@]}"; do
        short=${services[$i]}
        port=$((port_base + i + 10 * (r - 1)))
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "scenario: port $port is taken by another process; stop it or pass --port-base" >&2
            exit 1
        fi
        DATABASE_URL=postgres://postgres@127.0.0.1:5432/${run}_$short \
            HTTP_ADDR=127.0.0.1:$port \
            "$bin_dir/$short-service" >"$logs/$short-$r.log" 2>&1 &
        pids+=($!)
        await_ready "$port"
        [ "$short" != order ] || order_urls+=("http://127.0.0.1:$port")
    done
done
export SCENARIO_BIN_DIR=$bin_dir ORDER_URL=${order_urls[0]} ORDER_URLS=$(IFS=,; echo "${order_urls[*]}") INVENTORY_URL=http://127.0.0.1:$((port_base + 1))
echo "scenario: $run nodes=$nodes replicas=$replicas queues=${AMQP_QUEUE_TYPE:-classic} otlp=${otlp:-no} services=$bin_dir" >&2

sql() { psql -q -At -h 127.0.0.1 -U postgres -d postgres -c "$1"; }
if [ -n "$statements" ]; then
    sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
    sql "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset_shared('wal')" >/dev/null
    commits_before=$(sql "SELECT datname || '=' || xact_commit FROM pg_stat_database WHERE datname LIKE '${run}_%'")
fi

if [ -n "$script" ]; then
    SCENARIO_DATABASES=$(printf "${run}_%s " "${services[@]}") "$script" "$@" | tee "$logs/loadgen.out"
else
    target/release/loadgen --order-url "$(IFS=,; echo "${order_urls[*]}")" \
        --inventory-url "$INVENTORY_URL" --payment-url "http://127.0.0.1:$((port_base + 2))" \
        --notification-url "http://127.0.0.1:$((port_base + 3))" --amqp-url "${AMQP_URL%%,*}" "$@" | tee "$logs/loadgen.out"
fi

if [ -n "$statements" ]; then
    # Sagas ended, as loadgen counted them (its --json line or its text summary).
    sagas=$(grep -o '"completed":[0-9]*\|"cancelled":[0-9]*' "$logs/loadgen.out" | cut -d: -f2 | paste -sd+ | bc)
    [ -n "$sagas" ] && [ "$sagas" -gt 0 ] || { echo "scenario: --statements needs loadgen --json" >&2; exit 1; }
    echo "statements and commits per saga ($sagas sagas):" >&2
    for short in "${services[@]}"; do
        db=${run}_$short
        before=$(echo "$commits_before" | grep "^$db=" | cut -d= -f2)
        sql "SELECT '$short', round(sum(calls) FILTER (WHERE query NOT IN ('BEGIN','COMMIT','ROLLBACK'))::numeric / $sagas, 2),
                    round(((SELECT xact_commit FROM pg_stat_database WHERE datname = '$db') - ${before:-0})::numeric / $sagas, 2)
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$db'" |
            awk -F'|' '{printf "  %-13s %6s statements  %5s commits\n", $1, $2, $3}'
    done | tee "$logs/statements.txt" >&2
    # The same as one JSON line, for scripts (bench/compare.sh).
    awk '{s += $2; c += $4} END {printf "scenario-statements {\"statements_per_saga\":%.2f,\"commits_per_saga\":%.2f}\n", s, c}' \
        "$logs/statements.txt" >&2
    sql "SELECT round(sum(calls)::numeric / $sagas, 2) || ' per saga  ' || left(regexp_replace(query, '\s+', ' ', 'g'), 90)
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
         WHERE d.datname LIKE '${run}_%' AND query NOT IN ('BEGIN','COMMIT','ROLLBACK')
         GROUP BY query ORDER BY sum(calls) DESC LIMIT 25" | sed 's/^/    /' >&2
fi
if [ -n "$otlp" ]; then
    kill -TERM "${pids[@]:1}" 2>/dev/null || true   # the services flush their last spans
    sleep 3
    kill -TERM "${pids[0]}" && wait "${pids[0]}" || true
    cat "$logs/otlp.log" >&2
fi
