#!/usr/bin/env python3
"""Run the multiproc benchmarks side by side (bench/README.md).

For each row id it runs the multiproc program, the CPython peer and the
raw-syscall floor, alternating them, --reps times (after one calibration run
each that also warms up), takes the medians and computes

    speedup_vs_cpython  how many times better multiproc is than CPython
                        (above 1 = faster, whatever the unit's direction)
    cost_vs_floor       how many times the floor's cost multiproc pays
                        (1 = at the floor; times: multiproc/floor,
                        rates: floor/multiproc)

It prints an aligned table with each row's targets and a PASS/MISS mark,
writes bench/results.csv (keeping the rows of ids not run this time) and
draws bench/results.png with gnuplot.

    python3 bench/run.py --build build-bench [--only ID[,ID...]] [--reps N]

Every program prints one line "RESULT value=<v> elapsed=<s> [key=value...]"
and measures with CLOCK_MONOTONIC inside itself, so start-up is excluded.
Standard library only.
"""
import argparse
import csv
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CSV_HEADER = ["id", "unit", "multiproc", "cpython", "floor",
              "speedup_vs_cpython", "cost_vs_floor", "machine", "date"]
IMPLS = ("multiproc", "cpython", "floor")

# The rows. Each runs three commands: multiproc and floor name a program
# built in <build>/bench/, cpython a script in bench/peers/; the iteration
# count is appended by this script. `pilot` is the iteration count of the
# calibration run (aim at ~0.05-0.1 s); the measured runs are then scaled to
# last about --seconds each. `floor_follows` lists keys of the multiproc
# program's RESULT line whose values are appended to the floor's command, so
# that the floor runs on the same resources as the library (the pipe size).
# `pin`: the row's producer and consumer are pinned to two different CPUs
# (BENCH_PIN, see --pin), because unpinned the scheduler sometimes puts both
# on one CPU and sometimes not, and on the 2-core VMs those two cases differ
# by up to 10x for 1 MiB messages (cross-CPU wake-ups are expensive there):
# the median of 5 would be a lottery. Two CPUs is the case multiprocessing
# exists for.
# Later rows add themselves here, each with its targets.
ROWS = [
    {
        "id": "process_start_fork_ms", "unit": "ms", "higher_is_better": False,
        "multiproc": ["bench_process", "fork"],
        "cpython": ["process.py", "fork"],
        "floor": ["floor_process", "fork"],
        "pilot": {"multiproc": 200, "cpython": 30, "floor": 300},
        "targets": {"speedup_vs_cpython": 15.0, "cost_vs_floor": 1.3},
    },
    {
        "id": "process_start_spawn_ms", "unit": "ms", "higher_is_better": False,
        "multiproc": ["bench_process", "spawn"],
        "cpython": ["process.py", "spawn"],
        "floor": ["floor_process", "spawn"],
        "pilot": {"multiproc": 50, "cpython": 3, "floor": 50},
        "targets": {"speedup_vs_cpython": 20.0, "cost_vs_floor": 2.0},
    },
    {
        "id": "process_start_forkserver_ms", "unit": "ms", "higher_is_better": False,
        "multiproc": ["bench_process", "forkserver"],
        "cpython": ["process.py", "forkserver"],
        "floor": ["floor_process", "fork"],
        "pilot": {"multiproc": 200, "cpython": 10, "floor": 300},
        "targets": {"speedup_vs_cpython": 10.0, "cost_vs_floor": 1.5},
    },
    {
        "id": "pipe_64B_msgs_per_s", "unit": "msgs/s", "higher_is_better": True,
        "multiproc": ["bench_pipe", "msg64"],
        "cpython": ["pipe.py", "msg64"],
        "floor": ["floor_pipe", "msg64"],
        "floor_follows": ["pipe_size"], "pin": True,
        "pilot": {"multiproc": 100000, "cpython": 50000, "floor": 150000},
        "targets": {"speedup_vs_cpython": 2.5, "cost_vs_floor": 1 / 0.8},
    },
    {
        "id": "pipe_1MiB_GiB_per_s", "unit": "GiB/s", "higher_is_better": True,
        "multiproc": ["bench_pipe", "mib"],
        "cpython": ["pipe.py", "mib"],
        "floor": ["floor_pipe", "mib"],
        "floor_follows": ["pipe_size"], "pin": True,
        "pilot": {"multiproc": 60, "cpython": 40, "floor": 60},
        "targets": {"cost_vs_floor": 1 / 0.9},
    },
    {
        # CPython's peer is its own shared heap, multiprocessing.heap
        # (BufferWrapper, behind RawArray/RawValue): allocate 64 bytes, free
        # them by dropping the last reference. The floor is glibc's private
        # malloc+free, which shares nothing.
        "id": "alloc_64B_ns", "unit": "ns", "higher_is_better": False,
        "multiproc": ["bench_heap", "alloc64"],
        "cpython": ["heap.py", "alloc64"],
        "floor": ["floor_heap", "alloc64"],
        "pilot": {"multiproc": 2000000, "cpython": 5000, "floor": 2000000},
        "targets": {"cost_vs_floor": 3.0},
    },
    {
        "id": "lock_ns", "unit": "ns", "higher_is_better": False,
        "multiproc": ["bench_lock", "lock"],
        "cpython": ["lock.py", "lock"],
        "floor": ["floor_lock", "lock"],
        "pilot": {"multiproc": 2000000, "cpython": 200000, "floor": 2000000},
        "targets": {"speedup_vs_cpython": 3.0, "cost_vs_floor": 1.2},
    },
    {
        "id": "lock_handoff_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_lock", "handoff"],
        "cpython": ["lock.py", "handoff"],
        "floor": ["floor_lock", "handoff"],
        "pin": True,
        "pilot": {"multiproc": 5000, "cpython": 2000, "floor": 20000},
    },
    {
        "id": "value_incr_2proc_s", "unit": "s", "higher_is_better": False,
        "multiproc": ["bench_lock", "value_incr"],
        "cpython": ["lock.py", "value_incr"],
        "floor": ["floor_lock", "value_incr"],
        "pin": True,
        "pilot": {"multiproc": 200000, "cpython": 20000, "floor": 200000},
    },
    {
        "id": "queue_64B_msgs_per_s", "unit": "msgs/s", "higher_is_better": True,
        "multiproc": ["bench_queue", "msg64"],
        "cpython": ["mpqueue.py", "msg64"],
        "floor": ["floor_ring", "msg64"], "pin": True,
        "pilot": {"multiproc": 200000, "cpython": 20000, "floor": 500000},
        # The floor is a hand-written single-producer, single-consumer ring
        # in shared memory (a pipe is slower than the library's queue, so
        # it is no floor). >= 10 M msgs/s is about 90x CPython's 110 k/s.
        "targets": {"value": 10000000.0, "speedup_vs_cpython": 90.0},
    },
    {
        "id": "queue_64B_2x2_msgs_per_s", "unit": "msgs/s", "higher_is_better": True,
        "multiproc": ["bench_queue", "msg64x2"],
        "cpython": ["mpqueue.py", "msg64x2"],
        "floor": ["floor_ring", "msg64"], "pin": True,
        "pilot": {"multiproc": 200000, "cpython": 20000, "floor": 500000},
    },
    {
        "id": "queue_1MiB_GiB_per_s", "unit": "GiB/s", "higher_is_better": True,
        "multiproc": ["bench_queue", "mib"],
        "cpython": ["mpqueue.py", "mib"],
        "floor": ["floor_memcpy", "mib"], "pin": True,
        "pilot": {"multiproc": 100, "cpython": 40, "floor": 200},
        # >= 6 GiB/s against CPython's ~1.6 GiB/s.
        "targets": {"value": 6.0, "speedup_vs_cpython": 3.75},
    },
    {
        "id": "queue_1MiB_zerocopy_GiB_per_s", "unit": "GiB/s", "higher_is_better": True,
        "multiproc": ["bench_queue", "mibzc"],
        "cpython": ["mpqueue.py", "mibzc"],
        # Zero copy moves no payload: its floor is the ring with 1 MiB slots
        # written in place (an 8-byte header), not a memcpy.
        "floor": ["floor_ring", "mibzc"], "pin": True,
        "pilot": {"multiproc": 200, "cpython": 40, "floor": 200000},
    },
    # The pool rows. CPython's sum of squares takes several seconds per run:
    # `max_runs` caps its measured runs (the calibration run, which is a full
    # run at n=1, counts as the first).
    {
        "id": "seed_sumsq_map_s", "unit": "s", "higher_is_better": False,
        "multiproc": ["bench_pool", "sumsq_map"],
        "cpython": ["pool.py", "sumsq"],
        "floor": ["floor_pool", "sumsq_map"],
        "pilot": {"multiproc": 1, "cpython": 1, "floor": 1},
        "max_runs": {"cpython": 2},
        "targets": {"speedup_vs_cpython": 100.0, "cost_vs_floor": 1.5},
    },
    {
        "id": "seed_sumsq_for_s", "unit": "s", "higher_is_better": False,
        "multiproc": ["bench_pool", "sumsq_for"],
        "cpython": ["pool.py", "sumsq"],
        "floor": ["floor_pool", "sumsq_for"],
        "pilot": {"multiproc": 5, "cpython": 1, "floor": 5},
        "max_runs": {"cpython": 2},
        "targets": {"speedup_vs_cpython": 1000.0},
    },
    {
        "id": "pool_roundtrip_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_pool", "roundtrip"],
        "cpython": ["pool.py", "roundtrip"],
        # The floor is a hand-off with both sides spinning on one shared
        # word: one cache line there and back, the limit between two CPUs.
        # The sleeping futex ping-pong, what a task that waits without
        # spinning costs, is measured beside it.
        "floor": ["floor_pool", "roundtrip_spin"],
        "beside": [{"label": "futex ping-pong floor", "cmd": ["floor_pool", "roundtrip"],
                    "pilot": 5000}],
        "pilot": {"multiproc": 5000, "cpython": 300, "floor": 20000},
        "targets": {"speedup_vs_cpython": 8.0, "cost_vs_floor": 1.5},
    },
    {
        "id": "pool_tiny_tasks_per_s", "unit": "tasks/s", "higher_is_better": True,
        "multiproc": ["bench_pool", "tiny"],
        "cpython": ["pool.py", "tiny"],
        "floor": None,
        "pilot": {"multiproc": 100000, "cpython": 2000, "floor": 0},
        # >= 1 M tasks/s with CPython at ~20 k/s here: 50x.
        "targets": {"value": 1000000.0, "speedup_vs_cpython": 50.0},
    },
    {
        # A streaming map: Python's pool.imap over a generator (chunksize
        # 64, the C side's automatic chunk for these items), lines hashed
        # with FNV-1a and taken in order. No floor: the row compares the
        # lazily fed map with CPython's; pool_tiny_tasks_per_s and the
        # sum-of-squares rows measure the pool against its floors.
        "id": "pool_stream_lines_per_s", "unit": "lines/s", "higher_is_better": True,
        "multiproc": ["bench_pool", "stream"],
        "cpython": ["pool.py", "stream"],
        "floor": None,
        "pilot": {"multiproc": 200000, "cpython": 20000, "floor": 0},
    },
    # Pool start: cpu_count workers created and all running a task, then
    # closed and joined. The floor starts as many bare children at once
    # (fork, or posix_spawn of a program that exits in main) and waits.
    {
        "id": "pool_start_fork_ms", "unit": "ms", "higher_is_better": False,
        "multiproc": ["bench_pool", "start_fork"],
        "cpython": ["pool.py", "start_fork"],
        "floor": ["floor_process", "forkn"],
        "floor_follows": ["workers"],
        "pilot": {"multiproc": 50, "cpython": 5, "floor": 100},
    },
    {
        "id": "pool_start_spawn_ms", "unit": "ms", "higher_is_better": False,
        "multiproc": ["bench_pool", "start_spawn"],
        "cpython": ["pool.py", "start_spawn"],
        "floor": ["floor_process", "spawnn"],
        "floor_follows": ["workers"],
        "pilot": {"multiproc": 20, "cpython": 2, "floor": 30},
    },
    {
        "id": "pool_start_forkserver_ms", "unit": "ms", "higher_is_better": False,
        "multiproc": ["bench_pool", "start_forkserver"],
        "cpython": ["pool.py", "start_forkserver"],
        "floor": ["floor_process", "forkn"],
        "floor_follows": ["workers"],
        "pilot": {"multiproc": 50, "cpython": 3, "floor": 100},
    },
    {
        "id": "dict_op_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_dict", "op"],
        "cpython": ["dict.py", "op"],
        "floor": ["floor_dict", "op"],
        "pilot": {"multiproc": 50000, "cpython": 500, "floor": 100000},
        "targets": {"value": 1.0, "speedup_vs_cpython": 60.0},
    },
    {
        # The floor is raw hiredis doing HSET + HGET; CPython's peer needs
        # redis-py, which is optional (the cell stays empty without it).
        "id": "redis_dict_op_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_redis", "op"],
        "cpython": ["redis_dict.py", "op"],
        "floor": ["floor_redis", "op"],
        "pilot": {"multiproc": 2000, "cpython": 200, "floor": 2000},
        "targets": {"cost_vs_floor": 1.2},
    },
    {
        # Put + get on a Redis manager's named queue (public API); floor:
        # raw hiredis RPUSH + BLPOP.
        "id": "redis_queue_op_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_redis", "queue"],
        "cpython": ["redis_dict.py", "queue"],
        "floor": ["floor_redis", "queue"],
        "pilot": {"multiproc": 2000, "cpython": 200, "floor": 2000},
        "targets": {"cost_vs_floor": 1.2},
    },
    {
        # A Redis lock handed from its holder to a process waiting in
        # mp_lock_acquire (each with its own manager): from just before the
        # release to the waiter's acquire returning, the median. The floor
        # is one raw PING round trip; the target is 2 of them. Beside it,
        # the least a cross-process wake through Redis costs here (raw
        # hiredis: one process LPUSHes, the other's BLPOP returns, timed
        # the same way), the same wake pushed by the least Lua script (a
        # release must check its holder on the server, and Redis 7.0 has
        # no command that compares and sets: the floor of any release),
        # the wake pushed by the least script that does what a fenced
        # release must do on the grant's path (check the holder, see a
        # waiter, count the fence, push the grant and make it the lock's
        # value with its lease), the whole round with the least complete
        # lock of this row's semantics in raw hiredis (the holder's acquire,
        # the waiter's try that enlists it, that release, the grantee's
        # release: the floor of the operation itself, since the work
        # around the path changes what the path costs on this host), and
        # the wake plus the one round trip a woken waiter would need to
        # confirm its turn (what a release that only wakes costs).
        "id": "redis_lock_handoff_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_redis", "lock"],
        "cpython": None,
        "floor": ["bench_rpool_net", "ping"],
        "beside": [{"label": "raw LPUSH -> BLPOP wake", "cmd": ["floor_redis", "wake"],
                    "pilot": 300},
                   {"label": "raw wake by the least script (EVALSHA of one RPUSH)",
                    "cmd": ["floor_redis", "wake_script"], "pilot": 300},
                   {"label": "raw wake by the least fenced grant (GET, ZCARD, INCR, RPUSH, SET PX)",
                    "cmd": ["floor_redis", "wake_grant"], "pilot": 300},
                   {"label": "the least complete fenced lock in raw hiredis, the same round",
                    "cmd": ["floor_redis", "lock_handoff"], "pilot": 300},
                   {"label": "raw wake + 1 round trip", "cmd": ["floor_redis", "wake_rt"],
                    "pilot": 300}],
        "pilot": {"multiproc": 40, "cpython": 0, "floor": 2000},
        "targets": {"cost_vs_floor": 2.0},
    },
    {
        # A unit of a Redis semaphore (value 0) handed from a release in
        # one process to a process waiting in mp_sem_acquire (each with its
        # own manager): from just before the release to the waiter's
        # acquire returning, the median. The floor is one raw PING; beside
        # it, the least wake through Redis, pushed by the least script (as
        # redis_lock_handoff_us).
        "id": "redis_sem_handoff_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_redis", "sem"],
        "cpython": None,
        "floor": ["bench_rpool_net", "ping"],
        "beside": [{"label": "raw wake by the least script (EVALSHA of one RPUSH)",
                    "cmd": ["floor_redis", "wake_script"], "pilot": 300}],
        "pilot": {"multiproc": 40, "cpython": 0, "floor": 2000},
        "targets": {},
    },
    {
        # An uncontended Redis lock in one process: acquire + release, per
        # pair. The floor is the classic single-server Redis lock in raw
        # hiredis (SET NX PX, then the script that deletes the key if it
        # still holds the token), which has none of the fencing token,
        # dead-holder record, server-woken waiters or foreign-data checks.
        "id": "redis_lock_pair_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_redis", "pair"],
        "cpython": None,
        "floor": ["floor_redis", "lock_pair"],
        "pilot": {"multiproc": 2000, "cpython": 0, "floor": 2000},
        "targets": {},
    },
    {
        # A Redis condition between two processes: the child waits in
        # mp_cond_wait, the parent takes the lock, then notify(1) and
        # release; from just before the notify to the child's wait
        # returning with the lock, the median. The floor is one raw PING.
        "id": "redis_cond_notify_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_redis", "cond"],
        "cpython": None,
        "floor": ["bench_rpool_net", "ping"],
        "pilot": {"multiproc": 40, "cpython": 0, "floor": 2000},
        "targets": {},
    },
    {
        # A 4-party Redis barrier (the parent and 3 children, each with
        # its own manager): the parent's time per round. Floor: one PING.
        "id": "redis_barrier_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_redis", "barrier"],
        "cpython": None,
        "floor": ["bench_rpool_net", "ping"],
        "pilot": {"multiproc": 200, "cpython": 0, "floor": 2000},
        "targets": {},
    },
    {
        # The distributed pool: imap_unordered of tiny tasks, chunksize 1,
        # one local worker with 2 executors over a local Redis (compare
        # pool_tiny_tasks_per_s). CPython has no distributed pool: its peer
        # is the seeds' pattern, a BaseManager serving a task and a result
        # queue to 2 workers.
        "id": "redis_pool_tiny_tasks_per_s", "unit": "tasks/s", "higher_is_better": True,
        "multiproc": ["bench_rpool", "tiny"],
        "cpython": ["dist_pool.py", "tiny"],
        # The floor is raw hiredis with the same commands and batching
        # (packed entries, XREADGROUP COUNT 16, one RPUSH, XACK and XDEL
        # per batch, LTRIM + LRANGE 256 and BLMOVE), without leases, claims
        # or checks, and its 2 workers run the tasks themselves.
        "floor": ["floor_rpool", "tiny"],
        "pilot": {"multiproc": 5000, "cpython": 500, "floor": 5000},
        "targets": {"value": 250000.0, "cost_vs_floor": 1.5},
    },
    {
        # The same with workers that take 16 tasks per round trip
        # (mp_worker_opts.prefetch = 16).
        "id": "redis_pool_tiny_prefetch16_tasks_per_s", "unit": "tasks/s",
        "higher_is_better": True,
        "multiproc": ["bench_rpool", "tiny_prefetch16"],
        "cpython": ["dist_pool.py", "tiny"],
        "floor": ["floor_rpool", "tiny"],
        "pilot": {"multiproc": 5000, "cpython": 500, "floor": 5000},
    },
    {
        # One apply + get on an idle distributed pool (1 local worker, local
        # Redis): the latency of a task. The floor is one raw PING round
        # trip with hiredis on the same kind of server; the target is at
        # most 3 of them. CPython's peer: one put on the BaseManager's task
        # queue and one get from its result queue, 1 worker.
        "id": "redis_pool_roundtrip_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_rpool_net", "roundtrip"],
        "cpython": ["dist_pool.py", "roundtrip"],
        "floor": ["bench_rpool_net", "ping"],
        # Beside it, the same commands in raw hiredis (floor_rpool
        # roundtrip): XADD, then LTRIM + BLMOVE + LRANGE in one round trip
        # against a worker doing XREADGROUP BLOCK and RPUSH + XACK + XDEL.
        "beside": [{"label": "raw hiredis apply+get", "cmd": ["floor_rpool", "roundtrip"],
                    "pilot": 1000}],
        "pilot": {"multiproc": 1000, "cpython": 300, "floor": 2000},
        "targets": {"cost_vs_floor": 3.0},
    },
    {
        # A worker lost: one of 3 local workers SIGKILLed once half of a
        # map of 10,000 tasks of 1 ms (chunksize 1) is done; the seconds
        # the kill adds to the map (the same map without it measured just
        # before). This includes running the second half on 2 workers
        # instead of 3 (about 0.8 s here), besides taking over the dead
        # worker's tasks (its heartbeat key expires within 2 s). No peer:
        # the seeds' queues lose a dead worker's task.
        "id": "redis_pool_recovery_s", "unit": "s", "higher_is_better": False,
        "multiproc": ["bench_rpool_net", "recovery"],
        "cpython": None,
        "floor": None,
        "pilot": {"multiproc": 1, "cpython": 0, "floor": 0},
        "max_runs": {"multiproc": 3},
        "targets": {"value": 2.0},
    },
    {
        # The distributed pool across hosts: Redis, the client and 3
        # workers each on its own simulated host (network namespaces,
        # bench/net_bench.sh), 1 ms round trip between hosts (netem 0.5 ms
        # each way; on kernels without netem, a relay in front of Redis
        # adds it). Tiny tasks, imap_unordered, chunksize 1. Sidekiq
        # publishes 23.5 k jobs/s under the same latency; the target is
        # 50 k/s. Needs root (skipped otherwise). No peer.
        "id": "redis_pool_rtt1ms_tasks_per_s", "unit": "tasks/s", "higher_is_better": True,
        "multiproc": ["net_bench.sh", "@bench_rpool_net", "@delay_relay"],
        "cpython": None,
        "floor": None,
        "needs_root": True,
        "pilot": {"multiproc": 5000, "cpython": 0, "floor": 0},
        "max_runs": {"multiproc": 3},
        "targets": {"value": 50000.0},
    },
    {
        "id": "dict_4proc_op_us", "unit": "us", "higher_is_better": False,
        "multiproc": ["bench_dict", "4proc"],
        "cpython": ["dict.py", "4proc"],
        "floor": ["floor_dict", "4proc"],
        "pilot": {"multiproc": 20000, "cpython": 200, "floor": 40000},
        "targets": {"speedup_vs_cpython": 60.0},
    },
    {
        "id": "subprocess_run_true_ms", "unit": "ms", "higher_is_better": False,
        "multiproc": ["bench_subprocess", "run_true"],
        "cpython": ["popen_run.py", "run_true"],
        "floor": ["floor_subprocess", "run_true"],
        "pilot": {"multiproc": 100, "cpython": 50, "floor": 100},
        "targets": {"speedup_vs_cpython": 1.0, "cost_vs_floor": 1.1},
    },
    # The same with 1 GiB of touched memory in the parent (touched before
    # the timing starts): fork-based spawners copy its page tables (2 MiB of
    # them) on every spawn. 4 GiB would take ~3 s to touch per run on the
    # 2-core VMs, ~2.5 minutes for the row: too long for the bench budget.
    {
        "id": "subprocess_run_true_1GiB_ms", "unit": "ms", "higher_is_better": False,
        "multiproc": ["bench_subprocess", "run_true_1g"],
        "cpython": ["popen_run.py", "run_true_1g"],
        "floor": ["floor_subprocess", "run_true_1g"],
        "pilot": {"multiproc": 100, "cpython": 50, "floor": 100},
        "targets": {"speedup_vs_cpython": 1.0, "cost_vs_floor": 1.1},
    },
    {
        "id": "subprocess_communicate_GiB_per_s", "unit": "GiB/s", "higher_is_better": True,
        "multiproc": ["bench_subprocess", "communicate"],
        "cpython": ["popen_run.py", "communicate"],
        "floor": ["floor_subprocess", "communicate"],
        "pilot": {"multiproc": 1, "cpython": 1, "floor": 1},
        "targets": {"cost_vs_floor": 1 / 0.8},
    },
]

