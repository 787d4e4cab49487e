#!/usr/bin/env bash
# run.sh — the distributed pool across simulated hosts (ctest net_pool_*).
#
#   run.sh NET_POOL DELAY_RELAY SCENARIO
#
# Builds the network of netns.sh: hosts redis (10.77.0.1), client and
# w1..w3, one net_pool worker on each w host (reconnect=1), then:
#   latency        1 ms round trip between hosts: a map of 600 tasks over
#                  the 3 worker hosts gets every result; every host served
#   partition      w1 cut off while it runs a task: the map completes on w2
#                  and w3 (w1's tasks reclaimed once its heartbeat key
#                  expires), one result per task, every task ran (runs may
#                  repeat, results never); then w1 healed: it did not exit,
#                  reconnects and serves a second map
#   restart        Redis (appendonly yes, appendfsync always) SIGKILLed and
#                  started again while a map is in flight: every task whose
#                  submission returned gets its result
#   client_killed  the client SIGKILLed (and its host cut) during a map:
#                  its key <prefix>pool:net:client:<id> and its result list
#                  expire within two client leases (10 s each), its
#                  pending tasks are dropped (not all run)
# Needs root; fails with the reason when namespaces cannot be made.
set -uo pipefail
net_pool=$1
relay=$2
scenario=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/net/netns.sh
. "$here/netns.sh"

fail() {
    echo "net_pool $scenario: FAIL: $*" >&2
    exit 1
}
say() { echo "net_pool $scenario: $*"; }

net_setup redis client w1 w2 w3 || fail "cannot build the network (see above)"
dir=$(mktemp -d)
chmod 755 "$dir"
trap 'net_teardown; rm -rf "$dir"' EXIT
# Under ctest's TIMEOUT (90 s), so that the network is always torn down.
net_deadline 80
pass=net$$
url_of() { echo "redis://:$pass@$(net_ip redis):6379?reconnect=1&timeout=${1:-5}"; }
runs=$dir/runs

case $scenario in
latency) net_latency 500 "$relay" || fail "no latency" ;;
esac
redis_opts=()
if [[ $scenario == restart ]]; then
    redis_opts=(--appendonly yes --appendfsync always)
fi
net_redis redis "$dir" "$pass" "${redis_opts[@]}" || fail "redis-server"

declare -A wpid
start_workers() {
    local w
    for w in w1 w2 w3; do
        # A short timeout: a worker cut off notices within a second.
        net_spawn "$w" "$net_pool" worker "$(url_of 1)" "$w" "$runs" >>"$dir/$w.log" 2>&1
        wpid[$w]=$NET_LAST_PID
    done
}
start_workers

# runs_of ID_FROM ID_TO [HOST] — number of runs of the ids in the range.
runs_of() {
    awk -v a="$1" -v b="$2" -v h="${3:-}" '$2 >= a && $2 <= b && (h == "" || $1 == h)' "$runs" \
        2>/dev/null | wc -l
}
# check_runs FIRST N — every task ran at least once; prints the repeats.
check_runs() {
    local first=$1 n=$2 missing dup
    missing=$(awk -v a="$first" -v n="$n" '$2 >= a && $2 < a + n {seen[$2] = 1}
        END {m = 0; for (i = a; i < a + n; i++) if (!(i in seen)) m++; print m}' "$runs")
    dup=$(awk -v a="$first" -v n="$n" '$2 >= a && $2 < a + n {c[$2]++}
        END {d = 0; for (k in c) if (c[k] > 1) d += c[k] - 1; print d}' "$runs")
    [[ $missing == 0 ]] || fail "$missing of the tasks $first..$((first + n - 1)) never ran"
    say "runs: every task ran; $dup ran more than once (at least once delivery;" \
        "the client kept one result each)"
}
client() { net_exec client timeout "${CLIENT_TIMEOUT:-40}" "$net_pool" "$@"; }

case $scenario in
latency)
    client map "$(url_of)" 0 600 1 || fail "the map failed"
    check_runs 0 600
    for w in w1 w2 w3; do
        c=$(runs_of 0 599 "$w")
        [[ $c -gt 0 ]] || fail "host $w ran no task"
        say "host $w ran $c tasks"
    done
    ;;
partition)
    n=120
    client map "$(url_of)" 0 $n 50 >"$dir/map1.log" 2>&1 &
    cpid=$!
    for ((i = 0; i < 200; i++)); do
        [[ $(runs_of 0 $((n - 1)) w1) -ge 3 ]] && break
        sleep 0.05
    done
    [[ $(runs_of 0 $((n - 1)) w1) -ge 3 ]] || fail "w1 ran no task before the cut"
    net_cut w1
    t_cut=$(date +%s.%N)
    say "w1 cut off after it started $(runs_of 0 $((n - 1)) w1) tasks"
    wait $cpid
    rc=$?
    cat "$dir/map1.log"
    [[ $rc == 0 ]] || fail "the map did not complete while w1 was cut off (exit $rc)"
    say "map complete $(awk -v a="$t_cut" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s" \
        "after the cut, w1 still cut off"
    check_runs 0 $n
    kill -0 "${wpid[w1]}" 2>/dev/null || fail "the worker of w1 exited during the partition"
    net_heal w1
    t_heal=$(date +%s)
    # w1 rejoins once its worker has reconnected: its heartbeat key
    # (<prefix>pool:net:worker:<host>:<pid>:<address>) is back.
    pat="mp:pool:net:worker:*:${wpid[w1]}:*"
    for ((i = 0; i < 150; i++)); do
        [[ -n $(net_cli redis "$pass" --scan --pattern "$pat") ]] && break
        sleep 0.1
    done
    [[ -n $(net_cli redis "$pass" --scan --pattern "$pat") ]] ||
        fail "w1's heartbeat key did not come back within 15 s of the heal"
    say "w1 beats again $(($(date +%s) - t_heal)) s after the heal"
    client map "$(url_of)" 1000 $n 50 || fail "the map after the heal failed"
    c=$(runs_of 1000 $((1000 + n - 1)) w1)
    [[ $c -gt 0 ]] || fail "w1 ran no task after the heal"
    say "w1 ran $c of the $n tasks after the heal"
    check_runs 1000 $n
    ;;
