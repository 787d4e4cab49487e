"""CPython peer of pipe_64B_msgs_per_s and pipe_1MiB_GiB_per_s.

    python3 pipe.py msg64 <messages>
    python3 pipe.py mib   <messages>

Pipe(duplex=False) from the fork context; the parent sends with send_bytes,
a consumer Process receives with recv_bytes (for 1 MiB, recv_bytes is
CPython's faster path: recv_bytes_into copies once more). Timing starts once
the consumer is running and stops when it has acknowledged the last message.
BENCH_PIN pins the producer and the consumer as in the C programs.
Prints RESULT value=<msgs/s or GiB/s> elapsed=<s> n=<messages>.
"""
import multiprocessing
import os
import sys
import time

SIZES = {"msg64": 64, "mib": 1 << 20}


def pin(role):
    """Pin to a CPU as BENCH_PIN="<producer>,<consumer>" asks (see bench_common.h)."""
    spec = os.environ.get("BENCH_PIN")
    if spec:
        os.sched_setaffinity(0, {int(spec.split(",")[role])})


def consumer(r, w, ack_r, ack_w, n, size):
    pin(1)
    w.close()
    ack_r.close()
    ack_w.send_bytes(b"r")
    recv = r.recv_bytes
    for _ in range(n):
        if len(recv()) != size:
            sys.exit("short message")
    ack_w.send_bytes(b"k")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in SIZES:
        sys.exit("usage: pipe.py msg64|mib <messages>")
    mode, n = sys.argv[1], int(sys.argv[2])
    size = SIZES[mode]
    ctx = multiprocessing.get_context("fork")
    r, w = ctx.Pipe(duplex=False)
    ack_r, ack_w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=consumer, args=(r, w, ack_r, ack_w, n, size))
    p.start()
    pin(0)
    r.close()
    ack_w.close()
    msg = b"x" * size
    ack_r.recv_bytes()

    send = w.send_bytes
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    for _ in range(n):
        send(msg)
    ack_r.recv_bytes()
    dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0

    p.join()
    if p.exitcode != 0:
        sys.exit(f"consumer exit code {p.exitcode}")
    value = n / dt if mode == "msg64" else n * size / (1 << 30) / dt
    print(f"RESULT value={value:.6g} elapsed={dt:.6f} n={n}", flush=True)


if __name__ == "__main__":
    main()
