"""Hessian trace at 30 and 90 products: genlab's XTrace / Hutch++ against curvlinops' XTrace / Hutch++.

Run in the benchmarks' environment (``sh benchmarks/make_env.sh /work/bench-venv``; peers never
become genlab dependencies):

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 /work/bench-venv/bin/python benchmarks/curvature_trace.py \
        --json benchmarks/curvature_trace.json --markdown benchmarks/curvature_trace.md

Models: the trained MNIST-1D MLP and CNN of ``benchmarks/_trained_mnist1d.py`` (100% train
accuracy, 1000 examples, float32, cross-entropy), the Hessian of the mean loss over all 1000.
Exact trace: the sum of BackPACK's exact Hessian diagonal (``DiagHessian``, exact for ReLU
networks), cross-checked on 40 random coordinates against genlab's Hessian-vector products eᵢᵀHeᵢ.
For each budget (30, 90 products) and seed (``--seeds``, default 10), the methods run in an order
rotated by seed (interleaved): genlab ``hessian_trace(method="xtrace")`` and ``"hutch++"`` (the
public call, its symmetry check of 2 products included), genlab XTrace with the batched product
(``block`` = all columns of a sketch; at the smallest budget only), curvlinops ``xtrace`` and ``hutchpp_trace`` on a
``HessianLinearOperator`` built inside the timed call with ``check_deterministic=False`` (its
default check costs extra passes: generous to curvlinops). Relative error |est − tr|/|tr|: RMS
and median over seeds; time: median wall time per call. Ratios are genlab / curvlinops XTrace.
genlab's and curvlinops' XTrace are the same estimator (Rademacher vectors), so their errors
agree in distribution; the RMS is given with its standard error over seeds.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import torch

from _trained_mnist1d import emit, median, parser, timed, trained
from curvlinops import HessianLinearOperator, hutchpp_trace, xtrace

from genlab.probes._operators import CurvatureOperator, curvature_call
from genlab.probes.trace import hessian_trace, operator_trace

LOSS = torch.nn.CrossEntropyLoss()


def exact_trace(model, x, y) -> dict:
    """tr(H) from BackPACK's exact diagonal, and its largest disagreement with eᵢᵀHeᵢ on 40 coordinates."""
    from backpack import backpack, extend
    from backpack.extensions import DiagHessian

    m = extend(copy.deepcopy(model))
    loss = extend(torch.nn.CrossEntropyLoss())(m(x), y)
    with backpack(DiagHessian()):
        loss.backward()
    diag = torch.cat([p.diag_h.reshape(-1) for p in m.parameters()]).double()
    op = CurvatureOperator(model, LOSS, (x, y))
    idx = torch.randperm(op.size, generator=torch.Generator().manual_seed(0))[:40]
    e = torch.zeros(op.size, 40)
    e[idx, torch.arange(40)] = 1.0
    check = op.matmat(e)[idx, torch.arange(40)].double()
    scale = float(diag.abs().max())
    return {"trace": float(diag.sum()), "check_max_abs_diff_over_max_diag": float((check - diag[idx]).abs().max()) / scale}


def genlab_public(method):
    return lambda model, x, y, m, seed: hessian_trace(model, LOSS, (x, y), method=method, num_matvecs=m, seed=seed).estimate


def genlab_batched(model, x, y, m, seed):
    with curvature_call(model, LOSS, (x, y), seed=seed) as (op, _):
        return operator_trace(op, "xtrace", m, seed=seed, block=m // 2).estimate


def curvlinops(fn):
    def run(model, x, y, m, seed):
        torch.manual_seed(seed)
        a = HessianLinearOperator(model, LOSS, [p for p in model.parameters() if p.requires_grad], [(x, y)],
                                  check_deterministic=False)
        return float(fn(a, m))
    return run


METHODS = {
    "genlab xtrace": genlab_public("xtrace"),
    "genlab hutch++": genlab_public("hutch++"),
    "genlab xtrace (batched products)": genlab_batched,
    "curvlinops xtrace": curvlinops(xtrace),
    "curvlinops hutch++": curvlinops(hutchpp_trace),
}
BASE = "curvlinops xtrace"


def bench(kind: str, budgets: list[int], seeds: int, methods: list[str] | None = None) -> dict:
    model, x, y, meta = trained(kind)
    ref = exact_trace(model, x, y)
    tr = ref["trace"]
    out = {"model": kind, **meta, "exact": ref, "budgets": {}}
    names = [n for n in METHODS if methods is None or n in methods]
    for m in budgets:
        # the batched variant only at the smallest budget (it was measured slower per product)
        rows = {n: {"rel_errors": [], "seconds": []} for n in names if "batched" not in n or m == min(budgets)}
        for seed in range(seeds):
            order = names[seed % len(names):] + names[: seed % len(names)]
            for n in order:
                if n not in rows:
                    continue
                est, sec = timed(lambda: METHODS[n](model, x, y, m, seed))
                rows[n]["rel_errors"].append(abs(est - tr) / abs(tr))
                rows[n]["seconds"].append(sec)
        for n, r in rows.items():
            e = np.asarray(r["rel_errors"])
            r["rms_rel_error"] = float(np.sqrt(np.mean(e**2)))
            # delta method: SE of sqrt(mean e²) = SE(mean e²) / (2 sqrt(mean e²))
            r["rms_rel_error_se"] = float(np.std(e**2, ddof=1) / np.sqrt(len(e)) / (2 * max(r["rms_rel_error"], 1e-300)))
            r["median_rel_error"] = float(np.median(e))
            r["median_seconds"] = median(r["seconds"])
        for n, r in rows.items():
            r["error_ratio_vs_curvlinops_xtrace"] = r["rms_rel_error"] / rows[BASE]["rms_rel_error"]
            r["time_ratio_vs_curvlinops_xtrace"] = r["median_seconds"] / rows[BASE]["median_seconds"]
        out["budgets"][str(m)] = rows
        print(json.dumps({"model": kind, "products": m, **{n: {k: v for k, v in r.items() if k not in ("rel_errors", "seconds")}
                                                          for n, r in rows.items()}}), flush=True)
    return out


def markdown(results: list[dict]) -> str:
    lines = ["| model (params) | products | method | RMS rel. error (± SE) | median rel. error | median time (s) | error / curvlinops XTrace | time / curvlinops XTrace |",
             "|---|---|---|---|---|---|---|---|"]
    for res in results:
        for m, rows in res["budgets"].items():
            for n, r in rows.items():
                lines.append(f"| {res['model']} ({res['params']:,}) | {m} | {n} | {r['rms_rel_error']:.2e} ± {r['rms_rel_error_se']:.1e} | "
                             f"{r['median_rel_error']:.2e} | {r['median_seconds']:.3f} | {r['error_ratio_vs_curvlinops_xtrace']:.2f} | "
                             f"{r['time_ratio_vs_curvlinops_xtrace']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = parser(__doc__, budgets=(int, [30, 90], "+"), seeds=(int, 10, None))
    ap.add_argument("--methods", nargs="+", choices=list(METHODS), help="a subset of the methods (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = [bench(k, args.budgets, args.seeds, args.methods) for k in args.models]
    emit({"results": results, "seeds": args.seeds, "torch_threads": torch.get_num_threads()}, args, markdown(results))


if __name__ == "__main__":
    main()
