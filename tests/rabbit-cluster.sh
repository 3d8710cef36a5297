#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, beside the system's own node (which keeps
# 5672 and is never touched), for tests/tests/cluster.rs.
#
#   tests/rabbit-cluster.sh start         start the nodes that are down, join them (idempotent)
#   tests/rabbit-cluster.sh stop          stop every node and delete its data (idempotent)
#   tests/rabbit-cluster.sh urls          the AMQP_URL value listing the three nodes
#   tests/rabbit-cluster.sh start-node N  start node N (1-3) again, with its data
#   tests/rabbit-cluster.sh stop-node N   stop node N cleanly (rabbitmqctl stop)
#   tests/rabbit-cluster.sh kill-node N   SIGKILL node N's Erlang VM
#
# Node N is saga-N@localhost, AMQP on 127.0.0.1:568N, distribution on 2568N, data and logs
# under $RABBIT_CLUSTER_DIR (default /tmp/saga-rabbit-cluster), no plugins. The nodes run as
# the `rabbitmq` user, so they share its Erlang cookie with the system node and rabbitmqctl.
# Debian's `rabbitmq-server` wrapper switches user with `su` and drops RABBITMQ_* variables,
# so the real script under /usr/lib/rabbitmq/bin is started through `runuser`.
set -euo pipefail

BASE=${RABBIT_CLUSTER_DIR:-/tmp/saga-rabbit-cluster}
NODES=(1 2 3)
SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server

node_name() { echo "saga-$1@localhost"; }
amqp_port() { echo $((5680 + $1)); }
dist_port() { echo $((25680 + $1)); }
ctl() { local n=$1; shift; rabbitmqctl -q -n "$(node_name "$n")" "$@"; }

# The VM answers (the app may be stopped).
vm_up() { rabbitmq-diagnostics -q -n "$(node_name "$1")" ping >/dev/null 2>&1; }
# The RabbitMQ application runs and accepts connections.
app_up() { rabbitmq-diagnostics -q -n "$(node_name "$1")" check_running >/dev/null 2>&1; }

start_vm() {
    local n=$1 dir="$BASE/node$1"
    mkdir -p "$dir/mnesia" "$dir/log"
    # Its own config: /etc/rabbitmq/rabbitmq.conf would put it on 5672.
    cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:$(amqp_port "$n")
loopback_users.guest = true
EOF
    echo '[].' >"$dir/enabled_plugins"
    chown -R rabbitmq:rabbitmq "$BASE"
    runuser -u rabbitmq -- env -i PATH="$PATH" HOME=/var/lib/rabbitmq \
        RABBITMQ_NODENAME="$(node_name "$n")" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$(amqp_port "$n")" \
        RABBITMQ_DIST_PORT="$(dist_port "$n")" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" \
        RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_PID_FILE="$dir/pid" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        "$SERVER" -detached >"$dir/log/start.out" 2>&1
}

# Brings node N up: the VM if it is down, the app if it was stopped (stop_app).
start_node() {
    local n=$1
    app_up "$n" && return 0
    if vm_up "$n"; then
        ctl "$n" start_app
    else
        start_vm "$n"
    fi
    await_node "$n"
}

# Waits for node N's VM to register with epmd (after its prelaunch phase), then for the app.
await_node() {
    for _ in $(seq 1 600); do vm_up "$1" && break; sleep 0.2; done
    ctl "$1" await_startup --timeout 120
}

is_member() {
    # Node 1 lists node N among the cluster's disc nodes.
    ctl 1 cluster_status --formatter json | grep -q "\"$(node_name "$1")\""
}

join() {
    local n=$1
    is_member "$n" && return 0
    ctl "$n" stop_app >/dev/null
    ctl "$n" reset >/dev/null
    ctl "$n" join_cluster "$(node_name 1)" >/dev/null 2>&1
    ctl "$n" start_app
    await_node "$n"
}

start() {
    if [ ! -x "$SERVER" ]; then
        echo "rabbit-cluster: $SERVER not found (Debian's rabbitmq-server package)" >&2
        exit 1
    fi
    # A node restarted after the others stopped waits for them: start all at once.
    for n in "${NODES[@]}"; do vm_up "$n" || start_vm "$n" & done
    wait
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in 2 3; do join "$n"; done
    echo "rabbit-cluster: $(for n in "${NODES[@]}"; do node_name "$n"; done | paste -sd' ') up: $(urls)"
}

stop_node() {
    local n=$1
    if vm_up "$n"; then
        ctl "$n" shutdown >/dev/null 2>&1 || kill_node "$n"
    fi
}

kill_node() {
    local pid
    pid=$(ctl "$1" eval 'os:getpid().' 2>/dev/null | tr -dc 0-9) || true
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    # epmd forgets a node whose VM died; wait for that so it can be started again.
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

stop() {
    for n in "${NODES[@]}"; do stop_node "$n" & done
    wait
    rm -rf "$BASE"
}

urls() {
    for n in "${NODES[@]}"; do echo "amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2f"; done | paste -sd,
}

case "${1:-}" in
start) start ;;
stop) stop ;;
urls) urls ;;
start-node) start_node "${2:?node 1-3}" ;;
stop-node) stop_node "${2:?node 1-3}" ;;
kill-node) kill_node "${2:?node 1-3}" ;;
*)
    echo "usage: $0 start|stop|urls|start-node N|stop-node N|kill-node N" >&2
    exit 2
    ;;
esac
