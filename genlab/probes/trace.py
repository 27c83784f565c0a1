"""Trace of the loss Hessian (or Gauss-Newton matrix) by randomized estimators: Hutchinson and Hutch++.

- Hutchinson (1989, "A stochastic estimator of the trace of the influence matrix for Laplacian
  smoothing splines", Commun. Stat. Simul. Comput. 18(3)): tr(H) ≈ (1/m) Σ_i z_iᵀ H z_i with
  Rademacher z_i; unbiased, variance 2(‖H‖_F² − Σ_i H_ii²)/m.
- Hutch++ (Meyer, Musco, Musco & Woodruff 2021, "Hutch++: optimal stochastic trace estimation",
  SOSA, arXiv 2010.09649, Algorithm 1): with m products, sketch Q = orth(H S) from m/3 random
  vectors, take tr(QᵀHQ) exactly (m/3 products) and apply Hutchinson to the deflated
  (I − QQᵀ) H (I − QQᵀ) with the last m/3: error O(1/m) instead of O(1/√m) for matrices whose
  spectrum decays, as Hessians' does.

- XTrace (Epperly, Tropp & Webber 2024, "XTrace: making the most of every sample in stochastic
  trace estimation", SIAM J. Matrix Anal. Appl. 45(1), arXiv 2301.07825, §2): with m products,
  s = m/2 test vectors Ω, Y = AΩ = QR and Z = AQ; for each i the basis Q₍ᵢ₎ of the sketch without
  column i gives the unbiased Hutch++-type estimate tr(Q₍ᵢ₎ᵀAQ₍ᵢ₎) + ωᵢᵀ(I − Q₍ᵢ₎Q₍ᵢ₎ᵀ)A(I − Q₍ᵢ₎Q₍ᵢ₎ᵀ)ωᵢ
  (ωᵢ is independent of Q₍ᵢ₎), and XTrace averages the s of them: every vector serves both the
  sketch and the residual. Q₍ᵢ₎Q₍ᵢ₎ᵀ = Q(I − sᵢsᵢᵀ)Qᵀ with sᵢ the normalized i-th column of R⁻ᵀ,
  so all s estimates cost s × s algebra after the 2s products (derived here; the paper's
  sphere-normalized test vectors are not used: Rademacher vectors, as for Hutch++).
- XDiag (same paper, §5): diag(A) ≈ mean_i [diag(Q₍ᵢ₎Q₍ᵢ₎ᵀA) + ωᵢ ⊙ (I − Q₍ᵢ₎Q₍ᵢ₎ᵀ)Aωᵢ], the
  diagonal estimator of Bekas, Kokiopoulou & Saad (2007, "An estimator for the diagonal of a
  matrix", Appl. Numer. Math. 57(11)) on the deflated matrix; unbiased for Rademacher ωᵢ. Here
  (I − Q₍ᵢ₎Q₍ᵢ₎ᵀ)Aωᵢ = Qsᵢ (sᵢᵀrᵢ) needs no further product.

Standard errors: for Hutchinson, sample standard deviations of the terms over √(number of terms);
for Hutch++ the error of the deflated part given the sketch (the low-rank part is exact); for
XTrace/XDiag the error estimate of Epperly et al. (§2.2): the standard deviation of the s
leave-one-out estimates over √s (they share vectors, so it is an estimate, not an exact
standard error; its calibration is tested against dense matrices in tests/test_xtrace.py).
If the sketch Y has numerical rank r < s (a matrix of rank r), range(Y) = range(A) and the trace
and diagonal are exact from the sketch: stderr 0.
Same data conventions, dtype and mode as :mod:`genlab.probes.curvature`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch

from genlab.errors import InputError
from genlab.probes._functional import Data, LossFn
from genlab.probes._operators import Curvature, CurvatureOperator, Symmetry, curvature_call
from genlab.probes._setup import ProbeInfo
from genlab.probes.blocks import ParamSpec, on_blocks

Method = Literal["hutch++", "hutchinson", "xtrace"]
METHODS = ("hutch++", "hutchinson", "xtrace")
DiagMethod = Literal["xdiag", "hutchinson"]


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


MatMat = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class _Sketch:
    """The exchangeable sketch of XTrace/XDiag: Ω (n × s), Y = AΩ = QR, Z = AQ, the leave-one-out
    directions S (s × s, columns sᵢ), in float64; ``rank`` < s when Y is numerically rank deficient."""

    omega: torch.Tensor
    q: torch.Tensor
    r: torch.Tensor
    z: torch.Tensor
    s: torch.Tensor
    rank: int


def _sketch(matmat: MatMat, n: int, num: int, g: torch.Generator, dtype: torch.dtype) -> _Sketch:
    num = min(num, n)  # more vectors than dimensions add nothing
    omega = _rademacher(n, num, g, dtype)
    y = matmat(omega).double()
    q, r = torch.linalg.qr(y)
    z = matmat(q.to(dtype)).double()
    sv = torch.linalg.svdvals(r)
    # numerical rank of Y: singular values above the rounding of the products (1e3·eps of their dtype)
    rank = int((sv > 1e3 * torch.finfo(dtype).eps * sv[0]).sum()) if float(sv[0]) > 0 else 0
    if rank < num:
        return _Sketch(omega.double(), q, r, z, torch.empty(0), rank)
    r_inv = torch.linalg.solve_triangular(r, torch.eye(num, dtype=r.dtype), upper=True)
    s_dirs = r_inv.T / torch.linalg.vector_norm(r_inv.T, dim=0, keepdim=True)  # columns: sᵢ ∝ R⁻ᵀeᵢ
    return _Sketch(omega.double(), q, r, z, s_dirs, rank)


def _low_rank_exact(sk: _Sketch) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q_r, A Q_r) for the r-dimensional range of a rank-deficient sketch (= the range of A)."""
    u, _, _ = torch.linalg.svd(sk.r)
    return sk.q @ u[:, : sk.rank], sk.z @ u[:, : sk.rank]


