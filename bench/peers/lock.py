"""CPython peer of lock_ns, lock_handoff_us and value_incr_2proc_s.

    python3 lock.py lock <iterations>
    python3 lock.py handoff <cycles>
    python3 lock.py value_incr <increments per process>

lock:       multiprocessing.Lock acquire() + release(), uncontended
            (RESULT value = ns per pair).
handoff:    two processes pass three Locks round exactly as bench_lock does:
            six contended hand-offs per cycle (value = microseconds each).
value_incr: two processes each do `with v.get_lock(): v.value += 1` on a
            Value('i') (value = seconds for 10^6 increments each).
Fork context. BENCH_PIN pins the two processes as in the C programs.
"""
import multiprocessing
import os
import sys
import time


def pin(role):
    spec = os.environ.get("BENCH_PIN")
    if spec:
        os.sched_setaffinity(0, {int(spec.split(",")[role])})


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def bench_lock(ctx, n):
    lock = ctx.Lock()
    acquire, release = lock.acquire, lock.release
    t0 = now()
    for _ in range(n):
        acquire()
        release()
    dt = now() - t0
    print(f"RESULT value={dt * 1e9 / n:.6g} elapsed={dt:.6f} n={n}", flush=True)


def handoff_child(locks, ready, n):
    pin(1)
    l0, l1, l2 = locks
    l2.acquire()
    ready.set()
    for _ in range(n):
        l0.acquire()
        l2.release()
        l1.acquire()
        l0.release()
        l2.acquire()
        l1.release()


def bench_handoff(ctx, n):
    locks = [ctx.Lock() for _ in range(3)]
    ready = ctx.Event()
    l0, l1, l2 = locks
    l0.acquire()
    l1.acquire()
    p = ctx.Process(target=handoff_child, args=(locks, ready, n))
    p.start()
    pin(0)
    ready.wait()
    t0 = now()
    for _ in range(n):
        l0.release()
        l2.acquire()
        l1.release()
        l0.acquire()
        l2.release()
        l1.acquire()
    dt = now() - t0
    p.join()
    if p.exitcode != 0:
        sys.exit(f"child exit code {p.exitcode}")
    print(f"RESULT value={dt * 1e6 / (6 * n):.6g} elapsed={dt:.6f} n={n}", flush=True)


def increment(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def incr_child(v, barrier, n):
    pin(1)
    barrier.wait()
    increment(v, n)


def bench_value_incr(ctx, n):
    v = ctx.Value("i", 0)
    barrier = ctx.Barrier(2)
    p = ctx.Process(target=incr_child, args=(v, barrier, n))
    p.start()
    pin(0)
    barrier.wait()
    t0 = now()
    increment(v, n)
    p.join()
    dt = now() - t0
    if p.exitcode != 0 or v.value != 2 * n:
        sys.exit(f"child exit code {p.exitcode}, value {v.value}")
    print(f"RESULT value={dt * 1e6 / n:.6g} elapsed={dt:.6f} n={n}", flush=True)


MODES = {"lock": bench_lock, "handoff": bench_handoff, "value_incr": bench_value_incr}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in MODES:
        sys.exit("usage: lock.py lock|handoff|value_incr <iterations>")
    MODES[sys.argv[1]](multiprocessing.get_context("fork"), int(sys.argv[2]))


if __name__ == "__main__":
    main()
