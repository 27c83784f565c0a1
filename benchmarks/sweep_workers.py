"""Benchmark: ``genlab sweep --workers 2`` against the same points run one after another.

The same sweep (stable-minima, 4 seeds, small settings) is run as a CLI subprocess into a fresh
home each time, in turn with ``--workers 1`` (the points one after another, genlab's thread
share for one process: all usable CPUs), ``--workers 1 --threads 1`` and ``--workers 2`` (two
worker processes, each given its share of the usable CPUs by :mod:`genlab.threads`),
``OMP_NUM_THREADS`` removed from the environment so that the share is genlab's own choice. ``--ray`` adds ``--executor ray --workers 2`` (run it inside a network
namespace: ``unshare -n sh -c 'ip link set lo up; python benchmarks/sweep_workers.py --ray'``).
Reports the median wall time of each and the ratio parallel / sequential (target of issue 22:
≤ 0.6 on 2 cores), with the load average before and after (the machine is shared).

    PYTHONPATH=$PWD python benchmarks/sweep_workers.py [--repeats 3] [--ray] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SETS = ["n=12", "width=12", "step_sizes=[0.3]", "flow_time=900"]
POINTS = "seed=0:4"


def run(extra: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    with tempfile.TemporaryDirectory(prefix="genlab-sweep-bench-") as home:
        args = [sys.executable, "-c", "from genlab.cli import main; main()", "sweep", "stable-minima",
                "--grid", POINTS, "--home", home, *extra]
        for kv in SETS:
            args += ["--set", kv]
        t0 = time.perf_counter()
        out = subprocess.run(args, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t0
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(extra)}: exit {out.returncode}: {out.stderr.strip()[-500:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ray", action="store_true", help="also the Ray executor with 2 workers")
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    variants = {"sequential (--workers 1)": ["--workers", "1"],
                "sequential, 1 thread (--workers 1 --threads 1)": ["--workers", "1", "--threads", "1"],
                "local --workers 2": ["--workers", "2"]}
    if args.ray:
        variants["ray --workers 2"] = ["--executor", "ray", "--workers", "2"]
    load0 = os.getloadavg()[0]
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):  # interleaved
        for k, extra in variants.items():
            times[k].append(run(extra))
    load = (load0, os.getloadavg()[0])
    seq = statistics.median(times["sequential (--workers 1)"])
    rows = [{"variant": k, "seconds": statistics.median(v), "all": v, "ratio_to_sequential": statistics.median(v) / seq}
            for k, v in times.items()]
    print(json.dumps({"benchmark": "sweep_workers", "points": POINTS, "sets": SETS, "cpus": os.cpu_count(),
                      "load_average": load, "repeats": args.repeats, "rows": rows}, indent=1))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(f"`genlab sweep stable-minima --grid {POINTS}` ({' '.join('--set ' + s for s in SETS)}), "
                     f"a fresh home per run, OMP_NUM_THREADS unset; median wall time of {args.repeats} interleaved runs "
                     f"on {os.cpu_count()} cores, load average {load[0]:.1f} before and {load[1]:.1f} after "
                     "(a shared machine). Target (issue 22): --workers 2 ≤ 0.6× sequential.\n\n")
            fh.write("| variant | seconds (median) | runs | × sequential |\n|---|---|---|---|\n")
            for r in rows:
                fh.write(f"| {r['variant']} | {r['seconds']:.1f} | {', '.join(f'{t:.1f}' for t in r['all'])} "
                         f"| {r['ratio_to_sequential']:.2f} |\n")


if __name__ == "__main__":
    main()
