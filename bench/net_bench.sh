#!/usr/bin/env bash
# net_bench.sh — the row redis_pool_rtt1ms_tasks_per_s (bench/run.py):
# the distributed pool with a 1 ms round trip between the hosts.
#
#   net_bench.sh BENCH_RPOOL_NET DELAY_RELAY N
#
# Builds the hosts of tests/net/netns.sh (redis, client, w1..w3; needs
# root), delays every link by 0.5 ms each way (netem, or the relay on
# kernels without it), starts Redis and one worker on each w host, then
# runs `BENCH_RPOOL_NET rtt1ms_client URL N` on the client host, which
# prints the RESULT line. The set-up is outside its clock.
set -uo pipefail
prog=$1
relay=$2
n=$3
# shellcheck source=tests/net/netns.sh
. "$(dirname "$0")/../tests/net/netns.sh"
net_setup redis client w1 w2 w3 || exit 1
dir=$(mktemp -d)
chmod 755 "$dir"
trap 'net_teardown; rm -rf "$dir"' EXIT
net_deadline 110
pass=bench$$
net_latency 500 "$relay" >&2 || exit 1
net_redis redis "$dir" "$pass" >&2 || exit 1
url="redis://:$pass@$(net_ip redis):6379"
for w in w1 w2 w3; do
    net_spawn "$w" "$prog" rtt1ms_worker "$url" >>"$dir/$w.log" 2>&1
done
net_exec client timeout 300 "$prog" rtt1ms_client "$url" "$n"
