"""CPython peer of dict_op_us and dict_4proc_op_us.

    python3 dict.py op    <iterations>   one child process
    python3 dict.py 4proc <iterations>   four child processes at once

multiprocessing.Manager().dict() (fork context); each child does
<iterations> x (d[key] = i; d[key]) over 100 keys of its own, timed inside
the child after a start event. An op is one set or one get. Prints
RESULT value=<us per op, slowest child> elapsed=<s> n=<iterations>.
"""
import multiprocessing
import sys
import time

NKEYS = 100


def child(d, go, ident, n, results):
    keys = ["%s%02d-key" % (chr(ord("a") + ident), k) for k in range(NKEYS)]
    go.wait()
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    for i in range(n):
        key = keys[i % NKEYS]
        d[key] = i
        if d[key] != i:
            sys.exit(1)
    results[ident] = time.clock_gettime(time.CLOCK_MONOTONIC) - t0


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("op", "4proc"):
        sys.exit("usage: dict.py op|4proc <iterations>")
    procs = 4 if sys.argv[1] == "4proc" else 1
    n = int(sys.argv[2])
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as mgr:
        d = mgr.dict()
        results = mgr.dict()
        go = mgr.Event()
        ps = [ctx.Process(target=child, args=(d, go, i, n, results)) for i in range(procs)]
        for p in ps:
            p.start()
        go.set()
        for p in ps:
            p.join()
            if p.exitcode != 0:
                sys.exit(f"child exit code {p.exitcode}")
        worst = max(results.values())
    print(f"RESULT value={worst / (2 * n) * 1e6:.6g} elapsed={worst:.6f} n={n}", flush=True)


if __name__ == "__main__":
    main()
