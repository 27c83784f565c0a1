"""Trace of the loss Hessian (or Gauss-Newton matrix) by randomized estimators: Hutchinson and Hutch++.

- Hutchinson (1989, "A stochastic estimator of the trace of the influence matrix for Laplacian
  smoothing splines", Commun. Stat. Simul. Comput. 18(3)): tr(H) ≈ (1/m) Σ_i z_iᵀ H z_i with
  Rademacher z_i; unbiased, variance 2(‖H‖_F² − Σ_i H_ii²)/m.
- Hutch++ (Meyer, Musco, Musco & Woodruff 2021, "Hutch++: optimal stochastic trace estimation",
  SOSA, arXiv 2010.09649, Algorithm 1): with m products, sketch Q = orth(H S) from m/3 random
  vectors, take tr(QᵀHQ) exactly (m/3 products) and apply Hutchinson to the deflated
  (I − QQᵀ) H (I − QQᵀ) with the last m/3: error O(1/m) instead of O(1/√m) for matrices whose
  spectrum decays, as Hessians' does.

Standard errors are sample standard deviations of the Hutchinson terms over √(number of terms);
for Hutch++ this is the error of the deflated part given the sketch (the low-rank part is exact).
Same data conventions, dtype and mode as :mod:`genlab.probes.curvature`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from genlab.probes._functional import Data, LossFn
from genlab.probes._operators import Curvature, CurvatureOperator, Symmetry, curvature_call
from genlab.probes._setup import ProbeInfo
from genlab.probes.blocks import ParamSpec, on_blocks

Method = Literal["hutch++", "hutchinson"]


@dataclass
class TraceResult:
    """Estimate of tr(H), its standard error, the number of products used, and the method."""

    estimate: float
    stderr: float
    hvps: int
    method: str
    samples: list[float]  # the Hutchinson terms (of the deflated matrix for Hutch++)
    low_rank_part: float = 0.0  # tr(QᵀHQ) for Hutch++
    info: ProbeInfo | None = None

    def scalars(self) -> dict[str, float]:
        return {"trace": self.estimate, "trace_se": self.stderr, "hvps": float(self.hvps)}


def _rademacher(n: int, m: int, g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    return (torch.randint(0, 2, (n, m), generator=g).to(dtype) * 2 - 1)


def _stderr(samples: np.ndarray) -> float:
    return float(samples.std(ddof=1) / np.sqrt(len(samples))) if len(samples) > 1 else float("inf")


def operator_trace(
    op: CurvatureOperator,
    method: Method = "hutch++",
    num_matvecs: int = 99,
    target_stderr: float | None = None,
    min_samples: int = 10,
    seed: int = 0,
) -> TraceResult:
    """:func:`hessian_trace` on an existing operator (see there)."""
    if method not in ("hutch++", "hutchinson"):
        raise ValueError(f"method must be 'hutch++' or 'hutchinson', got {method!r}")
    if num_matvecs < 2 or (method == "hutch++" and num_matvecs < 3):
        raise ValueError(f"num_matvecs must be >= 2 (>= 3 for hutch++), got {num_matvecs}")
    g = torch.Generator().manual_seed(int(seed))
    n = op.size
    before = op.matvecs
    if method == "hutchinson":
        samples: list[float] = []
        while len(samples) < num_matvecs:
            z = _rademacher(n, 1, g, op.dtype)[:, 0]
            samples.append(float(torch.dot(z, op.matvec(z))))
            if target_stderr is not None and len(samples) >= min_samples:
                if _stderr(np.asarray(samples)) <= target_stderr:
                    break
        arr = np.asarray(samples)
        return TraceResult(float(arr.mean()), _stderr(arr), op.matvecs - before, method, samples)

    third = num_matvecs // 3
    s = _rademacher(n, third, g, op.dtype)
    q, _ = torch.linalg.qr(op.matmat(s))
    low_rank = float(torch.sum(q * op.matmat(q)))
    rest = num_matvecs - 2 * third
    gmat = _rademacher(n, rest, g, op.dtype)
    gmat = gmat - q @ (q.T @ gmat)
    samples_t = torch.sum(gmat * op.matmat(gmat), dim=0)
    arr = samples_t.double().cpu().numpy()
    return TraceResult(low_rank + float(arr.mean()), _stderr(arr), op.matvecs - before, method, arr.tolist(), low_rank)


def hessian_trace(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    method: Method = "hutch++",
    num_matvecs: int = 99,
    target_stderr: float | None = None,
    curvature: Curvature = "hessian",
    seed: int = 0,
    *,
    mode: str = "eval",
    output_fn=None,
    batch_size_fn=None,
    symmetry: Symmetry = "raise",
    params: ParamSpec | None = None,
    per_layer: bool = False,
) -> TraceResult:
    """tr(∇²L(θ)) (``curvature="ggn"``: of the Gauss-Newton matrix) with ``num_matvecs`` products.

    ``method="hutch++"`` (default; Meyer et al. 2021, Algorithm 1) splits the budget in thirds
    (sketch, exact low-rank part, Hutchinson on the rest); ``"hutchinson"`` uses Rademacher probes
    and, with ``target_stderr``, stops as soon as its standard error is below it (at least
    ``min_samples`` = 10 probes, at most ``num_matvecs``). Mode, layouts and the symmetry check
    as in :mod:`genlab.probes.curvature`. ``params``/``per_layer``: tr(H_BB) of a parameter subset,
    or one result per layer (a :class:`~genlab.probes.blocks.PerBlock`; :mod:`genlab.probes.blocks`).
    Returns :class:`TraceResult`.
    """
    with curvature_call(model, loss_fn, data, curvature, mode=mode, seed=seed, output_fn=output_fn,
                        batch_size_fn=batch_size_fn, symmetry=symmetry) as (op, info):
        r = on_blocks(op, op.fm.model, params, per_layer, lambda o: operator_trace(o, method, num_matvecs, target_stderr, seed=seed))
    r.info = info
    for one in r.results.values() if per_layer else []:
        one.info = info
    return r
