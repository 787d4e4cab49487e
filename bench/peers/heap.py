"""CPython peer of alloc_64B_ns: a 64-byte block of multiprocessing's own
shared heap (multiprocessing.heap.BufferWrapper, what RawArray/RawValue
allocate from), allocated and freed (freed by its finalizer when the last
reference goes).

    python3 heap.py alloc64 <iterations>

Prints RESULT value=<ns per allocate+free> elapsed=<s> n=<iterations>.
"""
import sys
import time
from multiprocessing import heap


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "alloc64":
        sys.exit("usage: heap.py alloc64 <iterations>")
    n = int(sys.argv[2])
    wrapper = heap.BufferWrapper
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    for _ in range(n):
        b = wrapper(64)
        del b
    dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0
    print(f"RESULT value={dt * 1e9 / n:.3f} elapsed={dt:.6f} n={n}", flush=True)


if __name__ == "__main__":
    main()
