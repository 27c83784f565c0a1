"""Structured initializations: weight matrices of a chosen rank at a fixed Frobenius norm, and
low-rank matrices aligned with a task.

Liu, Baratin, Cornford, Mihalas, Shea-Brown & Lajoie 2023 ("How connectivity structure shapes rich
and lazy learning in neural circuits", ICLR 2024, arXiv 2310.08513) compare initial weights of
different effective rank at the same Frobenius norm (so only the structure changes, not the scale
that sets lazy vs rich by itself): high rank → lazier learning; low rank → richer, unless the
low-rank weights are aligned with the task and data statistics (their §3, Prop. 1).

- :func:`low_rank_weight` — W = U·diag(s, …, s)·Vᵀ with U, V Haar-random orthonormal r-frames and
  s = norm/√r: rank r, Frobenius norm ``norm``, and effective rank (Roy & Vetterli 2007) exactly r
  because its r singular values are equal.
- :func:`aligned_low_rank_weight` — the same with the right frame V spanning given task
  directions, so the row space of W is the task subspace.
- :func:`task_directions` — the task subspace estimated from data by Stein's lemma: the first-order
  direction E[(y − ȳ)x] (for Gaussian x it is E[∇f]) and the principal Hessian directions
  E[(y − ȳ)(x − x̄)(x − x̄)ᵀ] (Li 1992, "On principal Hessian directions for data visualization and
  dimension reduction", JASA 87, eq. 2.2; for Gaussian x it is E[∇²f]).
- :func:`effective_rank` — exp of the entropy of the normalized singular values (Roy & Vetterli
  2007, "The effective rank: a measure of effective dimensionality", EUSIPCO, Def. 1).
- :func:`subspace_alignment` — ‖W P‖_F/‖W‖_F for the orthogonal projector P onto a subspace: the
  fraction of W's energy in its rows' projection on the task subspace (1 = aligned).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from genlab.errors import InputError

__all__ = ["low_rank_weight", "aligned_low_rank_weight", "task_directions", "effective_rank", "subspace_alignment"]


def _frame(rows: int, r: int, g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """A Haar-random (rows, r) matrix with orthonormal columns (QR of a Gaussian, signs fixed)."""
    q, rr = torch.linalg.qr(torch.randn(rows, r, generator=g, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(rr))).to(dtype)


def _check_norm(norm: float | None, shape: tuple[int, int]) -> float:
    if norm is None:
        return math.sqrt(shape[0] * shape[1])  # E‖W‖_F for i.i.d. N(0, 1) entries, squared
    if not (isinstance(norm, (int, float)) and math.isfinite(norm) and norm > 0):
        raise InputError(f"norm: got {norm!r}; must be a finite number > 0")
    return float(norm)


def low_rank_weight(
    shape: tuple[int, int],
    rank: int,
    norm: float | None = None,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """A (out, in) matrix of rank ``rank`` with equal nonzero singular values and Frobenius norm
    ``norm`` (default √(out·in), the expected norm of an i.i.d. N(0, 1) matrix, so that a rank
    sweep at the default keeps the scale of the standard initialization). Liu et al. 2023
    (arXiv 2310.08513), §2: effective rank varied at fixed ‖W‖_F."""
    out, inp = int(shape[0]), int(shape[1])
    if out < 1 or inp < 1:
        raise InputError(f"shape: got {shape!r}; both sizes must be >= 1")
    if not (isinstance(rank, int) and 1 <= rank <= min(out, inp)):
        raise InputError(f"rank: got {rank!r}; must be an integer in [1, min(shape) = {min(out, inp)}]")
    norm = _check_norm(norm, (out, inp))
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    u, v = _frame(out, rank, g, torch.float64), _frame(inp, rank, g, torch.float64)
    return ((norm / math.sqrt(rank)) * (u @ v.T)).to(dtype)


def aligned_low_rank_weight(
    shape: tuple[int, int],
    directions: np.ndarray | torch.Tensor,
    norm: float | None = None,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """A (out, in) matrix whose row space is the span of ``directions`` (k, in) (k ≤ out), with k
    equal singular values and Frobenius norm ``norm`` (default √(out·in)): the task-aligned
    low-rank initialization of Liu et al. 2023 (arXiv 2310.08513, §3 and Prop. 1, where the
    aligned first-layer weights are built from the task's input directions)."""
    out, inp = int(shape[0]), int(shape[1])
    d = torch.as_tensor(np.asarray(directions, dtype=np.float64))
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2 or d.shape[1] != inp or not (1 <= d.shape[0] <= out):
        raise InputError(f"directions: got shape {tuple(d.shape)}; need (k, {inp}) with 1 <= k <= {out}")
    q, _ = torch.linalg.qr(d.T)  # orthonormal basis of the span (in, k)
    s = torch.linalg.svdvals(d)
    if not bool(torch.all(torch.isfinite(s))) or s[-1] <= 1e-10 * s[0]:
        raise InputError("directions: must be finite and linearly independent")
    norm = _check_norm(norm, (out, inp))
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    u = _frame(out, q.shape[1], g, torch.float64)
    return ((norm / math.sqrt(q.shape[1])) * (u @ q.T)).to(dtype)


def task_directions(x: np.ndarray, y: np.ndarray, rank: int) -> np.ndarray:
    """(rank, d) orthonormal rows spanning the estimated task subspace: the top-``rank`` left
    singular vectors of [b, M] with b = (1/n)Σ(y_i − ȳ)(x_i − x̄) (first-order Stein direction)
    and M = (1/n)Σ(y_i − ȳ)(x_i − x̄)(x_i − x̄)ᵀ (principal Hessian directions, Li 1992 eq. 2.2),
    each scaled to unit Frobenius norm so neither order dominates by units alone."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise InputError(f"x, y: got shapes {x.shape}, {y.shape}; need (n, d) and (n,) with n >= 2")
    if not (isinstance(rank, int) and 1 <= rank <= x.shape[1]):
        raise InputError(f"rank: got {rank!r}; must be an integer in [1, d = {x.shape[1]}]")
    xc = x - x.mean(0)
    r = y - y.mean()
    b = xc.T @ r / len(r)
    m = (xc * r[:, None]).T @ xc / len(r)
    parts = [p / max(np.linalg.norm(p), 1e-300) for p in (b[:, None], m)]
    u, _, _ = np.linalg.svd(np.hstack(parts), full_matrices=False)
    return u[:, :rank].T.copy()


def effective_rank(w: np.ndarray | torch.Tensor) -> float:
    """exp(−Σ p_i log p_i), p_i = σ_i/Σσ_j over the singular values σ of ``w`` (Roy & Vetterli
    2007, Def. 1): r for r equal nonzero singular values, between 1 and rank(w) otherwise."""
    s = np.linalg.svd(np.asarray(torch.as_tensor(w).detach().double()), compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def subspace_alignment(w: np.ndarray | torch.Tensor, directions: np.ndarray) -> float:
    """‖W P‖_F / ‖W‖_F with P the orthogonal projector onto span(``directions`` rows): 1 when the
    row space of W lies in the subspace, ≈ √(k/d) for a random W and a k-dimensional subspace."""
    w = np.asarray(torch.as_tensor(w).detach().double())
    q, _ = np.linalg.qr(np.atleast_2d(np.asarray(directions, dtype=np.float64)).T)
    return float(np.linalg.norm(w @ q) / np.linalg.norm(w))
