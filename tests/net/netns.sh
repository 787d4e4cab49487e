# shellcheck shell=bash
# netns.sh — a small network of simulated hosts on this machine, for the
# distributed pool's tests, benchmarks and demo. Sourced by bash scripts:
#
#   . tests/net/netns.sh
#   net_setup redis client w1 w2 w3   # one namespace per host, 10.77.0.1...
#   net_delay 0.5ms                   # netem on every host's link (each way)
#   net_exec w1 some-program ...      # run a program on host w1
#   net_cut w1; net_heal w1           # partition a host, then heal it
#
# Every host is a network namespace with one interface, eth0, a veth whose
# other end is a port of the bridge br0 in a namespace of its own: nothing
# is created in the machine's own namespace, so the host's network is
# never touched. Hosts get 10.77.0.<index> in the order given (net_ip NAME
# prints it). Names hold the pid of the script (mpn<pid>-<host>), so runs
# in parallel do not collide. net_setup installs an EXIT trap (and one for
# INT, TERM, HUP) that kills the processes started with net_spawn and
# deletes the namespaces; net_teardown does the same by hand.
#
# Needs root (creating namespaces), iproute2, veth and bridges. When one is
# missing, net_setup prints the reason and returns 1: callers fail, they do
# not skip. Latency needs the netem qdisc (kernel module sch_netem):
# NET_HAVE_NETEM is 1 when it works, else 0 with the reason in
# NET_NO_NETEM_REASON, and net_delay fails with that reason.

NET_TAG=mpn$$
NET_HOSTS=()
NET_PIDS=()

net_ns() { echo "$NET_TAG-$1"; }

net_ip() {
    local i
    for i in "${!NET_HOSTS[@]}"; do
        if [[ ${NET_HOSTS[$i]} == "$1" ]]; then
            echo "10.77.0.$((i + 1))"
            return 0
        fi
    done
    echo "net_ip: unknown host '$1'" >&2
    return 1
}

# net_check — whether namespaces, veth, bridges and netem can be used here;
# prints the reason and returns 1 when not.
net_check() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "netns: needs root (network namespaces, veth, tc); run as root (CI does)" >&2
        return 1
    fi
    local t
    for t in ip tc; do
        if ! command -v "$t" >/dev/null 2>&1; then
            echo "netns: '$t' not found: apt-get install iproute2" >&2
            return 1
        fi
    done
    local probe=$NET_TAG-probe err
    if ! err=$(ip netns add "$probe" 2>&1); then
        echo "netns: cannot create a network namespace: $err" >&2
        return 1
    fi
    if ! err=$(ip -n "$probe" link add p0 type veth peer name p1 2>&1); then
        ip netns del "$probe" 2>/dev/null
        echo "netns: cannot create a veth pair (kernel without CONFIG_VETH?): $err" >&2
        return 1
    fi
    if ! err=$(ip -n "$probe" link add b0 type bridge 2>&1); then
        ip netns del "$probe" 2>/dev/null
        echo "netns: cannot create a bridge (kernel without CONFIG_BRIDGE?): $err" >&2
        return 1
    fi
    NET_HAVE_NETEM=1
    if ! err=$(tc -n "$probe" qdisc add dev p0 root netem delay 1ms 2>&1); then
        # The module may only need loading.
        modprobe sch_netem 2>/dev/null
        if ! err=$(tc -n "$probe" qdisc add dev p0 root netem delay 1ms 2>&1); then
            NET_HAVE_NETEM=0
            NET_NO_NETEM_REASON="tc netem does not work (kernel without sch_netem, CONFIG_NET_SCH_NETEM): $err"
        fi
    fi
    ip netns del "$probe"
}

