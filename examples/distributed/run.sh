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
pass=demo$$
server=
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
# A port that another program may hold by chance (an ephemeral port of
# some connection): a server that cannot bind exits, and the next port is
# tried.
try=0
while :; do
    port=$((20000 + ($$ + try * 7919) % 12000))
    redis-server --port "$port" --bind 127.0.0.1 --requirepass "$pass" --save '' \
        --appendonly no --dir "$dir" --daemonize no >"$dir/log" 2>&1 &
    server=$!
    # Ready once it says so in its log (it holds the port then, so the
    # ping below cannot reach another program) and answers.
    i=0
    while kill -0 "$server" 2>/dev/null && [ "$i" -le 100 ] &&
        ! grep -q "Ready to accept connections" "$dir/log"; do
        i=$((i + 1))
        sleep 0.1
    done
    if grep -q "Ready to accept connections" "$dir/log" &&
        [ "$(redis-cli -p "$port" -a "$pass" --no-auth-warning ping 2>/dev/null)" = PONG ]; then
        break
    fi
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
    try=$((try + 1))
    if [ "$try" -ge 10 ]; then
        echo "distributed: redis-server did not start:"; cat "$dir/log"; exit 1
    fi
done
url="redis://:$pass@127.0.0.1:$port"
"$worker" "$url" & w1=$!
"$worker" "$url" & w2=$!
"$master" "$url"
rc=$?
wait $w1 $w2
echo
howto
exit $rc
