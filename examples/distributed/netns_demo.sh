#!/usr/bin/env bash
# netns_demo.sh — the distributed example across two simulated machines
# (part of make demo when run as root): network namespaces A and B on a
# bridge (tests/net/netns.sh), nothing on the machine's own network.
#
#   netns_demo.sh TASK_MASTER TASK_WORKER
#
# A (10.77.0.1): redis-server with a password, and task_master.
# B (10.77.0.2): two task_worker programs, which reach A only by the URL.
# Without root, prints how to run it and exits 0.
master=$1
worker=$2
echo "---- distributed across two hosts: A runs Redis and task_master, B 2 x task_worker ----"
if [[ $(id -u) -ne 0 ]]; then
    echo "distributed (two hosts): skipped: network namespaces need root. Run:"
    echo "  sudo bash $0 $master $worker"
    exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
    echo "distributed (two hosts): skipped (no redis-server installed here)."
    exit 0
fi
# shellcheck source=tests/net/netns.sh
. "$(cd "$(dirname "$0")" && pwd)/../../tests/net/netns.sh"
net_setup A B || exit 1
dir=$(mktemp -d)
chmod 755 "$dir"
trap 'net_teardown; rm -rf "$dir"' EXIT
net_deadline 90
pass=demo$$
net_redis A "$dir" "$pass" || exit 1
url="redis://:$pass@$(net_ip A):6379"
echo "A: redis-server on $(net_ip A):6379; B: $(net_ip B)"
net_spawn B "$worker" "$url"
w1=$NET_LAST_PID
net_spawn B "$worker" "$url"
w2=$NET_LAST_PID
net_exec A timeout 60 "$master" "$url"
rc=$?
# The master stopped the workers (mp_worker_stop).
wait "$w1" "$w2"
exit $rc
