"""CPython peer of process_start_{fork,spawn,forkserver}_ms: start+join of a
no-op target with that start method.

    python3 process.py fork|spawn|forkserver <iterations>

The fork server is started (one untimed Process) before the timing.

Prints RESULT value=<ms per start+join> elapsed=<s> n=<iterations>.
"""
import multiprocessing
import sys
import time


def noop():
    pass


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: process.py fork|spawn|forkserver <iterations>")
    method, n = sys.argv[1], int(sys.argv[2])
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        warm = ctx.Process(target=noop)
        warm.start()
        warm.join()
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    for _ in range(n):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        if p.exitcode != 0:
            sys.exit(f"child exit code {p.exitcode}")
    dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0
    print(f"RESULT value={dt * 1e3 / n:.6f} elapsed={dt:.6f} n={n}", flush=True)


if __name__ == "__main__":
    main()
