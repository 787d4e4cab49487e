"""CPython peer of the subprocess rows.

    python3 popen_run.py run_true <n>      subprocess.run(["true"]) n times
    python3 popen_run.py run_true_1g <n>   the same holding 1 GiB of touched memory
    python3 popen_run.py communicate <n>   n times: 200 MiB through cat with
                                            subprocess.run(input=..., capture_output=True)

Prints RESULT value=<ms per run | GiB/s> elapsed=<s> n=<n>.
"""
import sys
import time

# This file is named like the module it measures: import the real one.
sys.path = [p for p in sys.path if p not in ("", ".") and not p.endswith("/peers")]
import subprocess  # noqa: E402

COMM_BYTES = 200 << 20
BIG_BYTES = 1 << 30


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def run_true(n):
    t0 = now()
    for _ in range(n):
        r = subprocess.run(["true"])
        if r.returncode != 0:
            sys.exit(f"true returned {r.returncode}")
    return (now() - t0) * 1e3 / n


def communicate(n):
    data = b"x" * COMM_BYTES
    t0 = now()
    for _ in range(n):
        r = subprocess.run(["cat"], input=data, capture_output=True)
        if len(r.stdout) != COMM_BYTES:
            sys.exit(f"cat echoed {len(r.stdout)} bytes")
    return COMM_BYTES * n / (1 << 30) / (now() - t0)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: popen_run.py run_true|run_true_1g|communicate <n>")
    mode, n = sys.argv[1], int(sys.argv[2])
    big = None
    if mode == "run_true_1g":
        big = bytearray(BIG_BYTES)
        big[::4096] = b"\x01" * (BIG_BYTES // 4096)
        mode = "run_true"
    t0 = now()
    if mode == "run_true":
        value = run_true(n)
    elif mode == "communicate":
        value = communicate(n)
    else:
        sys.exit(f"unknown mode {mode}")
    print(f"RESULT value={value:.6f} elapsed={now() - t0:.6f} n={n}", flush=True)
    del big


if __name__ == "__main__":
    main()
