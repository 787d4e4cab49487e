"""CPython peer of the queue rows (not named queue.py: that would hide the
standard library module of the same name).

    python3 mpqueue.py msg64   <messages>   one producer, one consumer, 64 B
    python3 mpqueue.py msg64x2 <messages>   two producers, two consumers
    python3 mpqueue.py mib     <messages>   1 MiB messages
    python3 mpqueue.py mibzc   <messages>   the same as mib: CPython has no
                                          zero-copy queue

multiprocessing.Queue from the fork context (unbounded, as Python's
default: a feeder thread in each producer writes to a pipe), producer and
consumer Processes. Timing starts once every consumer is running and
stops when the last has its last message. BENCH_PIN pins producers and
consumers as in the C programs.
Prints RESULT value=<msgs/s or GiB/s> elapsed=<s> n=<messages>.
"""
import multiprocessing
import os
import sys
import time

MODES = {"msg64": (64, 1), "msg64x2": (64, 2), "mib": (1 << 20, 1), "mibzc": (1 << 20, 1)}


def pin(role):
    spec = os.environ.get("BENCH_PIN")
    if spec:
        os.sched_setaffinity(0, {int(spec.split(",")[role])})


def consumer(q, ctl, n, size):
    pin(1)
    ctl.put(b"r")
    get = q.get
    for _ in range(n):
        if len(get()) != size:
            sys.exit("short message")
    ctl.put(b"k")


def producer(q, go, n, size):
    pin(0)
    msg = b"x" * size
    go.get()
    put = q.put
    for _ in range(n):
        put(msg)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in MODES:
        sys.exit("usage: mpqueue.py msg64|msg64x2|mib|mibzc <messages>")
    size, pairs = MODES[sys.argv[1]]
    n = int(sys.argv[2])
    n -= n % pairs
    ctx = multiprocessing.get_context("fork")
    q, ctl, go = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=consumer, args=(q, ctl, n // pairs, size)) for _ in range(pairs)]
    procs += [ctx.Process(target=producer, args=(q, go, n // pairs, size)) for _ in range(pairs)]
    for p in procs:
        p.start()
    for _ in range(pairs):
        ctl.get()
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    for _ in range(pairs):
        go.put(b"g")
    for _ in range(pairs):
        ctl.get()
    dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0
    for p in procs:
        p.join()
        if p.exitcode != 0:
            sys.exit(f"child exit code {p.exitcode}")
    value = n / dt if size == 64 else n * size / (1 << 30) / dt
    print(f"RESULT value={value:.6g} elapsed={dt:.6f} n={n}", flush=True)


if __name__ == "__main__":
    main()
