#!/bin/sh
# run.sh — the distributed example on one machine (part of make demo):
# a throw-away redis-server with a password on a free port, two
# task_worker programs, then task_master; all connected only by the URL.
#
#   run.sh TASK_MASTER TASK_WORKER
#
# Across two machines (A runs Redis and the master, B the workers):
#   A$ redis-server --port 6379 --requirepass secret --bind 0.0.0.0 --protected-mode no
#   B$ ./task_worker redis://:secret@A:6379 &  ./task_worker redis://:secret@A:6379 &
#   A$ ./task_master redis://:secret@A:6379
# (open port 6379 between them only; the password is the only protection.)
master=$1
worker=$2
howto() {
    echo "Across two machines (A: Redis and the master, B: the workers):"
    echo "  A\$ redis-server --port 6379 --requirepass secret --bind 0.0.0.0 --protected-mode no"
    echo "  B\$ ${worker##*/} redis://:secret@A:6379 &  ${worker##*/} redis://:secret@A:6379 &"
    echo "  A\$ ${master##*/} redis://:secret@A:6379"
}
echo "---- distributed: task_master + 2 x task_worker over Redis ----"
if ! command -v redis-server >/dev/null 2>&1; then
    echo "distributed: skipped (no redis-server installed here)."
    howto
    exit 0
fi
dir=$(mktemp -d)
port=$((20000 + $$ % 20000))
pass=demo$$
redis-server --port "$port" --bind 127.0.0.1 --requirepass "$pass" --save '' \
    --appendonly no --dir "$dir" --daemonize no >"$dir/log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
url="redis://:$pass@127.0.0.1:$port"
# Ready when it answers (redis-cli comes with redis-server).
i=0
until [ "$(redis-cli -p "$port" -a "$pass" --no-auth-warning ping 2>/dev/null)" = PONG ]; do
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then
        echo "distributed: redis-server did not start:"; cat "$dir/log"; exit 1
    fi
    sleep 0.1
done
"$worker" "$url" & w1=$!
"$worker" "$url" & w2=$!
"$master" "$url"
rc=$?
wait $w1 $w2
echo
howto
exit $rc
