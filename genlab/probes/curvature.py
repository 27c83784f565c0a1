"""Extreme eigenvalues of the loss Hessian (or Gauss-Newton matrix) by Lanczos, and batch sharpness.

Sharpness, the top eigenvalue λ_max(∇²L(θ)), is the quantity of minima stability (GD with step η
can only stay at minima with λ_max ≤ 2/η) and of the edge of stability (Cohen, Kaur, Li, Kolter &
Talwalkar 2021, arXiv 2103.00065, who compute it by Lanczos on Hessian-vector products).

Conventions of every probe: ``loss_fn(output, target)`` returns the mean loss; ``data`` is
``(inputs, targets)`` or an iterable of such pairs, and the curvature is that of the mean loss over
all of it, accumulated chunk by chunk (any layout of :mod:`genlab.probes._setup`: tuple or mapping
inputs, ``output_fn`` for tuple outputs, DataLoaders read once); computations run in the model's
dtype; the model is unchanged afterwards (parameters, buffers, modes, ``.grad``, hooks).

Mode (argument ``mode``): ``"eval"`` (default) — the curvature of the inference function;
``"train"`` — of the training loss: dropout masks drawn once from ``seed`` per batch and held
fixed for every Hessian-vector product of the call (one fixed matrix, on which Lanczos converges),
BatchNorm on each batch's statistics (running statistics updated only on copies); ``"as-is"`` —
the modules' own flags. Attention runs on the math kernel (twice differentiable). Each call checks
the operator's symmetry on a random pair (``symmetry="raise"``/``"warn"``/``"off"``).
Results carry ``info`` (:class:`~genlab.probes._setup.ProbeInfo`: mode, dtype, device, examples).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from genlab.errors import InputError
from genlab.probes._functional import Data, LossFn
from genlab.probes._operators import Curvature, CurvatureOperator, Symmetry, curvature_call
from genlab.probes._setup import ProbeInfo, take
from genlab.probes.blocks import BlockOperator, ParamSpec, on_blocks, select_parameters
from genlab.probes.lanczos import WHICH, Which, _wanted, certified, lanczos


@dataclass
class EigenResult:
    """Extreme eigenvalues of a curvature matrix.

    ``eigenvalues`` descending; ``eigenvectors`` (k × P, unit rows, same order) if asked for;
    ``residuals`` ‖H u − λ u‖ of each pair; ``hvps`` the number of matrix-vector products;
    ``converged``: every returned value θ_i is within tol·|θ_i| of an eigenvalue (its residual;
    floored at eps^(2/3)·|θ|_max), so is the next Ritz value inward, and no other Ritz value's
    residual interval reaches past the k-th returned one (:func:`genlab.probes.lanczos.certified`):
    the values are the top k as far as the Krylov space seen can tell. An eigenvalue whose
    eigenvector the Krylov space has (numerically) not reached yet cannot be excluded by any
    residual test."""

    eigenvalues: np.ndarray
    residuals: np.ndarray
    hvps: int
    iterations: int
    converged: bool
    eigenvectors: torch.Tensor | None = None
    ritz_vector: torch.Tensor | None = field(default=None, repr=False)  # top vector, for warm starts
    info: ProbeInfo | None = None

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
        raise InputError(f"k: got {k!r}; must be an integer >= 1")
    if not (tol > 0):
        raise InputError(f"tol: got {tol!r}; must be > 0")
    if max_iter is not None and max_iter < 1:
        raise InputError(f"max_iter: got {max_iter!r}; must be >= 1")


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
        raise InputError(f"which: got {which!r}; allowed: {WHICH}")
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
    converged = certified(theta, res, k, which, tol, float(torch.finfo(op.dtype).eps))
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
    *,
    mode: str = "eval",
    output_fn: Any = None,
    batch_size_fn: Any = None,
    symmetry: Symmetry = "raise",
    params: ParamSpec | None = None,
    per_layer: bool = False,
) -> EigenResult:
    """The ``k`` extreme eigenvalues of ∇²L(θ) (``curvature="ggn"``: of the Gauss-Newton matrix)
    by Lanczos with full reorthogonalization.

    Args:
        which: ``"largest"`` (algebraically), ``"smallest"``, ``"both"`` (k of each end) or
            ``"magnitude"`` (largest |λ|).
        tol: stop when every wanted Ritz pair and the next one inward have ‖H u − θ u‖ ≤ tol·|θ|
            (floored at eps^(2/3)·|θ|_max) and no other Ritz value's residual interval reaches
            past the k-th; each value is then within tol·|θ| of an eigenvalue, and within
            (tol·|θ|)²/gap for an isolated one (Parlett 1998, Thms 4.5.1 and 11.7.1). See
            ``EigenResult.converged``.
        max_iter: cap on Lanczos steps = Hessian-vector products (default max(20k, 100), at most P).
        seed / v0: the random start vector (Gaussian, from ``seed``) or a given one (a warm start,
            e.g. the previous ``ritz_vector``).

        mode, output_fn, batch_size_fn, symmetry: see the module docstring.
        params, per_layer: the diagonal block H_BB of a parameter subset, or one result per layer
            (a :class:`~genlab.probes.blocks.PerBlock`); see :mod:`genlab.probes.blocks`.

    A single start vector finds one copy of a repeated eigenvalue. Returns :class:`EigenResult`.
    """
    _check_common(k, tol, max_iter)
    with curvature_call(model, loss_fn, data, curvature, mode=mode, seed=seed, output_fn=output_fn,
                        batch_size_fn=batch_size_fn, symmetry=symmetry) as (op, info):
        r = on_blocks(op, op.fm.model, params, per_layer,
                      lambda o: operator_eigenvalues(o, k, which, tol, max_iter, return_eigenvectors, seed, v0))
    r.info = info
    for one in r.results.values() if per_layer else [r]:
        one.info = info
        if any("not symmetric" in n for n in info.notes):
            one.converged = False  # (symmetry="warn") Lanczos' residuals mean nothing for a non-symmetric operator
    return r


def hessian_top_eigenvalue(model: torch.nn.Module, loss_fn: LossFn, data: Data, **kwargs: Any) -> float:
    """λ_max(∇²L(θ)) (the sharpness) by :func:`hessian_eigenvalues`."""
    return hessian_eigenvalues(model, loss_fn, data, k=1, which="largest", **kwargs).top


@dataclass
class MinibatchSharpness:
    """Mean (and standard error) of the top eigenvalue of minibatch Hessians, and the full-batch one."""

    batch_size: int
    mean: float
    stderr: float
    values: list[float]
    full_batch: float
    hvps: int
    batches: list[list[int]]  # the example indices of each minibatch
    info: ProbeInfo | None = None

    def scalars(self) -> dict[str, float]:
        return {
            "minibatch_sharpness": self.mean,
            "minibatch_sharpness_se": self.stderr,
            "full_batch_sharpness": self.full_batch,
            "hvps": float(self.hvps),
        }


def minibatch_sharpness(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    batch_size: int,
    num_batches: int = 10,
    tol: float = 1e-5,
    max_iter: int | None = None,
    curvature: Curvature = "hessian",
    seed: int = 0,
    *,
    mode: str = "eval",
    output_fn: Any = None,
    batch_size_fn: Any = None,
    symmetry: Symmetry = "raise",
    params: ParamSpec | None = None,
) -> MinibatchSharpness:
    """E_B[λ_max(∇²L_B(θ))] over ``num_batches`` minibatches B of ``batch_size`` examples drawn
    without replacement (from ``seed``), beside λ_max(∇²L(θ)) of the full batch.

    By convexity of λ_max, E_B λ_max(H_B) ≥ λ_max(E_B H_B) = λ_max(H): minibatch sharpness is at
    least the full-batch one (the quantity that SGD's stability is about: Wu, Ma & E 2018,
    "How SGD selects the global minima in over-parameterized learning", NeurIPS; Jastrzębski et al.
    2020, arXiv 2002.09572). Same conventions and mode as :func:`hessian_eigenvalues`; all of
    ``data`` is pooled first (the minibatches are drawn from every example). ``params``: of the
    diagonal block of a parameter subset (:mod:`genlab.probes.blocks`).

    Not Andreyev & Beneventano's Batch Sharpness E_B[g_Bᵀ H_B g_B/‖g_B‖²] (arXiv 2412.20553), which
    is :func:`genlab.probes.directional.directional_sharpness` averaged over minibatches (the
    Monitor's ``batch_sharpness`` series) and is at most this quantity.
    """
    if num_batches < 1:
        raise InputError(f"num_batches: got {num_batches}; must be >= 1")
    with curvature_call(model, loss_fn, data, curvature, mode=mode, seed=seed, output_fn=output_fn,
                        batch_size_fn=batch_size_fn, symmetry=symmetry) as (full_op, info):
        n = full_op.data.n
        if not (isinstance(batch_size, int) and 1 <= batch_size <= n):
            raise InputError(f"batch_size: got {batch_size!r}; must be an integer in [1, {n}] (the number of examples)")
        x, y = full_op.data.whole()
        block = None if params is None else select_parameters(full_op.fm.model, params)
        restrict = (lambda o: o) if block is None else (lambda o: BlockOperator(o, block))  # noqa: E731
        g = torch.Generator().manual_seed(int(seed))
        values: list[float] = []
        drawn: list[list[int]] = []
        hvps = 0
        for b in range(num_batches):
            idx = torch.randperm(n, generator=g)[:batch_size]
            drawn.append(idx.tolist())
            op = CurvatureOperator(full_op.fm.model, loss_fn, (take(x, idx), take(y, idx)), curvature, seed=seed + b,
                                   output_fn=output_fn, random=full_op.random)
            r = operator_eigenvalues(restrict(op), 1, "largest", tol, max_iter, seed=seed + b)
            values.append(r.top)
            hvps += r.hvps
        full = operator_eigenvalues(restrict(full_op), 1, "largest", tol, max_iter, seed=seed)
    arr = np.asarray(values)
    se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return MinibatchSharpness(batch_size, float(arr.mean()), se, values, full.top, hvps + full.hvps, drawn, info)


#: the former name of :class:`MinibatchSharpness`
BatchSharpness = MinibatchSharpness


def batch_sharpness(*args: Any, **kwargs: Any) -> MinibatchSharpness:
    """Deprecated name of :func:`minibatch_sharpness` (E_B λ_max(H_B)); it was renamed because
    "Batch Sharpness" is Andreyev & Beneventano's E_B[gᵀHg/‖g‖²] (arXiv 2412.20553), which the
    Monitor reports as ``batch_sharpness``."""
    import warnings

    warnings.warn("batch_sharpness is renamed minibatch_sharpness (E_B λ_max(H_B)); Andreyev & Beneventano's Batch "
                  "Sharpness E_B[gᵀHg/‖g‖²] is the Monitor's batch_sharpness series (genlab.probes.directional)",
                  DeprecationWarning, stacklevel=2)
    return minibatch_sharpness(*args, **kwargs)
