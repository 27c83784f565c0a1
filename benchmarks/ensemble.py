"""Benchmark: training many small univariate ReLU networks at once, and the local sweep executor.

1. Steps per second per network, two-layer univariate ReLU model (n = 50, width 1000, float64,
   full-batch GD) with E = 1, 16, 256 members: the vectorized ensemble (``sorted`` and ``dense``
   kernels of genlab.train.ensemble) against a plain PyTorch autograd loop over the members, and
   against the floating-point bound of the dense formulation (8·n·width flops per step at the
   float64 matmul rate measured in the same run). Best of ``--repeats`` timings (the machine is shared).
2. The local executor's speed-up on 2 workers against running the same sweep points one after
   another in one process (both include everything the sweep does: run, checks, figures, store;
   the pool also pays its start-up). The load average is recorded: on a shared machine the
   speed-up measures the share of the cores the pool actually got.

Prints JSON. Usage: ``python benchmarks/ensemble.py [--threads 2] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from genlab.models.relu1d import TwoLayerReLU1D
from genlab.train.ensemble import init_params, train_ensemble

N, WIDTH, LR = 50, 1000, 0.01


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_rate(repeats: int) -> float:
    """float64 flop/s of a 512×512 matrix product."""
    a = torch.randn(512, 512, dtype=torch.float64)
    b = torch.randn(512, 512, dtype=torch.float64)
    a @ b
    dt = _best(lambda: [a @ b for _ in range(10)], repeats)
    return 10 * 2 * 512**3 / dt


def plain_loop(models: list[TwoLayerReLU1D], steps: int, x: torch.Tensor, y: torch.Tensor) -> None:
    """The baseline: for each member, ``steps`` GD steps with autograd (loss.backward, p -= lr·grad)."""
    for e, m in enumerate(models):
        ps = list(m.parameters())
        for _ in range(steps):
            for p in ps:
                p.grad = None
            loss = 0.5 * torch.mean((m(x[e]) - y[e]) ** 2)
            loss.backward()
            with torch.no_grad():
                for p in ps:
                    p.sub_(LR * p.grad)
            float(loss.detach())  # the loss is read every step, as the Trainer does


def ensemble_table(repeats: int) -> list[dict]:
    """Per E: best-of-``repeats`` rates, the methods interleaved within each repeat so that a
    change of machine load hits them alike."""
    rows = []
    for E in (1, 16, 256):
        x = torch.randn(E, N, dtype=torch.float64)
        y = torch.randn(E, N, dtype=torch.float64)
        params = init_params(WIDTH, list(range(E)), 0.1, 0.1)
        steps = {"sorted": max(2048 // E, 8), "dense": max(256 // E, 2), "loop": max(512 // E, 2)}
        models = [TwoLayerReLU1D(WIDTH, torch.Generator().manual_seed(e), 0.1, 0.1) for e in range(E)]
        runs = {
            "plain_loop": (lambda: plain_loop(models, steps["loop"], x, y), E * steps["loop"]),
            "ensemble_sorted": (lambda: train_ensemble(params, x, y, lr=LR, max_steps=steps["sorted"], kernel="sorted"), E * steps["sorted"]),
            "ensemble_dense": (lambda: train_ensemble(params, x, y, lr=LR, max_steps=steps["dense"], kernel="dense"), E * steps["dense"]),
        }
        best = {k: float("inf") for k in runs}
        rate = 0.0
        plain_loop(models[:1], 1, x, y)
        train_ensemble(params, x, y, lr=LR, max_steps=1, kernel="sorted")
        for _ in range(repeats):
            rate = max(rate, matmul_rate(1))
            for k, (fn, _) in runs.items():
                t = time.perf_counter()
                fn()
                best[k] = min(best[k], time.perf_counter() - t)
        bound = rate / (8 * N * WIDTH)
        row = {"E": E, "matmul_gflops": rate / 1e9, "flop_bound_steps_per_s": bound}
        row.update({k: runs[k][1] / best[k] for k in runs})
        row["sorted_vs_loop"] = row["ensemble_sorted"] / row["plain_loop"]
        row["dense_vs_loop"] = row["ensemble_dense"] / row["plain_loop"]
        row["sorted_vs_flop_bound"] = row["ensemble_sorted"] / bound
        row["dense_vs_flop_bound"] = row["ensemble_dense"] / bound
        rows.append(row)
    return rows


def executor_table(points: int) -> dict:
    from genlab.store import Store
    from genlab.sweep.driver import plan_sweep, run_sweep
    from genlab.sweep.executors import InlineExecutor, LocalExecutor

    sets = {"n": 20, "width": 30, "step_sizes": [0.2, 0.5], "flow_time": 4000.0}
    out = {"points": points, "config": sets}
    for label, make in (("serial", InlineExecutor), ("local_2_workers", lambda: LocalExecutor(2))):
        with tempfile.TemporaryDirectory() as home:
            plan = plan_sweep("stable-minima", None, [f"seed=0:{points}"], sets)
            t = time.perf_counter()
            stats = run_sweep(plan, Store(home), make())
            out[f"{label}_seconds"] = time.perf_counter() - t
            assert stats.done == points
    out["speedup"] = out["serial_seconds"] / out["local_2_workers_seconds"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--points", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {"load_average_before": os.getloadavg()[0], "cpus": os.cpu_count(), "threads": args.threads, "n": N, "width": WIDTH, "dtype": "float64", "ensemble": ensemble_table(args.repeats)}
    torch.set_num_threads(1)  # serial sweep points run single-threaded, like each worker of the pool
    result["executor"] = executor_table(args.points)
    result["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
