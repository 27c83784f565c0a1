"""Extreme eigenvalues of the loss Hessian (or Gauss-Newton matrix) by Lanczos, and batch sharpness.

Sharpness, the top eigenvalue λ_max(∇²L(θ)), is the quantity of minima stability (GD with step η
can only stay at minima with λ_max ≤ 2/η) and of the edge of stability (Cohen, Kaur, Li, Kolter &
Talwalkar 2021, arXiv 2103.00065, who compute it by Lanczos on Hessian-vector products).

Conventions of every probe: ``loss_fn(output, target)`` returns the mean loss; ``data`` is
``(inputs, targets)`` or an iterable of such pairs, and the curvature is that of the mean loss over
all of it, accumulated chunk by chunk; computations run in the model's dtype; the model's
parameters and buffers are unchanged afterwards. Mode: the model is evaluated in its current
train/eval mode (train-mode BatchNorm uses each chunk's batch statistics; running statistics are
updated only on copies) — put the model in ``eval()`` first for the curvature of the inference
function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from genlab.probes._functional import Data, LossFn
from genlab.probes._operators import Curvature, CurvatureOperator
from genlab.probes.lanczos import WHICH, Which, _wanted, lanczos


@dataclass
class EigenResult:
    """Extreme eigenvalues of a curvature matrix.

    ``eigenvalues`` descending; ``eigenvectors`` (k × P, unit rows, same order) if asked for;
    ``residuals`` ‖H u − λ u‖ of each pair; ``hvps`` the number of matrix-vector products;
    ``converged`` whether every residual met the tolerance."""

    eigenvalues: np.ndarray
    residuals: np.ndarray
    hvps: int
    iterations: int
    converged: bool
    eigenvectors: torch.Tensor | None = None
    ritz_vector: torch.Tensor | None = field(default=None, repr=False)  # top vector, for warm starts

    @property
    def top(self) -> float:
        return float(self.eigenvalues[0])

    def scalars(self) -> dict[str, float]:
        """Values to record (for :func:`genlab.train.probe_measurements.probe_measurement`)."""
        out = {f"eig{i}": float(v) for i, v in enumerate(self.eigenvalues)}
        out["sharpness"] = float(self.eigenvalues[0])
        out["hvps"] = float(self.hvps)
        return out


def _check_common(k: int, tol: float, max_iter: int | None) -> None:
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if not (tol > 0):
        raise ValueError(f"tol must be > 0, got {tol!r}")
    if max_iter is not None and max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter!r}")


def operator_eigenvalues(
    op: CurvatureOperator,
    k: int = 1,
    which: Which = "largest",
    tol: float = 1e-6,
    max_iter: int | None = None,
    return_eigenvectors: bool = False,
    seed: int = 0,
    v0: torch.Tensor | None = None,
) -> EigenResult:
    """:func:`hessian_eigenvalues` on an existing operator (see there)."""
    _check_common(k, tol, max_iter)
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    n = op.size
    max_iter = min(n, max_iter if max_iter is not None else max(20 * k, 100))
    if v0 is None:
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        v0 = torch.randn(n, generator=g, dtype=torch.float64).to(op.dtype)
    else:
        v0 = v0.detach().reshape(-1).to(op.dtype).clone()
        if v0.numel() != n:
            raise ValueError(f"v0 must have {n} entries (the number of trainable parameters), got {v0.numel()}")
    before = op.matvecs
    run = lanczos(op.matvec, v0, max_iter, k=k, which=which, tol=tol)
    theta, s = run.ritz()
    res = np.broadcast_to(run.residuals(s), theta.shape).astype(np.float64)
    idx = _wanted(theta, k, which)
    idx = idx[np.argsort(-theta[idx], kind="stable")]  # descending eigenvalues
    scale = max(float(np.max(np.abs(theta))), 1e-300)
    converged = bool(np.all(res[idx] <= tol * scale))
    s_t = torch.as_tensor(s[:, idx] if return_eigenvectors else s[:, idx[:1]], dtype=op.dtype)
    u = run.basis @ s_t
    top_vec = u[:, 0].clone()
    vecs = u.T.contiguous() if return_eigenvectors else None
    return EigenResult(
        eigenvalues=theta[idx].copy(),
        residuals=res[idx].copy(),
        hvps=op.matvecs - before,
        iterations=len(run.alphas),
        converged=converged,
        eigenvectors=vecs,
        ritz_vector=top_vec,
    )


def hessian_eigenvalues(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    k: int = 1,
    which: Which = "largest",
    tol: float = 1e-6,
    max_iter: int | None = None,
    curvature: Curvature = "hessian",
    return_eigenvectors: bool = False,
    seed: int = 0,
    v0: torch.Tensor | None = None,
) -> EigenResult:
    """The ``k`` extreme eigenvalues of ∇²L(θ) (``curvature="ggn"``: of the Gauss-Newton matrix)
    by Lanczos with full reorthogonalization.

    Args:
        which: ``"largest"`` (algebraically), ``"smallest"``, ``"both"`` (k of each end) or
            ``"magnitude"`` (largest |λ|).
        tol: stop when every wanted Ritz pair has ‖H u − θ u‖ ≤ tol·|θ|_max; the eigenvalue error
            is then below tol·|θ|_max, and below (tol·|θ|_max)²/gap for an isolated eigenvalue
            (Parlett 1998, Thms 4.5.1 and 11.7.1).
        max_iter: cap on Lanczos steps = Hessian-vector products (default max(20k, 100), at most P).
        seed / v0: the random start vector (Gaussian, from ``seed``) or a given one (a warm start,
            e.g. the previous ``ritz_vector``).

    A single start vector finds one copy of a repeated eigenvalue. Returns :class:`EigenResult`.
    """
    op = CurvatureOperator(model, loss_fn, data, curvature)
    return operator_eigenvalues(op, k, which, tol, max_iter, return_eigenvectors, seed, v0)


def hessian_top_eigenvalue(model: torch.nn.Module, loss_fn: LossFn, data: Data, **kwargs: Any) -> float:
    """λ_max(∇²L(θ)) (the sharpness) by :func:`hessian_eigenvalues`."""
    return hessian_eigenvalues(model, loss_fn, data, k=1, which="largest", **kwargs).top


@dataclass
class BatchSharpness:
    """Mean (and standard error) of the top eigenvalue of minibatch Hessians, and the full-batch one."""

    batch_size: int
    mean: float
    stderr: float
    values: list[float]
    full_batch: float
    hvps: int
    batches: list[list[int]]  # the example indices of each minibatch

    def scalars(self) -> dict[str, float]:
        return {
            "batch_sharpness": self.mean,
            "batch_sharpness_se": self.stderr,
            "full_batch_sharpness": self.full_batch,
            "hvps": float(self.hvps),
        }


def batch_sharpness(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: tuple[torch.Tensor, torch.Tensor],
    batch_size: int,
    num_batches: int = 10,
    tol: float = 1e-5,
    max_iter: int | None = None,
    curvature: Curvature = "hessian",
    seed: int = 0,
) -> BatchSharpness:
    """E_B[λ_max(∇²L_B(θ))] over ``num_batches`` minibatches B of ``batch_size`` examples drawn
    without replacement (from ``seed``), beside λ_max(∇²L(θ)) of the full batch.

    By convexity of λ_max, E_B λ_max(H_B) ≥ λ_max(E_B H_B) = λ_max(H): minibatch sharpness is at
    least the full-batch one (the quantity that SGD's stability is about: Wu, Ma & E 2018,
    "How SGD selects the global minima in over-parameterized learning", NeurIPS; Jastrzębski et al.
    2020, arXiv 2002.09572). Same conventions and mode as :func:`hessian_eigenvalues`.
    """
    x, y = data
    n = int(x.shape[0])
    if not (1 <= batch_size <= n):
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}")
    g = torch.Generator().manual_seed(int(seed))
    values: list[float] = []
    drawn: list[list[int]] = []
    hvps = 0
    for b in range(num_batches):
        idx = torch.randperm(n, generator=g)[:batch_size]
        drawn.append(idx.tolist())
        r = hessian_eigenvalues(model, loss_fn, (x[idx], y[idx]), 1, "largest", tol, max_iter, curvature, seed=seed + b)
        values.append(r.top)
        hvps += r.hvps
    full = hessian_eigenvalues(model, loss_fn, (x, y), 1, "largest", tol, max_iter, curvature, seed=seed)
    arr = np.asarray(values)
    se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return BatchSharpness(batch_size, float(arr.mean()), se, values, full.top, hvps + full.hvps, drawn)
