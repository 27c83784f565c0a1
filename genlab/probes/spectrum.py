"""Spectral density of the loss Hessian by stochastic Lanczos quadrature (SLQ), with its outliers.

For a unit vector v, m Lanczos steps from v give T_m = S Θ Sᵀ, and the nodes θ_i with weights
τ_i = (e_1ᵀ s_i)² are the m-point Gauss quadrature of the spectral measure of H seen by v:
Σ_i τ_i p(θ_i) = vᵀ p(H) v exactly for polynomials of degree ≤ 2m − 1 (Golub & Meurant 2010,
"Matrices, Moments and Quadrature with Applications", Thm 6.2). Averaging over probe vectors
uniform on the unit sphere gives E vᵀ p(H) v = tr p(H)/N, so the measure (1/n_v) Σ_l Σ_i τ_i^l δ_{θ_i^l}
estimates the empirical spectral density (Lin, Saad & Yang 2016, "Approximating spectral densities
of large matrices", SIAM Review 58(1), §3.2; Ghorbani, Krishnan & Xiao 2019, "An investigation into
neural net optimization via Hessian eigenvalue density", ICML, arXiv 1901.10159, §2); its moments
(1/n_v) Σ τ θ^j are unbiased estimates of tr(H^j)/N for j ≤ 2m − 1. The density shown replaces each
δ by a Gaussian of width σ (Ghorbani et al., eq. 4).

Outliers: a Ritz value whose residual β_m|e_mᵀ s_i| is below ``outlier_tol`` × its distance to the
nearest other Ritz value has converged to an eigenvalue (error ≤ residual²/gap: Parlett 1998, Thm 11.7.1); in m ≪ N steps Lanczos only resolves eigenvalues isolated from the rest (Parlett 1998,
§12), so converged Ritz values above every unconverged one (or below every unconverged one) are
isolated eigenvalues outside the bulk — except the bulk's own extreme eigenvalues, which also
converge; so an outlier must also lie more than ``outlier_gap`` × (width of the unconverged range)
beyond that range. They are merged across probe vectors.
Same data conventions, dtype and mode as :mod:`genlab.probes.curvature`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from genlab.probes._functional import Data, LossFn
from genlab.probes._operators import Curvature, CurvatureOperator, Symmetry, curvature_call
from genlab.probes._setup import ProbeInfo
from genlab.probes.blocks import ParamSpec, on_blocks
from genlab.probes.lanczos import lanczos


@dataclass
class Outlier:
    """An isolated eigenvalue found by SLQ: its value, its residual, how many probes found it."""

    value: float
    residual: float
    probes: int


@dataclass
class SpectrumResult:
    """SLQ quadrature (``nodes``, ``weights``: one row per probe vector), the broadened density on
    ``grid``, the isolated ``outliers`` (descending), the width ``sigma`` and the products used."""

    nodes: list[np.ndarray]
    weights: list[np.ndarray]
    residuals: list[np.ndarray]
    grid: np.ndarray
    density: np.ndarray
    sigma: float
    outliers: list[Outlier]
    bulk: tuple[float, float]
    hvps: int
    size: int
    extra: dict = field(default_factory=dict)
    info: ProbeInfo | None = None

    def moment(self, j: int) -> float:
        """(1/n_v) Σ_l Σ_i τ_i θ_i^j: an unbiased estimate of tr(H^j)/N (exact in expectation for
        j ≤ 2m − 1); of the quadrature, before broadening."""
        return float(np.mean([np.sum(w * t**j) for t, w in zip(self.nodes, self.weights)]))

    def moment_stderr(self, j: int) -> float:
        """Standard error of :meth:`moment` over the probe vectors."""
        vals = np.array([np.sum(w * t**j) for t, w in zip(self.nodes, self.weights)])
        return float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else float("inf")

    def scalars(self) -> dict[str, float]:
        out = {"num_outliers": float(len(self.outliers)), "hvps": float(self.hvps)}
        out["bulk_low"], out["bulk_high"] = self.bulk
        for i, o in enumerate(self.outliers):
            out[f"outlier{i}"] = o.value
        return out


def _merge(values: np.ndarray, residuals: np.ndarray, tol: float) -> list[Outlier]:
    """Group values within their residuals (+ ``tol``): the same eigenvalue found by several probes."""
    order = np.argsort(-values)
    groups: list[list[int]] = []
    for i in order:
        j = groups[-1][-1] if groups else None
        if j is not None and abs(values[j] - values[i]) <= residuals[i] + residuals[j] + tol:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [Outlier(float(np.mean(values[g])), float(np.max(residuals[g])), len(g)) for g in groups]


def operator_spectrum(
    op: CurvatureOperator,
    num_probes: int = 5,
    lanczos_steps: int = 80,
    sigma: float | None = None,
    grid_size: int = 1000,
    outlier_tol: float = 1e-3,
    outlier_gap: float = 0.1,
    seed: int = 0,
) -> SpectrumResult:
    """:func:`hessian_spectrum` on an existing operator (see there)."""
    if num_probes < 1:
        raise ValueError(f"num_probes must be >= 1, got {num_probes}")
    if lanczos_steps < 2:
        raise ValueError(f"lanczos_steps must be >= 2, got {lanczos_steps}")
    g = torch.Generator().manual_seed(int(seed))
    before = op.matvecs
    nodes, weights, residuals = [], [], []
    for _ in range(num_probes):
        v = torch.randn(op.size, generator=g, dtype=torch.float64).to(op.dtype)
        run = lanczos(op.matvec, v, lanczos_steps)
        theta, s = run.ritz()
        nodes.append(theta)
        weights.append(s[0, :] ** 2)
        residuals.append(np.broadcast_to(run.residuals(s), theta.shape).astype(np.float64))
    all_t = np.concatenate(nodes)
    all_r = np.concatenate(residuals)
    lo, hi = float(all_t.min()), float(all_t.max())
    norm = max(abs(lo), abs(hi), 1e-300)
    width = max(hi - lo, 1e-12 * norm, 1e-300)
    if sigma is None:
        sigma = 0.01 * width
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")

    conv = []
    for t, r in zip(nodes, residuals):
        gaps = np.full(t.shape, np.inf)
        if t.size > 1:
            d = np.diff(t)
            gaps[:-1] = d
            gaps[1:] = np.minimum(gaps[1:], d)
        conv.append(r <= outlier_tol * gaps)
    converged = np.concatenate(conv)
    if np.any(~converged):
        b_lo, b_hi = float(all_t[~converged].min()), float(all_t[~converged].max())
    else:  # everything resolved (tiny matrix): no bulk to stand out from
        b_lo, b_hi = lo, hi
    margin = outlier_gap * (b_hi - b_lo)
    iso = converged & ((all_t > b_hi + margin) | (all_t < b_lo - margin))
    outliers = _merge(all_t[iso], all_r[iso], 1e-9 * norm)

    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, grid_size)
    density = np.zeros_like(grid)
    for t, w in zip(nodes, weights):
        density += (w[None, :] * np.exp(-((grid[:, None] - t[None, :]) ** 2) / (2 * sigma**2))).sum(1)
    density /= num_probes * sigma * np.sqrt(2 * np.pi)
    return SpectrumResult(nodes, weights, residuals, grid, density, float(sigma), outliers, (b_lo, b_hi),
                          op.matvecs - before, op.size)


def hessian_spectrum(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    num_probes: int = 5,
    lanczos_steps: int = 80,
    sigma: float | None = None,
    grid_size: int = 1000,
    outlier_tol: float = 1e-3,
    outlier_gap: float = 0.1,
    curvature: Curvature = "hessian",
    seed: int = 0,
    *,
    mode: str = "eval",
    output_fn=None,
    batch_size_fn=None,
    symmetry: Symmetry = "raise",
    params: ParamSpec | None = None,
    per_layer: bool = False,
) -> SpectrumResult:
    """Spectral density of ∇²L(θ) by SLQ: ``num_probes`` Gaussian start vectors, ``lanczos_steps``
    Lanczos steps each (full reorthogonalization), Gaussian broadening of width ``sigma``
    (default 1% of the spectral range seen), on a grid of ``grid_size`` points; isolated
    eigenvalues (converged Ritz values, residual ≤ outlier_tol × distance to the next Ritz value, lying more than
    outlier_gap × the bulk's width beyond the range of the unconverged Ritz values) listed as ``outliers``. Cost: num_probes × lanczos_steps products. Mode, layouts and the symmetry check as in
    :mod:`genlab.probes.curvature`. ``params``/``per_layer``: the density of the diagonal block H_BB
    of a parameter subset, or one per layer (:mod:`genlab.probes.blocks`). Returns :class:`SpectrumResult`.
    """
    with curvature_call(model, loss_fn, data, curvature, mode=mode, seed=seed, output_fn=output_fn,
                        batch_size_fn=batch_size_fn, symmetry=symmetry) as (op, info):
        r = on_blocks(op, op.fm.model, params, per_layer,
                      lambda o: operator_spectrum(o, num_probes, lanczos_steps, sigma, grid_size, outlier_tol, outlier_gap, seed))
    r.info = info
    for one in r.results.values() if per_layer else []:
        one.info = info
    return r
