"""Benchmark: genlab's hard-margin SVM solver against scipy's SLSQP on the primal QP.

Same problems, same process: median wall time of each and the largest difference of the
solutions (relative to ‖ŵ‖). Prints JSON; the ratio slsqp/genlab is the number to read.
"""

from __future__ import annotations

import json
import time

import numpy as np
from scipy.optimize import minimize

from genlab.theory.max_margin import hard_margin_svm


def slsqp(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = X.shape[1]
    res = minimize(
        lambda v: 0.5 * v @ v, np.zeros(d), jac=lambda v: v, method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda v: y * (X @ v) - 1.0, "jac": lambda v: X * y[:, None]}],
        options={"ftol": 1e-12, "maxiter": 5000},
    )
    return res.x


def timed(fn, *args, repeats: int = 5):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main() -> None:
    rows = []
    for n, d in [(20, 2), (100, 10), (400, 20), (1000, 50)]:
        rng = np.random.default_rng(n + d)
        X = rng.standard_normal((n, d))
        y = np.sign(X @ rng.standard_normal(d))
        t_g, w_g = timed(lambda: hard_margin_svm(X, y).w)
        t_s, w_s = timed(slsqp, X, y)
        rows.append({
            "n": n, "d": d, "genlab_s": t_g, "slsqp_s": t_s, "ratio_slsqp_over_genlab": t_s / t_g,
            "max_rel_diff": float(np.abs(w_g - w_s).max() / np.linalg.norm(w_g)),
            "genlab_min_margin": float(np.min(y * (X @ w_g))), "slsqp_min_margin": float(np.min(y * (X @ w_s))),
        })
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