# Targets: speedup_vs_cpython must be at least, and cost_vs_floor at most,
# the value given; "value" is an absolute target in the row's unit and
# direction. A row may name any of them.
ROW_TARGETS = {r["id"]: r.get("targets", {}) for r in ROWS}

RUN_TIMEOUT = 120.0  # seconds for one run of one program


class RunError(Exception):
    """A program could not be measured; the message says why."""


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"),
                    help="CMake build directory holding bench/<program> (default build-bench)")
    ap.add_argument("--only", action="append", default=[],
                    help="run only this row id (repeat or comma-separate for several)")
    ap.add_argument("--reps", type=int, default=5, help="measured runs per program (default 5)")
    ap.add_argument("--seconds", type=float, default=0.4,
                    help="aimed duration of one measured run (default 0.4)")
    ap.add_argument("--pin", default="auto",
                    help="CPUs 'P,C' for the producer and consumer of rows that pin; "
                         "'auto' (default): the first two CPUs this process may use; 'none'")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the CPython peers")
    ap.add_argument("--csv", default=os.path.join(HERE, "results.csv"))
    ap.add_argument("--png", default=os.path.join(HERE, "results.png"))
    ap.add_argument("--no-chart", action="store_true", help="do not draw the PNG")
    ap.add_argument("--list", action="store_true", help="list the row ids and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    args.build = os.path.abspath(args.build)
    args.pin = resolve_pin(ap, args.pin)
    return args


def resolve_pin(ap, spec):
    """'P,C' for BENCH_PIN, or None for no pinning."""
    if spec == "none":
        return None
    if spec == "auto":
        cpus = sorted(os.sched_getaffinity(0))
        return f"{cpus[0]},{cpus[1]}" if len(cpus) >= 2 else None
    parts = spec.split(",")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        ap.error("--pin wants 'P,C' (two CPU numbers), 'auto' or 'none'")
    return spec


def rel(path):
    """A path for messages: relative to the current directory when inside it."""
    r = os.path.relpath(path, os.getcwd())
    return path if r.startswith("..") else r


def command(row, impl, args):
    """The command line (without the iteration count) for one implementation."""
    if not row.get(impl):
        raise RunError(f"no {impl} for this row")
    prog, *rest = row[impl]
    if prog.endswith(".sh"):
        # A script of bench/ that runs a program of the build: its
        # arguments "@name" are programs of <build>/bench/.
        args_ = []
        for a in rest:
            if a.startswith("@"):
                a = os.path.join(args.build, "bench", a[1:])
                if not os.access(a, os.X_OK):
                    raise RunError(f"not built ({rel(a)} missing)")
            args_.append(a)
        return ["bash", os.path.join(HERE, prog), *args_]
    if impl == "cpython":
        path = os.path.join(HERE, "peers", prog)
        if not os.path.isfile(path):
            raise RunError(f"peer {rel(path)} missing")
        return [args.python, path, *rest]
    path = os.path.join(args.build, "bench", prog)
    if not os.access(path, os.X_OK):
        raise RunError(f"not built ({rel(path)} missing)")
    return [path, *rest]


def run_once(cmd, n, extra, env, verbose):
    """Run one program; returns the dict of its RESULT line (floats where possible)."""
    argv = [*cmd, str(n), *extra]
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise RunError(f"timed out after {RUN_TIMEOUT:.0f} s") from None
    except OSError as e:
        raise RunError(f"cannot run: {e.strerror}") from None
    if cp.returncode != 0:
        why = (cp.stderr.strip().splitlines() or ["no message"])[-1]
        status = (f"killed by signal {-cp.returncode}" if cp.returncode < 0
                  else f"exit {cp.returncode}")
        raise RunError(f"{status}: {why[:120]}")
    for line in cp.stdout.splitlines():
        if line.startswith("RESULT "):
            res = {}
            for item in line.split()[1:]:
                key, _, val = item.partition("=")
                try:
                    res[key] = float(val)
                except ValueError:
                    res[key] = val
            if not isinstance(res.get("value"), float) or not res["value"] > 0:
                raise RunError(f"bad RESULT line: {line[:120]}")
            if verbose:
                print(f"    {' '.join(os.path.basename(a) for a in argv)}: {line}", flush=True)
            return res
    raise RunError("no RESULT line in the output")


def scaled_count(pilot_n, res, seconds):
    """Iteration count for a run of about `seconds`, from the pilot run."""
    elapsed = res.get("elapsed")
    if not isinstance(elapsed, float) or elapsed <= 0:
        return pilot_n
    n = int(pilot_n * seconds / elapsed)
    return max(1, min(n, pilot_n * 1000))


def measure_row(row, args):
    """Measure one row. Returns {impl: (median or None, reason, values)}."""
    out = {impl: {"values": [], "why": "", "cmd": None, "n": 0} for impl in IMPLS}
    info = {}  # RESULT keys of the multiproc program, for floor_follows
    if row.get("needs_root") and os.geteuid() != 0:
        for impl in IMPLS:
            out[impl]["why"] = "needs root (network namespaces): skipped"
    env = dict(os.environ)
    env.pop("BENCH_PIN", None)
    if row.get("pin") and args.pin:
        env["BENCH_PIN"] = args.pin

    def extra_args(impl):
        if impl != "floor":
            return []
        return [str(int(info[k])) for k in row.get("floor_follows", []) if k in info]

    # Calibration (and warm-up) runs, in a fixed order: the floor may need
    # what the multiproc program reports.
    for impl in IMPLS:
        st = out[impl]
        if st["why"]:
            continue
        try:
            st["cmd"] = command(row, impl, args)
            pilot_n = row["pilot"][impl]
            res = run_once(st["cmd"], pilot_n, extra_args(impl), env, args.verbose)
            st["n"] = scaled_count(pilot_n, res, args.seconds)
            if impl in row.get("max_runs", {}) and st["n"] == pilot_n:
                st["values"].append(res["value"])
            if impl == "multiproc":
                info.update({k: v for k, v in res.items() if k not in ("value", "elapsed", "n")})
        except RunError as e:
            st["why"] = str(e)

    besides = [calibrate_beside(b, args, env) for b in row.get("beside", [])]

    # Measured runs, alternating the programs and rotating their order so
    # that no implementation always runs right after another; the programs
    # measured beside the row take their turns in the same rounds, so that
    # a noisy spell of the host falls on all of them alike.
    for rep in range(args.reps):
        order = IMPLS[rep % 3:] + IMPLS[:rep % 3]
        for b in besides:
            run_beside(b, args, env)
        for impl in order:
            st = out[impl]
            if st["why"]:
                continue
            if len(st["values"]) >= row.get("max_runs", {}).get(impl, args.reps):
                continue
            try:
                res = run_once(st["cmd"], st["n"], extra_args(impl), env, args.verbose)
                st["values"].append(res["value"])
            except RunError as e:
                st["why"] = str(e)
                st["values"] = []
    result = {}
    for impl in IMPLS:
        st = out[impl]
        med = statistics.median(st["values"]) if st["values"] and not st["why"] else None
        result[impl] = (med, st["why"], st["values"])
    result["info"] = info
    result["pinned"] = env.get("BENCH_PIN")
    result["beside"] = [(b["label"], statistics.median(b["values"]) if b["values"] else None,
                         b["why"]) for b in besides]
    return result


def calibrate_beside(beside, args, env):
    """The state of a program measured beside a row's three (another floor
    worth knowing), after its calibration run: its label, command, count,
    values so far and why it failed."""
    st = {"label": beside["label"], "cmd": None, "n": 0, "values": [], "why": ""}
    prog, *rest = beside["cmd"]
    path = os.path.join(args.build, "bench", prog)
    if not os.access(path, os.X_OK):
        st["why"] = f"not built ({rel(path)} missing)"
        return st
    st["cmd"] = [path, *rest]
    try:
        res = run_once(st["cmd"], beside["pilot"], [], env, args.verbose)
        st["n"] = scaled_count(beside["pilot"], res, args.seconds)
    except RunError as e:
        st["why"] = str(e)
    return st


def run_beside(st, args, env):
    """One measured run of a program beside the row (calibrate_beside)."""
    if st["why"]:
        return
    try:
        st["values"].append(run_once(st["cmd"], st["n"], [], env, args.verbose)["value"])
    except RunError as e:
        st["why"] = str(e)
        st["values"] = []


def ratios(row, mp, py, fl):
    """(speedup_vs_cpython, cost_vs_floor), None where a side is missing."""
    hib = row["higher_is_better"]
    speedup = cost = None
    if mp and py:
        speedup = mp / py if hib else py / mp
    if mp and fl:
        cost = fl / mp if hib else mp / fl
    return speedup, cost


def fmt_value(v):
    """Four significant digits, never an exponent; '' for None."""
    if v is None:
        return ""
    if v == 0 or not math.isfinite(v):
        return repr(v)
    digits = max(0, 3 - math.floor(math.log10(abs(v))))
    return f"{v:.{digits}f}"


def fmt_ratio(v):
    return "" if v is None else f"{v:.3f}"


def judge(row_id, metric, value):
    """('>=15', 'PASS'|'MISS'|'n/a') or ('', '') when the row has no such target."""
    target = ROW_TARGETS.get(row_id, {}).get(metric)
    if target is None:
        return "", ""
    if metric == "value":
        # An absolute target, in the row's unit and direction.
        row = next((r for r in ROWS if r["id"] == row_id), {})
        op = ">=" if row.get("higher_is_better", False) else "<="
    else:
        op = ">=" if metric == "speedup_vs_cpython" else "<="
    label = f"{op}{target:.3g}"
    if value is None:
        return label, "n/a"
    ok = value >= target if op == ">=" else value <= target
    return label, "PASS" if ok else "MISS"


def spread(values):
    """Relative spread (max-min)/median of a list of runs, as a percentage."""
    if len(values) < 2:
        return ""
    med = statistics.median(values)
    return f"{100 * (max(values) - min(values)) / med:.0f}%"


def print_table(measured, rows_by_id):
    head = ["id", "unit", "multiproc", "cpython", "floor",
            "speedup_vs_cpython", "target", "", "cost_vs_floor", "target", ""]
    lines = []
    notes = []
    for row_id, res in measured.items():
        row = rows_by_id[row_id]
        mp, py, fl = (res[i][0] for i in IMPLS)
        speedup, cost = ratios(row, mp, py, fl)
        st, sm = judge(row_id, "speedup_vs_cpython", speedup)
        ct, cm = judge(row_id, "cost_vs_floor", cost)
        cells = [fmt_value(x) if x is not None else "-" for x in (mp, py, fl)]
        vt, vm = judge(row_id, "value", mp)
        if vt:
            cells[0] += f" ({vt} {vm})"
        lines.append([row_id, row["unit"], *cells,
                      fmt_ratio(speedup) or "-", st, sm, fmt_ratio(cost) or "-", ct, cm])
        for impl in IMPLS:
            if res[impl][0] is None:
                notes.append(f"{row_id}: {impl} not measured: {res[impl][1] or 'no runs'}")
        spreads = ", ".join(f"{impl} {spread(res[impl][2])}" for impl in IMPLS if spread(res[impl][2]))
        extra = " ".join(f"{k}={int(v) if isinstance(v, float) and v.is_integer() else v}"
                         for k, v in res["info"].items())
        for label, med, why in res["beside"]:
            if med is None:
                notes.append(f"{row_id}: {label} not measured: {why}")
            else:
                cost_b = ratios(row, mp, None, med)[1]
                notes.append(f"{row_id}: beside it, {label}: {fmt_value(med)} {row['unit']}"
                             + (f" (multiproc pays {cost_b:.3g}x its cost)" if cost_b else ""))
        pinned = f"; producer,consumer on CPUs {res['pinned']}" if res["pinned"] else ""
        if spreads or extra or pinned:
            notes.append(f"{row_id}: spread of runs (max-min)/median: {spreads or '-'}"
                         + (f"; multiproc reports {extra}" if extra else "") + pinned)
    widths = [max(len(str(r[i])) for r in [head, *lines]) for i in range(len(head))]
    numeric = {2, 3, 4, 5, 8}

    def render(r):
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    print()
    print(render(head))
    print(render(["-" * w for w in widths]))
    for r in lines:
        print(render(r))
    if notes:
        print()
        for n in notes:
            print("  " + n)
    print()


def machine_name():
    """CPU model and CPU count, e.g. 'AMD EPYC 7B13 x2'."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{' '.join(model.split())} x{os.cpu_count()}"


MACHINE = machine_name()
TODAY = time.strftime("%Y-%m-%d")


def read_csv(path):
    rows = {}
    if not os.path.isfile(path):
        return rows
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        # Rows written before the machine and date columns existed keep
        # those cells empty.
        if header is None or header != CSV_HEADER[:len(header)]:
            print(f"note: {rel(path)} has another header; rewriting it",
                  file=sys.stderr)
            return rows
        for rec in reader:
            if len(rec) == len(header) and rec[0]:
                rows[rec[0]] = rec + [""] * (len(CSV_HEADER) - len(rec))
    return rows


def write_csv(path, measured, rows_by_id):
    existing = read_csv(path)
    for row_id, res in measured.items():
        row = rows_by_id[row_id]
        mp, py, fl = (res[i][0] for i in IMPLS)
        if mp is None and py is None and fl is None and row_id in existing:
            continue  # not measured this time (e.g. needs root): keep the last figures
        speedup, cost = ratios(row, mp, py, fl)
        existing[row_id] = [row_id, row["unit"], fmt_value(mp), fmt_value(py), fmt_value(fl),
                            fmt_ratio(speedup), fmt_ratio(cost), MACHINE, TODAY]
    order = [r["id"] for r in ROWS if r["id"] in existing]
    order += sorted(k for k in existing if k not in order)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_HEADER)
        for k in order:
            w.writerow(existing[k])
    os.replace(tmp, path)
    return [existing[k] for k in order]


README_BEGIN = "<!-- bench table: written by bench/run.py -->"
README_END = "<!-- end of bench table -->"


def readme_table(csv_rows):
    """The README's benchmark table (markdown) from the CSV rows."""
    lines = ["| figure | unit | multiproc (target) | CPython | floor | speedup vs CPython (target) "
             "| cost vs floor (target) |",
             "|---|---|---:|---:|---:|---|---|"]
    for rec in csv_rows:
        row_id, unit, mp, py, fl, speedup, cost = rec[:7]
        cells = []
        for metric, val in (("speedup_vs_cpython", speedup), ("cost_vs_floor", cost)):
            v = float(val) if val else None
            label, verdict = judge(row_id, metric, v)
            text = f"{v:.3g}x" if v is not None else "not measured"
            if label:
                text += f" ({label.replace('>=', '≥ ').replace('<=', '≤ ')}: "
                text += "met)" if verdict == "PASS" else "**miss**)" if verdict == "MISS" else "n/a)"
            cells.append(text)
        label, verdict = judge(row_id, "value", float(mp) if mp else None)
        if label:
            mp += f" ({label.replace('>=', '≥ ').replace('<=', '≤ ')}: "
            mp += "met)" if verdict == "PASS" else "**miss**)" if verdict == "MISS" else "n/a)"
        lines.append(f"| `{row_id}` | {unit} | {mp} | {py} | {fl} | {cells[0]} | {cells[1]} |")
    where = sorted({f"{rec[7]} on {rec[8]}" for rec in csv_rows if rec[7] and rec[8]})
    if where:
        lines += ["", "Measured on " + "; ".join(where) + "."]
    return "\n".join(lines) + "\n"


def write_readme(path, csv_rows):
    """Replaces the table between the README's markers, if it has them."""
    if not os.path.isfile(path):
        return
    text = open(path, encoding="utf-8").read()
    a, b = text.find(README_BEGIN), text.find(README_END)
    if a < 0 or b < a:
        return
    text = text[:a + len(README_BEGIN)] + "\n" + readme_table(csv_rows) + text[b:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"readme: {rel(path)} table updated")


def draw_chart(path, csv_rows):
    """Log-scale bars of speedup_vs_cpython and cost_vs_floor per row, each
    growing from 1 (parity), green when the row meets its target, red when it
    misses, grey without a target; the target is a dashed line on the bar."""
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        print("gnuplot not found: chart skipped (apt-get install gnuplot-nox)")
        return
    if not csv_rows:
        return

    def num(s):
        try:
            return float(s)
        except ValueError:
            return None

    color = {"PASS": "0x2ca02c", "MISS": "0xd62728", "": "0x7f7f7f", "n/a": "0x7f7f7f"}
    data = []
    allv = [1.0]
    for i, rec in enumerate(csv_rows):
        row_id = rec[0]
        s, c = num(rec[5]), num(rec[6])
        st = ROW_TARGETS.get(row_id, {}).get("speedup_vs_cpython")
        ct = ROW_TARGETS.get(row_id, {}).get("cost_vs_floor")
        sm = judge(row_id, "speedup_vs_cpython", s)[1]
        cm = judge(row_id, "cost_vs_floor", c)[1]
        allv += [v for v in (s, c, st, ct) if v]
        q = lambda v: "?" if v is None else f"{v:.6g}"
        lab = lambda v: '""' if v is None else f'"{v:.3g}x"'
        data.append(f'{i} "{row_id}" {q(s)} {q(st)} {color[sm]} {lab(s)} '
                    f'{q(c)} {q(ct)} {color[cm]} {lab(c)}')
    ymin = min(0.5, min(allv) / 2)
    ymax = max(allv) * 3
    n = len(csv_rows)
    width = max(900, 110 * n + 200)
    machine = f"{MACHINE}, Linux {platform.release()}, {TODAY}"
    with tempfile.TemporaryDirectory() as tmp:
        dat = os.path.join(tmp, "chart.dat")
        with open(dat, "w") as f:
            f.write("\n".join(data) + "\n")
        panel = """
set title "{title}"
set ylabel "{ylabel}"
plot '{dat}' using 1:{v}:($1-0.35):($1+0.35):(1):{v}:{col} with boxxyerror fs solid 0.8 fc rgb variable notitle, \\
     '' using ($1-0.42):{t}:(0.84):(0) with vectors nohead dt 2 lw 2.5 lc rgb "black" title "target", \\
     '' using 1:(${v} >= 1 ? ${v} * 1.25 : ${v} / 1.25):{lab} with labels font ",9" notitle, \\
     1 with lines lc rgb "gray40" dt 3 notitle, \\
     NaN with boxes fs solid 0.8 fc rgb "#2ca02c" title "meets target", \\
     NaN with boxes fs solid 0.8 fc rgb "#d62728" title "misses target", \\
     NaN with boxes fs solid 0.8 fc rgb "#7f7f7f" title "no target"
"""
        script = f"""
set terminal pngcairo size {width},900 font ",10" noenhanced
set output '{path}'
set datafile missing "?"
set multiplot layout 2,1 title "multiproc benchmarks ({machine})" font ",12"
set logscale y
set yrange [{ymin:.3g}:{ymax:.3g}]
set xrange [-0.6:{n - 0.4}]
set grid ytics
set key top right font ",9"
set boxwidth 0.7
set style fill solid 0.8
set xtics rotate by 20 right font ",9"
set xtics ({", ".join(f'"{r[0]}" {i}' for i, r in enumerate(csv_rows))})
set bmargin 6
""" + panel.format(title="speedup vs CPython multiprocessing (higher is better; 1 = same as CPython)",
                   ylabel="times faster than CPython", dat=dat, v=3, t=4, col=5, lab=6) \
    + panel.format(title="cost vs raw-syscall floor (lower is better; 1 = at the floor)",
                   ylabel="times the floor's cost", dat=dat, v=7, t=8, col=9, lab=10) \
    + "unset multiplot\n"
        cp = subprocess.run([gnuplot], input=script, capture_output=True, text=True)
        if cp.returncode != 0:
            print(f"gnuplot failed: chart skipped\n{cp.stderr.strip()}")
            return
    print(f"chart: {rel(path)}")


def main():
    args = parse_args()
    rows_by_id = {r["id"]: r for r in ROWS}
    if args.list:
        for r in ROWS:
            print(r["id"])
        return 0
    only = [x for o in args.only for x in o.split(",") if x]
    unknown = [x for x in only if x not in rows_by_id]
    if unknown:
        print(f"unknown row id(s): {', '.join(unknown)}; known: {', '.join(rows_by_id)}",
              file=sys.stderr)
        return 2
    selected = [r for r in ROWS if not only or r["id"] in only]

    start = time.monotonic()
    measured = {}
    for row in selected:
        t = time.monotonic()
        print(f"{row['id']} ...", end="" if not args.verbose else "\n", flush=True)
        measured[row["id"]] = measure_row(row, args)
        print(f" {time.monotonic() - t:.1f} s", flush=True)
    print_table(measured, rows_by_id)
    csv_rows = write_csv(args.csv, measured, rows_by_id)
    print(f"results: {rel(args.csv)} "
          f"({len(measured)} row(s) measured in {time.monotonic() - start:.0f} s)")
    if not args.no_chart:
        draw_chart(args.png, csv_rows)
    write_readme(os.path.join(ROOT, "README.md"), csv_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