def xtrace_estimates(sk: _Sketch) -> np.ndarray:
    """The s leave-one-out estimates tr(Q₍ᵢ₎ᵀAQ₍ᵢ₎) + ωᵢᵀ(I − Q₍ᵢ₎Q₍ᵢ₎ᵀ)A(I − Q₍ᵢ₎Q₍ᵢ₎ᵀ)ωᵢ, by s × s algebra.

    With uᵢ = ωᵢ − Qwᵢ + cᵢQsᵢ (wᵢ = Qᵀωᵢ, cᵢ = sᵢᵀwᵢ), Auᵢ = Qrᵢ − Zwᵢ + cᵢZsᵢ, H = QᵀZ, tᵢ = Zᵀωᵢ:
    uᵢᵀAuᵢ = −tᵢᵀwᵢ + cᵢtᵢᵀsᵢ + wᵢᵀHwᵢ − cᵢ(wᵢᵀHsᵢ + sᵢᵀHwᵢ) + cᵢsᵢᵀrᵢ + cᵢ²sᵢᵀHsᵢ."""
    if sk.rank < sk.r.shape[0]:
        q_r, z_r = _low_rank_exact(sk)
        return np.array([float(torch.sum(q_r * z_r))])
    q, r, z, s_, om = sk.q, sk.r, sk.z, sk.s, sk.omega
    w, h, t = q.T @ om, q.T @ z, z.T @ om
    hs, hw = h @ s_, h @ w
    c = (s_ * w).sum(0)
    low = torch.trace(h) - (s_ * hs).sum(0)
    quad = (-(t * w).sum(0) + c * (t * s_).sum(0) + (w * hw).sum(0) - c * ((w * hs).sum(0) + (s_ * hw).sum(0))
            + c * (s_ * r).sum(0) + c**2 * (s_ * hs).sum(0))
    return (low + quad).cpu().numpy()


def xdiag_estimates(sk: _Sketch) -> torch.Tensor:
    """The s leave-one-out diagonal estimates (n × s): diag(Q₍ᵢ₎Q₍ᵢ₎ᵀA) + ωᵢ ⊙ Qsᵢ(sᵢᵀrᵢ), A symmetric
    (QᵀA = Zᵀ, so diag(Q(I − sᵢsᵢᵀ)QᵀA) = rowsum(Q ⊙ Z) − Qsᵢ ⊙ Zsᵢ)."""
    if sk.rank < sk.r.shape[0]:
        q_r, z_r = _low_rank_exact(sk)
        h_r = q_r.T @ z_r
        return ((q_r @ h_r) * q_r).sum(1, keepdim=True)  # diag(Q_r H_r Q_rᵀ): A = P A P
    qs, zs = sk.q @ sk.s, sk.z @ sk.s
    d = (sk.s * sk.r).sum(0)
    return (sk.q * sk.z).sum(1, keepdim=True) - qs * zs + sk.omega * qs * d


def _loo_stderr(samples: np.ndarray | torch.Tensor):
    """Std of the leave-one-out estimates over √s (0 for an exact, single estimate)."""
    m = samples.shape[-1]
    if m < 2:
        return 0.0 if isinstance(samples, np.ndarray) else torch.zeros(samples.shape[:-1], dtype=samples.dtype)
    return samples.std(-1, ddof=1) / np.sqrt(m) if isinstance(samples, np.ndarray) else samples.std(-1) / np.sqrt(m)


