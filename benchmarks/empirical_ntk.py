"""Benchmark: genlab.probes.kernels.empirical_ntk against the torch.func recipe.

The recipe (measured in the same run, methods interleaved): per-example Jacobians by
``vmap(jacrev(f_one_example))`` over a dict of parameters, then Σ over parameters of
``einsum("akp,bkp->ab")`` — what the torch.func documentation suggests, all Jacobians held at once.
genlab runs with its default memory bound (``max_elements=2**24``) and with a bound large enough to
hold all Jacobians. Models: an MLP 40 → 256 → 256 → 10 and a CNN (two 5×5 conv + max-pool, linear
head) on 28×28 inputs, 64 inputs × 10 outputs, float32, trace over outputs. Reports the median
time of each method, the ratio genlab / recipe and the largest relative difference of the kernels.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/empirical_ntk.py [--repeats 5] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from genlab.probes.kernels import empirical_ntk


def build(name: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
        x = torch.randn(64, 40)
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(512, 10),
        )
        x = torch.randn(64, 1, 28, 28)
    return model.eval(), x


def recipe(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p, xi):
        return functional_call(model, p, (xi.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(one), (None, 0))(params, x)
    return sum(torch.einsum("akp,bkp->ab", j.flatten(2), j.flatten(2)) for j in jac.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    rows = []
    for name in ("mlp", "cnn"):
        model, x = build(name)
        n_params = sum(p.numel() for p in model.parameters())
        methods = {
            "recipe": lambda: recipe(model, x),
            "genlab (default bound)": lambda: empirical_ntk(model, x),
            "genlab (all at once)": lambda: empirical_ntk(model, x, max_elements=2 * 64 * 10 * n_params),
        }
        ref = recipe(model, x)
        diffs = {k: float((f() - ref).abs().max() / ref.abs().max()) for k, f in methods.items()}
        times: dict[str, list[float]] = {k: [] for k in methods}
        for _ in range(args.repeats):  # interleaved
            for k, f in methods.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k in methods:
            rows.append({"model": name, "params": n_params, "n": 64, "outputs": 10, "method": k,
                         "seconds": round(med[k], 4), "ratio_to_recipe": round(med[k] / med["recipe"], 3),
                         "max_rel_diff": diffs[k]})
    load = os.getloadavg()[0]
    print(json.dumps({"benchmark": "empirical_ntk", "threads": torch.get_num_threads(), "load_average": load,
                      "repeats": args.repeats, "rows": rows}, indent=1))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write("# empirical_ntk benchmark\n\n")
            fh.write(f"`PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/empirical_ntk.py --repeats {args.repeats}` "
                     f"(torch threads: {torch.get_num_threads()}; load average {load:.1f} on {os.cpu_count()} cores while "
                     "measured — a shared machine, so compare ratios measured in the same run; median of interleaved repeats). "
                     "64 inputs × 10 outputs, float32, trace over outputs. Recipe: `vmap(jacrev)` over a dict of "
                     "parameters + einsum, all Jacobians at once. Target (issue 22): genlab ≤ 1.0× the recipe.\n\n")
            fh.write("| model | params | method | seconds | × recipe | max rel. diff |\n|---|---|---|---|---|---|\n")
            for r in rows:
                fh.write(f"| {r['model']} | {r['params']} | {r['method']} | {r['seconds']} | {r['ratio_to_recipe']} "
                         f"| {r['max_rel_diff']:.1e} |\n")


if __name__ == "__main__":
    main()