restart)
    n=200
    rm -f "$dir/submitted"
    client map "$(url_of)" 0 $n 20 "$dir/submitted" >"$dir/map.log" 2>&1 &
    cpid=$!
    for ((i = 0; i < 200; i++)); do
        [[ -e $dir/submitted && $(runs_of 0 $((n - 1))) -ge 10 ]] && break
        sleep 0.05
    done
    [[ -e $dir/submitted ]] || fail "the submission did not return"
    before=$(runs_of 0 $((n - 1)))
    t_kill=$(date +%s)
    kill -KILL "$NET_REDIS_PID"
    wait "$NET_REDIS_PID" 2>/dev/null
    say "Redis SIGKILLed after $before runs; started again (appendfsync always)"
    sleep 0.3
    net_redis redis "$dir" "$pass" "${redis_opts[@]}" || fail "redis-server did not restart"
    wait $cpid
    rc=$?
    cat "$dir/map.log"
    [[ $rc == 0 ]] || fail "the map lost tasks across the restart (exit $rc)"
    # The tasks the workers held at the kill are still theirs (pending on
    # their consumers, whose heartbeats go on): they run them again as soon
    # as they reconnect, not after the 30 s visibility timeout.
    t_done=$(($(date +%s) - t_kill))
    [[ $t_done -lt 20 ]] ||
        fail "the map took $t_done s after the kill: the tasks held waited for the visibility timeout"
    say "the map completed $t_done s after the kill"
    check_runs 0 $n
    ;;
client_killed)
    # 300 ms tasks: the map outlasts the lease (10 s), so that the tasks
    # still pending when the lease lapses are the ones dropped.
    n=300
    client map "$(url_of)" 0 $n 300 >"$dir/map.log" 2>&1 &
    cpid=$!
    for ((i = 0; i < 200; i++)); do
        [[ $(runs_of 0 $((n - 1))) -ge 10 ]] && break
        sleep 0.05
    done
    key=$(net_cli redis "$pass" --scan --pattern 'mp:pool:net:client:*' | head -n 1)
    [[ -n $key ]] || fail "no key mp:pool:net:client:<id> while the client lives"
    id=${key##*:}
    say "client key $key present"
    pkill -KILL -P "$cpid" 2>/dev/null
    kill -KILL "$cpid" 2>/dev/null
    net_cut client
    t_kill=$(date +%s)
    at_kill=$(runs_of 0 $((n - 1)))
    say "client SIGKILLed after $at_kill runs"
    # The key lapses a lease after the last beat; a result a worker pushed
    # just before gives the list one more lease.
    for ((i = 0; i < 250; i++)); do
        [[ -z $(net_cli redis "$pass" --scan --pattern "mp:pool:net:*$id*") ]] && break
        sleep 0.1
    done
    left=$(net_cli redis "$pass" --scan --pattern "mp:pool:net:*$id*")
    [[ -z $left ]] || fail "keys of the dead client still there 2 leases after: $left"
    say "the client's keys expired $(($(date +%s) - t_kill)) s after its death"
    sleep 1
    total=$(runs_of 0 $((n - 1)))
    [[ $total -lt $n ]] || fail "all $n tasks ran after the client died ($at_kill at its death)"
    pending=$(net_cli redis "$pass" xlen mp:pool:net:tasks)
    [[ $pending == 0 ]] || fail "$pending entries left on the task stream"
    say "$total of $n tasks ran; the rest were dropped, the task stream is empty"
    ;;
*) fail "unknown scenario" ;;
esac
# The workers return on mp_worker_stop, each with status 0 (a sanitizer's
# report would make it non-zero).
[[ $scenario == client_killed ]] && net_heal client && sleep 1
client stop "$(url_of)" || fail "mp_worker_stop failed"
for w in w1 w2 w3; do
    for ((i = 0; i < 100; i++)); do
        kill -0 "${wpid[$w]}" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "${wpid[$w]}" 2>/dev/null && fail "the worker of $w did not return on mp_worker_stop"
    wait "${wpid[$w]}"
    rc=$?
    [[ $rc == 0 ]] || { cat "$dir/$w.log"; fail "the worker of $w exited with status $rc"; }
done
say "the workers returned on mp_worker_stop"
say "PASS"