def operator_trace(
    op: CurvatureOperator,
    method: Method = "hutch++",
    num_matvecs: int = 99,
    target_stderr: float | None = None,
    min_samples: int = 10,
    seed: int = 0,
    block: int = 1,
) -> TraceResult:
    """:func:`hessian_trace` on an existing operator (see there); ``block``: columns per batched
    product (:meth:`CurvatureOperator.matmat`)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    least = {"hutchinson": 2, "hutch++": 3, "xtrace": 4}[method]
    if num_matvecs < least:
        raise ValueError(f"num_matvecs must be >= {least} for {method}, got {num_matvecs}")
    g = torch.Generator().manual_seed(int(seed))
    n = op.size
    before = op.matvecs
    if method == "xtrace":
        sk = _sketch(lambda v: op.matmat(v, block=block), n, num_matvecs // 2, g, op.dtype)
        ests = xtrace_estimates(sk)
        return TraceResult(float(ests.mean()), float(_loo_stderr(ests)), op.matvecs - before, method, ests.tolist())
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
    q, _ = torch.linalg.qr(op.matmat(s, block=block))
    low_rank = float(torch.sum(q * op.matmat(q, block=block)))
    rest = num_matvecs - 2 * third
    gmat = _rademacher(n, rest, g, op.dtype)
    gmat = gmat - q @ (q.T @ gmat)
    samples_t = torch.sum(gmat * op.matmat(gmat, block=block), dim=0)
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
    (sketch, exact low-rank part, Hutchinson on the rest); ``"xtrace"`` (Epperly et al. 2024)
    uses num_matvecs // 2 vectors for both sketch and residual (lower error at equal products on
    decaying spectra; stderr is its leave-one-out error estimate); ``"hutchinson"`` uses Rademacher probes
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


@dataclass
class DiagonalResult:
    """Estimate of diag(H) (flat, in parameter order), its per-entry standard error, the products used."""

    diagonal: torch.Tensor
    stderr: torch.Tensor
    hvps: int
    method: str
    names: list[str] | None = None
    shapes: list[torch.Size] | None = None
    info: ProbeInfo | None = None

    def by_parameter(self) -> dict[str, torch.Tensor]:
        """The diagonal split by parameter, each reshaped like it (names of ``model.named_parameters``)."""
        if self.names is None or self.shapes is None:
            raise ValueError("by_parameter: this result has no parameter layout (computed on a bare operator)")
        parts = torch.split(self.diagonal, [int(np.prod(s)) for s in self.shapes])
        return {n: p.reshape(s) for n, p, s in zip(self.names, parts, self.shapes)}

    def scalars(self) -> dict[str, float]:
        d = self.diagonal
        return {"diag_mean": float(d.mean()), "diag_max": float(d.max()), "diag_min": float(d.min()),
                "diag_se_mean": float(self.stderr.mean()), "hvps": float(self.hvps)}


def operator_diagonal(op: CurvatureOperator, method: DiagMethod = "xdiag", num_matvecs: int = 100, seed: int = 0,
                      block: int = 1) -> DiagonalResult:
    """:func:`hessian_diagonal` on an existing operator (see there)."""
    if method not in ("xdiag", "hutchinson"):
        raise ValueError(f"method must be 'xdiag' or 'hutchinson', got {method!r}")
    least = 4 if method == "xdiag" else 2
    if num_matvecs < least:
        raise ValueError(f"num_matvecs must be >= {least} for {method}, got {num_matvecs}")
    g = torch.Generator().manual_seed(int(seed))
    before = op.matvecs
    if method == "xdiag":
        ests = xdiag_estimates(_sketch(lambda v: op.matmat(v, block=block), op.size, num_matvecs // 2, g, op.dtype))
    else:  # Bekas, Kokiopoulou & Saad 2007: ω ⊙ Aω with Rademacher ω
        omega = _rademacher(op.size, num_matvecs, g, op.dtype)
        ests = (omega * op.matmat(omega, block=block)).double()
    return DiagonalResult(ests.mean(1).to(op.dtype), _loo_stderr(ests).to(op.dtype), op.matvecs - before, method)


def hessian_diagonal(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    method: DiagMethod = "xdiag",
    num_matvecs: int = 100,
    curvature: Curvature = "hessian",
    seed: int = 0,
    *,
    mode: str = "eval",
    output_fn=None,
    batch_size_fn=None,
    symmetry: Symmetry = "raise",
) -> DiagonalResult:
    """diag(∇²L(θ)) (``curvature="ggn"``: of the Gauss-Newton matrix) with ``num_matvecs`` products.

    ``method="xdiag"`` (default; Epperly, Tropp & Webber 2024, §5) deflates a low-rank sketch
    of num_matvecs // 2 vectors and estimates the rest's diagonal from the same vectors;
    ``"hutchinson"`` averages ω ⊙ Hω over Rademacher ω (Bekas, Kokiopoulou & Saad 2007). Per-entry
    standard errors as in the module docstring. ``by_parameter()`` splits the diagonal by
    parameter. Mode, layouts and the symmetry check as in :mod:`genlab.probes.curvature`.
    """
    if method not in ("xdiag", "hutchinson"):
        raise InputError(f"method: got {method!r}; allowed: 'xdiag', 'hutchinson'")
    if not (isinstance(num_matvecs, int) and num_matvecs >= (4 if method == "xdiag" else 2)):
        raise InputError(f"num_matvecs: got {num_matvecs!r}; must be an integer >= {4 if method == 'xdiag' else 2}")
    with curvature_call(model, loss_fn, data, curvature, mode=mode, seed=seed, output_fn=output_fn,
                        batch_size_fn=batch_size_fn, symmetry=symmetry) as (op, info):
        r = operator_diagonal(op, method, num_matvecs, seed)
        r.names, r.shapes = list(op.fm.names), list(op.fm.shapes)
    r.info = info
    return r