# net_sweep — delete the namespaces of earlier runs whose script is gone
# (one killed with SIGKILL could not tear its network down).
net_sweep() {
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        [[ $ns =~ ^mpn([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        if [[ $pid != "$$" ]] && ! kill -0 "$pid" 2>/dev/null; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
            ip netns del "$ns" 2>/dev/null
        fi
    done
}

# net_setup HOST... — the bridge and one namespace per host, links up.
# Fails with the reason when the network cannot be built.
net_setup() {
    net_check || return 1
    net_sweep
    trap net_teardown EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    local br h i=0 ns
    br=$(net_ns br)
    ip netns add "$br" || return 1
    ip -n "$br" link add br0 type bridge || return 1
    ip -n "$br" link set br0 up || return 1
    ip -n "$br" link set lo up || return 1
    for h in "$@"; do
        i=$((i + 1))
        ns=$(net_ns "$h")
        NET_HOSTS+=("$h")
        ip netns add "$ns" || return 1
        ip -n "$ns" link set lo up || return 1
        # Created in the bridge's namespace, the host's end moved at once.
        ip -n "$br" link add "p$i" type veth peer name eth0 netns "$ns" || return 1
        ip -n "$br" link set "p$i" master br0 || return 1
        ip -n "$br" link set "p$i" up || return 1
        ip -n "$ns" addr add "10.77.0.$i/24" dev eth0 || return 1
        ip -n "$ns" link set eth0 up || return 1
    done
}

# The bridge port of a host.
net_port() {
    local i
    for i in "${!NET_HOSTS[@]}"; do
        if [[ ${NET_HOSTS[$i]} == "$1" ]]; then
            echo "p$((i + 1))"
            return 0
        fi
    done
    echo "netns: unknown host '$1'" >&2
    return 1
}

# net_delay DELAY [HOST...] — netem delay on the hosts' eth0 (all hosts
# when none is named), i.e. on what each sends: two hosts with 0.5ms each
# have a round trip of 1 ms between them.
net_delay() {
    local d=$1 h
    shift
    if [[ $NET_HAVE_NETEM != 1 ]]; then
        echo "netns: $NET_NO_NETEM_REASON" >&2
        return 1
    fi
    for h in "${@:-${NET_HOSTS[@]}}"; do
        tc -n "$(net_ns "$h")" qdisc replace dev eth0 root netem delay "$d" || return 1
    done
}

# net_cut HOST — partition a host: its bridge port goes down, so nothing
# reaches it or leaves it (packets are dropped silently; its TCP
# connections stay open on both sides until their timeouts).
net_cut() { ip -n "$(net_ns br)" link set "$(net_port "$1")" down; }

# net_heal HOST — the port up again.
net_heal() { ip -n "$(net_ns br)" link set "$(net_port "$1")" up; }

# net_exec HOST CMD... — run a command on a host (in the foreground).
net_exec() {
    local h=$1
    shift
    ip netns exec "$(net_ns "$h")" "$@"
}

# net_spawn HOST CMD... — the same in the background; its pid is in
# NET_LAST_PID and is killed by net_teardown.
net_spawn() {
    local h=$1
    shift
    ip netns exec "$(net_ns "$h")" "$@" &
    NET_LAST_PID=$!
    NET_PIDS+=("$NET_LAST_PID")
}

# net_deadline SECONDS — end the script (SIGTERM, so that its EXIT trap
# tears the network down) if it still runs after SECONDS: set it below the
# caller's own timeout (ctest's kills without a trap).
net_deadline() {
    local me=$$
    (
        sleep "$1" &
        s=$!
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        wait "$s" || exit 0
        echo "netns: deadline of $1 s reached; stopping" >&2
        kill -TERM "$me" 2>/dev/null
    ) &
    NET_DEADLINE_PID=$!
    NET_PIDS+=("$NET_DEADLINE_PID")
}

# net_teardown — kill what net_spawn started, delete the namespaces.
net_teardown() {
    local pid ns
    for pid in "${NET_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    sleep 0.1
    for pid in "${NET_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${NET_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    NET_PIDS=()
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        if [[ $ns == "$NET_TAG-"* ]]; then
            # Processes still in a namespace (started by a spawned one) go too.
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
            ip netns del "$ns" 2>/dev/null
        fi
    done
    NET_HOSTS=()
}

# net_redis HOST DIR PASSWORD [REDIS OPTION...] — a redis-server on HOST,
# port 6379 on every address of the host, files in DIR; returns once it
# answers (at most 10 s). Its pid is in NET_REDIS_PID. Without netem and
# with NET_RELAY_DELAY_US set, the server listens on 127.0.0.1:6380 of the
# host and the relay NET_RELAY (tests/net/delay_relay.c) serves
# <ip>:6379 with that delay each way: the latency netem would give.
net_redis() {
    local h=$1 dir=$2 pass=$3 i port=6379 bind="0.0.0.0"
    shift 3
    if [[ -n ${NET_RELAY_DELAY_US:-} ]]; then
        port=6380 bind=127.0.0.1
    fi
    net_spawn "$h" redis-server --port "$port" --bind "$bind" --protected-mode no \
        --requirepass "$pass" --save '' --dir "$dir" --daemonize no "$@" >>"$dir/redis.log" 2>&1
    # shellcheck disable=SC2034 # for the callers
    NET_REDIS_PID=$NET_LAST_PID
    for ((i = 0; i < 100; i++)); do
        if [[ $(net_exec "$h" redis-cli -p "$port" -a "$pass" --no-auth-warning ping 2>/dev/null) \
            == PONG ]]; then
            if [[ -n ${NET_RELAY_DELAY_US:-} && -z ${NET_RELAY_PID:-} ]]; then
                net_spawn "$h" "$NET_RELAY" "$(net_ip "$h")" 6379 6380 "$NET_RELAY_DELAY_US" \
                    >>"$dir/relay.log" 2>&1
                NET_RELAY_PID=$NET_LAST_PID
                sleep 0.2
            fi
            return 0
        fi
        sleep 0.1
    done
    echo "netns: redis-server did not start on $h:" >&2
    cat "$dir/redis.log" >&2
    return 1
}

# net_cli HOST PASSWORD ARG... — redis-cli on HOST against its own server.
net_cli() {
    local h=$1 pass=$2 port=6379
    shift 2
    if [[ -n ${NET_RELAY_DELAY_US:-} ]]; then
        port=6380
    fi
    net_exec "$h" redis-cli -p "$port" -a "$pass" --no-auth-warning "$@"
}

# net_latency HALF_RTT_US RELAY — a round trip of 2 x HALF_RTT_US between
# any two hosts: netem on every host's link, or, on a kernel without
# netem, the relay program RELAY in front of the server net_redis starts
# next (only traffic to that server is delayed then). Prints which.
# MP_NET_REQUIRE_NETEM=1 makes a kernel without netem a failure.
net_latency() {
    local us=$1
    if [[ $NET_HAVE_NETEM == 1 ]]; then
        net_delay "${us}us" || return 1
        echo "netns: netem delay ${us}us on every host's link (round trip $((2 * us)) us)"
    elif [[ ${MP_NET_REQUIRE_NETEM:-0} == 1 ]]; then
        echo "netns: $NET_NO_NETEM_REASON (MP_NET_REQUIRE_NETEM=1)" >&2
        return 1
    else
        NET_RELAY=$2
        NET_RELAY_DELAY_US=$us
        echo "netns: $NET_NO_NETEM_REASON"
        echo "netns: latency emulated instead by $(basename "$2") in front of Redis" \
            "(${us}us each way)"
    fi
}
