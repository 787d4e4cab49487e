"""CPython peers of the pool rows.

    python3 pool.py sumsq <iterations>      sum(Pool().map_async(f, range(1, 10**7+1)).get());
                                            value = seconds per sum
    python3 pool.py roundtrip <iterations>  apply_async(identity).get(); value = microseconds
    python3 pool.py tiny <iterations>       imap_unordered(f, range(n), chunksize=1);
                                            value = tasks per second
    python3 pool.py stream <iterations>     imap(fnv, lines(n), chunksize=64) over a
                                            generator of lines "line 123 of the
                                            stream", taken in order; value = lines
                                            per second
    python3 pool.py start_fork|start_spawn|start_forkserver <iterations>
                                            get_context(m).Pool(n), a map of one
                                            item per worker that waits at a
                                            Barrier(n) (every worker runs), close,
                                            join; value = milliseconds per pool

The pool has os.cpu_count() workers (the default) and, but for the start
modes, is started before the clock starts. The fork server is started before
the clock. Prints RESULT value=<v> elapsed=<s> n=<iterations>.
"""
import multiprocessing
import os
import sys
import time


def square(x):
    return x * x


def identity(x):
    return x


def fnv(line):
    h = 14695981039346656037
    for b in line:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def lines(n):
    for i in range(n):
        yield b"line %d of the stream" % i


_barrier = None


def set_barrier(b):
    global _barrier
    _barrier = b


def arrive(_):
    _barrier.wait()


def noop():
    pass


def pool_start(method, n):
    ctx = multiprocessing.get_context(method)
    workers = os.cpu_count()
    if method == "forkserver":
        warm = ctx.Process(target=noop)
        warm.start()
        warm.join()
    barriers = [ctx.Barrier(workers) for _ in range(n)]
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    for b in barriers:
        pool = ctx.Pool(workers, initializer=set_barrier, initargs=(b,))
        pool.map(arrive, range(workers), chunksize=1)
        pool.close()
        pool.join()
    dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0
    print(f"RESULT value={dt * 1e3 / n:.6f} elapsed={dt:.6f} n={n}", flush=True)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: pool.py sumsq|roundtrip|tiny|stream|start_<method> <iterations>")
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode.startswith("start_"):
        pool_start(mode[len("start_"):], n)
        return
    with multiprocessing.get_context("fork").Pool() as pool:
        for _ in range(10):
            pool.apply_async(identity, (1,)).get()
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
        if mode == "sumsq":
            for _ in range(n):
                s = sum(pool.map_async(square, range(1, 10**7 + 1)).get())
                if s != 333333383333335000000:
                    sys.exit("wrong sum")
            dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0
            value = dt / n
        elif mode == "roundtrip":
            for _ in range(n):
                if pool.apply_async(identity, (42,)).get() != 42:
                    sys.exit("wrong result")
            dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0
            value = dt * 1e6 / n
        elif mode == "stream":
            got = 0
            for h in pool.imap(fnv, lines(n), chunksize=64):
                got += 1
            if got != n:
                sys.exit("wrong count")
            dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0
            value = n / dt
        elif mode == "tiny":
            total = 0
            for v in pool.imap_unordered(square, range(n), chunksize=1):
                total += v
            dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0
            value = n / dt
        else:
            sys.exit(f"unknown mode {mode}")
    print(f"RESULT value={value:.6f} elapsed={dt:.6f} n={n}", flush=True)


if __name__ == "__main__":
    main()
