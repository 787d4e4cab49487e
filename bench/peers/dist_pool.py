"""CPython peer of the distributed pool rows: the seeds' distributed
example as a throughput test.

    python3 dist_pool.py tiny <iterations>   a BaseManager serves a task queue
                                             and a result queue (127.0.0.1,
                                             authkey); 2 worker processes
                                             connect to it, get n, put n*n;
                                             the master puts N numbers and
                                             reads N results; value = tasks/s
    python3 dist_pool.py roundtrip <iterations>  the same with 1 worker, one
                                             task at a time: put, then get
                                             its result; value = µs per task

multiprocessing has no distributed pool: this is what the seeds build by
hand with a manager's queues, one task per put. The manager and the workers
are started, and warmed up, before the clock starts. Prints RESULT
value=<v> elapsed=<s> n=<iterations>.
"""
import multiprocessing
import queue
import sys
import time
from multiprocessing.managers import BaseManager

WORKERS = 2
AUTHKEY = b"abc"
task_queue = queue.Queue()
result_queue = queue.Queue()


class QueueManager(BaseManager):
    pass


QueueManager.register("get_task_queue", callable=lambda: task_queue)
QueueManager.register("get_result_queue", callable=lambda: result_queue)


class WorkerManager(BaseManager):
    pass


WorkerManager.register("get_task_queue")
WorkerManager.register("get_result_queue")


def worker(address):
    m = WorkerManager(address=address, authkey=AUTHKEY)
    m.connect()
    tasks, results = m.get_task_queue(), m.get_result_queue()
    while True:
        n = tasks.get()
        if n is None:
            break
        results.put(n * n)


def run(tasks, results, n):
    for i in range(n):
        tasks.put(i)
    total = 0
    for _ in range(n):
        total += results.get(timeout=60)
    return total


def roundtrip(tasks, results, n):
    for i in range(n):
        tasks.put(i)
        if results.get(timeout=60) != i * i:
            sys.exit("wrong result")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("tiny", "roundtrip"):
        sys.exit("usage: dist_pool.py tiny|roundtrip <iterations>")
    mode = sys.argv[1]
    n = int(sys.argv[2])
    workers = 1 if mode == "roundtrip" else WORKERS
    ctx = multiprocessing.get_context("fork")
    mgr = QueueManager(address=("127.0.0.1", 0), authkey=AUTHKEY, ctx=ctx)
    mgr.start()
    procs = [ctx.Process(target=worker, args=(mgr.address,)) for _ in range(workers)]
    for p in procs:
        p.start()
    tasks, results = mgr.get_task_queue(), mgr.get_result_queue()
    run(tasks, results, 10)
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    if mode == "roundtrip":
        roundtrip(tasks, results, n)
    elif run(tasks, results, n) != sum(i * i for i in range(n)):
        sys.exit("wrong result")
    dt = time.clock_gettime(time.CLOCK_MONOTONIC) - t0
    for _ in procs:
        tasks.put(None)
    for p in procs:
        p.join()
    mgr.shutdown()
    value = dt / n * 1e6 if mode == "roundtrip" else n / dt
    print(f"RESULT value={value:.6f} elapsed={dt:.6f} n={n}", flush=True)


if __name__ == "__main__":
    main()
