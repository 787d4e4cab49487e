"""CPython peers of the pool rows.

    python3 pool.py sumsq <iterations>      sum(Pool().map_async(f, range(1, 10**7+1)).get());
                                            value = seconds per sum
    python3 pool.py roundtrip <iterations>  apply_async(identity).get(); value = microseconds
    python3 pool.py tiny <iterations>       imap_unordered(f, range(n), chunksize=1);
                                            value = tasks per second

The pool has os.cpu_count() workers (the default) and is started before the
clock starts. Prints RESULT value=<v> elapsed=<s> n=<iterations>.
"""
import multiprocessing
import sys
import time


def square(x):
    return x * x


def identity(x):
    return x


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: pool.py sumsq|roundtrip|tiny <iterations>")
    mode, n = sys.argv[1], int(sys.argv[2])
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
