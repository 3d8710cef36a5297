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
#   tests/rabbit-cluster.sh partition N   cut node N off the other two (iptables, as root)
#   tests/rabbit-cluster.sh heal          remove the rules of `partition` (idempotent)
#   tests/rabbit-cluster.sh rejoin N      wait until node N runs again after a partition
#
# Node N is saga-N@localhost, AMQP on 127.0.0.1:568N, distribution on 2568N (it opens its
# own distribution connections from 127.0.1.N, so that `partition` can tell them apart),
# data and logs under $RABBIT_CLUSTER_DIR (default /tmp/saga-rabbit-cluster), no plugins.
# The nodes run as the `rabbitmq` user, so they share its Erlang cookie with the system node
# and rabbitmqctl. Debian's `rabbitmq-server` wrapper switches user with `su` and drops
# RABBITMQ_* variables, so the real script under /usr/lib/rabbitmq/bin is started through
# `runuser`.
#
# Partitions: `cluster_partition_handling = pause_minority`, as deploy/rabbitmq-cluster.conf
# sets it for docker-compose.cluster.yml and as quorum queues want it: a node that sees
# less than half the cluster stops its RabbitMQ (closing its client connections, so the
# clients go to a node of the majority, where the quorum queues elect their leaders) and
# starts it again once it sees the majority; it never serves a split brain. The default
# (`ignore`) would leave the cut-off node serving its clients while it can reach no quorum.
# `net_ticktime = 10` (60 by default): a silent partition is noticed within 7.5-12.5 s
# instead of 45-75 s, so the tests do not wait a minute for it; a killed or stopped node is
# noticed at once either way (its connections close).
set -euo pipefail

BASE=${RABBIT_CLUSTER_DIR:-/tmp/saga-rabbit-cluster}
NODES=(1 2 3)
SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server

node_name() { echo "saga-$1@localhost"; }
amqp_port() { echo $((5680 + $1)); }
dist_port() { echo $((25680 + $1)); }
dist_source() { echo "127.0.1.$1"; }
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
cluster_partition_handling = pause_minority
net_ticktime = 10
EOF
    # Its outgoing distribution connections leave from its own address: see partition().
    cat >"$dir/advanced.config" <<EOF
[{kernel, [{inet_dist_connect_options, [{ip, {$(dist_source "$n" | tr . ,)}}]}]}].
EOF
    echo '[].' >"$dir/enabled_plugins"
    chown -R rabbitmq:rabbitmq "$BASE"
    runuser -u rabbitmq -- env -i PATH="$PATH" HOME=/var/lib/rabbitmq \
        RABBITMQ_NODENAME="$(node_name "$n")" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$(amqp_port "$n")" \
        RABBITMQ_DIST_PORT="$(dist_port "$n")" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
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
    # The rules of a partition whose test was killed before it could heal it.
    heal
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
    heal
    for n in "${NODES[@]}"; do stop_node "$n" & done
    wait
    rm -rf "$BASE"
}

# The iptables chain holding the rules of a partition; INPUT jumps to it while one is on.
CHAIN=saga-partition

# Cuts node N off the other two as a network would: every packet between N's distribution
# (Erlang) connections and theirs is dropped on its way in, silently, in both directions —
# N's connections to their listeners (which N opens from its own address, dist_source) and
# theirs to N's (which they open from theirs). The nodes notice only when net_ticktime
# passes without a word. AMQP, epmd (one daemon for every node on this machine, which each
# node keeps its registration with) and rabbitmqctl (which connects from 127.0.0.1) still
# pass: N still answers the CLI and its clients, as a node behind a split would.
partition() {
    local n=$1 o
    if ! command -v iptables >/dev/null; then
        echo "rabbit-cluster: iptables not found (apt-get install -y iptables)" >&2
        exit 1
    fi
    heal
    iptables -N "$CHAIN"
    for o in "${NODES[@]}"; do
        [ "$o" = "$n" ] && continue
        iptables -A "$CHAIN" -p tcp -s "$(dist_source "$n")" --dport "$(dist_port "$o")" -j DROP
        iptables -A "$CHAIN" -p tcp -d "$(dist_source "$n")" --sport "$(dist_port "$o")" -j DROP
        iptables -A "$CHAIN" -p tcp -s "$(dist_source "$o")" --dport "$(dist_port "$n")" -j DROP
        iptables -A "$CHAIN" -p tcp -d "$(dist_source "$o")" --sport "$(dist_port "$n")" -j DROP
    done
    iptables -I INPUT -j "$CHAIN"
}

# Removes the rules of any partition (idempotent; nothing to do without iptables).
heal() {
    command -v iptables >/dev/null || return 0
    while iptables -D INPUT -j "$CHAIN" 2>/dev/null; do :; done
    iptables -F "$CHAIN" 2>/dev/null || true
    iptables -X "$CHAIN" 2>/dev/null || true
}

# Waits until node N's RabbitMQ runs again once a partition has healed: pause_minority
# starts it by itself when it sees the majority. That start can hang in global:sync() on
# this RabbitMQ (3.10.8) with Erlang >= 25.1: `global` on both sides of the healed link may
# disagree on whether they have synced, and RabbitMQ's own remedy ("Global hang
# workaround" in the node's log) sends messages Erlang 25.1 no longer reads
# (rabbitmq-server#6034, fixed in 3.10.9 by #6046). After 20 s without the node running,
# this applies the fixed remedy: to `global` on N and on each node N is connected to but
# not synced with, a nodedown and a nodeup naming the connection, so both sync again.
rejoin() {
    local n=$1 deadline=$((SECONDS + 120)) nudge=$((SECONDS + 20))
    until app_up "$n"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "rabbit-cluster: node $n is not running 120 s after the partition healed" >&2
            exit 1
        fi
        if [ "$SECONDS" -ge "$nudge" ]; then
            echo "rabbit-cluster: node $n still not running; re-syncing global with:" \
                "$(ctl "$n" eval "$RESYNC_GLOBAL" 2>&1)" >&2
            nudge=$((SECONDS + 20))
        fi
        sleep 0.5
    done
}

# rabbitmq-server#6046's unblock_global_peer/1, for every connected node not synced with.
RESYNC_GLOBAL='G = global_name_server, This = node(),
Cid = fun(State, Node) -> maps:get({connection_id, Node}, element(3, State), undefined) end,
[begin
     Ours = sys:get_state(G),
     Theirs = erpc:call(Peer, sys, get_state, [G]),
     {G, This} ! {nodedown, Peer, #{connection_id => Cid(Ours, Peer)}},
     {G, Peer} ! {nodedown, This, #{connection_id => Cid(Theirs, This)}},
     {G, This} ! {nodeup, Peer, #{connection_id => Cid(Ours, Peer)}},
     {G, Peer} ! {nodeup, This, #{connection_id => Cid(Theirs, This)}},
     Peer
 end || Peer <- nodes() -- element(4, sys:get_state(G))].'

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
partition) partition "${2:?node 1-3}" ;;
heal) heal ;;
rejoin) rejoin "${2:?node 1-3}" ;;
*)
    echo "usage: $0 start|stop|urls|start-node N|stop-node N|kill-node N|partition N|heal|rejoin N" >&2
    exit 2
    ;;
esac
