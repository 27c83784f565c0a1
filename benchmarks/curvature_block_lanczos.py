"""Does block Lanczos beat genlab's single-vector Lanczos for the top 10 eigenvalues? (A measurement
that decided to leave it out of genlab.)

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 /work/bench-venv/bin/python benchmarks/curvature_block_lanczos.py \
        --json benchmarks/curvature_block_lanczos.json

On the trained MNIST-1D MLP of ``benchmarks/_trained_mnist1d.py``: genlab's
``operator_eigenvalues(k=10, tol=1e-4)`` against a block Krylov iteration written here (block
Lanczos with full reorthogonalization and Rayleigh–Ritz on the whole basis; blocks of b random
vectors; stopped when the top k + 1 Ritz pairs have explicit residuals ‖AQs − θQs‖ ≤ 1e-4·|θ|max),
with the block's products batched (``CurvatureOperator.matmat(block=b)``) or column by column.
Reference: genlab's Lanczos to tol 1e-7 (k = 12). Methods interleaved per repeat; JSON out with
products, seconds and the largest relative error of the 10 values.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F

from _trained_mnist1d import emit, parser, timed, trained

from genlab.probes._operators import CurvatureOperator
from genlab.probes.curvature import operator_eigenvalues


def block_topk(op: CurvatureOperator, k: int, b: int, tol: float, max_products: int, seed: int, batched: bool):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(op.size, b, generator=g))
    basis, images = [], []
    while op.matvecs < max_products:
        w = op.matmat(q, block=b if batched else 1)
        basis.append(q)
        images.append(w)
        big_q, big_aq = torch.cat(basis, 1), torch.cat(images, 1)
        t = (big_q.T @ big_aq).double()
        theta, s = torch.linalg.eigh((t + t.T) / 2)
        idx = torch.arange(len(theta) - min(k + 1, len(theta)), len(theta))
        sk = s[:, idx].to(big_q.dtype)
        res = torch.linalg.vector_norm(big_aq @ sk - (big_q @ sk) * theta[idx].to(big_q.dtype), dim=0).double()
        if len(theta) > k and bool((res <= tol * theta.abs().max()).all()):
            break
        w = w - big_q @ (big_q.T @ w)
        w = w - big_q @ (big_q.T @ w)
        q, _ = torch.linalg.qr(w)
    return theta.flip(0)[:k].numpy(), op.matvecs


def lanczos_topk(op: CurvatureOperator, k: int, seed: int):
    r = operator_eigenvalues(op, k=k, tol=1e-4, max_iter=400, seed=seed)
    return r.eigenvalues, r.hvps


METHODS = {
    "genlab Lanczos": lambda op, seed: lanczos_topk(op, 10, seed),
    "block 5, batched products": lambda op, seed: block_topk(op, 10, 5, 1e-4, 400, seed, True),
    "block 10, batched products": lambda op, seed: block_topk(op, 10, 10, 1e-4, 400, seed, True),
    "block 10, column by column": lambda op, seed: block_topk(op, 10, 10, 1e-4, 400, seed, False),
}


def main() -> None:
    args = parser(__doc__, repeats=(int, 2, None)).parse_args()
    torch.set_num_threads(1)
    model, x, y, meta = trained("mlp")
    ref = operator_eigenvalues(CurvatureOperator(model, F.cross_entropy, (x, y)), k=12, tol=1e-7, max_iter=400, seed=9).eigenvalues[:10]
    runs = []
    for rep in range(args.repeats):
        for name, fn in METHODS.items():
            op = CurvatureOperator(model, F.cross_entropy, (x, y))
            (vals, hvps), sec = timed(lambda: fn(op, rep))
            err = float(np.max(np.abs(np.sort(vals)[::-1][:10] - ref) / np.abs(ref)))
            runs.append({"repeat": rep, "method": name, "hvps": int(hvps), "seconds": sec, "max_rel_error": err})
            print(json.dumps(runs[-1]), flush=True)
    emit({"model": "mlp", **meta, "reference_top10": ref.tolist(), "runs": runs}, args, "")


if __name__ == "__main__":
    main()
