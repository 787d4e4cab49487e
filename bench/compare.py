#!/usr/bin/env python3
"""Compare the multiproc column of two builds, run alternately.

    python3 bench/compare.py --before OLD_BUILD --after NEW_BUILD [ID ...]

For each row of bench/run.py (or only the ids given) it calibrates on the
new build, then runs the row's multiproc program of both builds 5 times
each, alternating which goes first, and prints the medians and how many
times better the new build is (above 1 = better, whatever the unit's
direction). Alternating matters on a noisy VM: two full `make bench` runs
minutes apart can differ more than two builds do. Standard library only.
"""
import argparse
import importlib.util
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_run", os.path.join(HERE, "run.py"))
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="build directory of the old build")
    ap.add_argument("--after", required=True, help="build directory of the new build")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.3, help="aimed duration of one run")
    ap.add_argument("--pin", default="0,1", help="BENCH_PIN for rows that pin ('none': no pinning)")
    ap.add_argument("ids", nargs="*")
    args = ap.parse_args()
    builds = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    print(f"{'id':42} {'before':>11} {'after':>11} {'better':>7}", flush=True)
    for row in run.ROWS:
        if args.ids and row["id"] not in args.ids:
            continue
        env = dict(os.environ)
        env.pop("BENCH_PIN", None)
        if row.get("pin") and args.pin != "none":
            env["BENCH_PIN"] = args.pin
        prog, *rest = row["multiproc"]
        cmds = {k: [os.path.join(b, "bench", prog), *rest] for k, b in builds.items()}
        vals = {"before": [], "after": []}
        try:
            pilot = row["pilot"]["multiproc"]
            n = run.scaled_count(pilot, run.run_once(cmds["after"], pilot, [], env, False),
                                 args.seconds)
            for i in range(args.reps):
                for k in ("before", "after") if i % 2 == 0 else ("after", "before"):
                    vals[k].append(run.run_once(cmds[k], n, [], env, False)["value"])
        except run.RunError as e:
            print(f"{row['id']:42} not measured: {e}", flush=True)
            continue
        b, a = statistics.median(vals["before"]), statistics.median(vals["after"])
        better = a / b if row["higher_is_better"] else b / a
        print(f"{row['id']:42} {b:11.4g} {a:11.4g} {better:7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
