"""Mutual-information estimators for layer representations, in bits, each with its bias and error bar.

Four estimators of I(A;B) from N paired samples (rows of ``a`` and ``b``):

- :func:`binned_mi` with ``strategy="fixed"``: every continuous coordinate is cut into ``bins``
  equal-width bins over a stated range (Shwartz-Ziv & Tishby 2017, arXiv 1703.00810, Sec. 3.2:
  30 bins over the tanh range), rows become discrete codes and the plug-in MI of the codes is
  returned. When the rows are the *whole* distribution (``population=True``: e.g. all 4096
  patterns of the Shwartz-Ziv–Tishby task, each equally likely) the value is the exact MI of the
  binned variables: no bias, no error.
- :func:`binned_mi` with ``strategy="adaptive"``: equal-mass bins — the bin edges are quantiles
  of the pooled values of all coordinates, so every bin holds about the same number of values
  (Chelombiev, Houghton & O'Donnell 2019, arXiv 1902.09037, Sec. 3: adaptive binning).
- :func:`kde_mi`: I = H(A) + H(B) − H(A,B), each differential entropy by the resubstitution
  estimate −(1/N)Σ log p̂(x_i) with a Gaussian kernel density p̂ (the point itself left out),
  bandwidth by Scott's rule h_k = σ̂_k · N^(−1/(d+4)) per coordinate (Scott 1992, Eq. 6.42).
  A discrete side (labels) is handled as H(T) − Σ_y p(y) H(T | Y=y).
- :func:`noisy_mi`: the noisy-output estimator of Saxe et al. 2018 (arXiv 1711.07876, Sec. 2,
  following Kolchinsky & Tracey 2017, arXiv 1706.02419): a deterministic representation
  T = f(X) of N equally likely inputs is read through T' = T + N(0, σ²I); I(X;T') is the entropy
  of a mixture of N Gaussians minus d/2·log(2πeσ²), bracketed by the pairwise-distance bounds
  −(1/N)Σ_i log (1/N)Σ_j exp(−D(p_i‖p_j)) with D = KL = ‖t_i − t_j‖²/(2σ²) (upper bound) and
  D = Bhattacharyya = ‖t_i − t_j‖²/(8σ²) (lower bound) (Kolchinsky & Tracey, Eqs. 9–10, equal
  covariances). I(T';Y) is H(T') − Σ_y p(y) H(T'|Y=y), each entropy by the same bound.

Bias and error bar (sample estimators): the estimate is recomputed on ``repeats`` random halves
of the rows (drawn without replacement from ``seed``): the delete-half jackknife (Shao & Wu 1989,
Ann. Statist. 17, Thm. 1 with d = N/2). If the bias falls as 1/N — true to first order for plug-in
entropies (Miller 1955) — the half-sample bias is twice the full-sample bias, so
``bias ≈ mean(halves) − estimate``; a half-sample estimate has twice the variance of the full one,
but halves of one sample overlap, which halves their spread again, so ``stderr ≈ std(halves)``.
(The KDE's smoothing bias falls as N^(−2/(d+4)), slower than 1/N: its ``bias`` is only a lower limit.)
The binned estimators also give the Miller–Madow first-order bias of the plug-in MI,
(K_AB − K_A − K_B + 1)/(2N ln 2) bits with K the numbers of occupied cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from genlab.errors import InputError

LOG2 = math.log(2.0)


@dataclass(frozen=True)
class MIResult:
    """An MI estimate in bits with its estimated bias (estimate − truth, to first order) and
    standard error; ``bias``/``stderr`` are 0 for an exact population value, NaN if not computed."""

    value: float
    bias: float
    stderr: float
    method: str
    n: int
    miller_madow: float = float("nan")
    lower: float = float("nan")  # a lower bound where the estimator has one (noisy_mi)

    @property
    def corrected(self) -> float:
        """The estimate with its estimated bias removed."""
        return self.value - self.bias if math.isfinite(self.bias) else self.value

    def scalars(self) -> dict[str, float]:
        return {"mi": self.value, "mi_bias": self.bias, "mi_stderr": self.stderr}


# -- discrete codes -----------------------------------------------------------------------------
def _as_2d(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        a = a.reshape(a.shape[0], -1)
    if a.shape[0] == 0:
        raise InputError(f"{name}: needs at least one row, got 0")
    return a


def codes(a: np.ndarray) -> np.ndarray:
    """Integer code of each row (equal rows, equal codes; codes 0..K−1 for K distinct rows).
    Columns are coded one by one and combined in mixed radix when that fits in int64 (fast),
    else rows are compared whole."""
    a = _as_2d(a, "a")
    cols = [np.unique(a[:, j], return_inverse=True) for j in range(a.shape[1])]
    radix = [len(u) for u, _ in cols]
    if float(np.prod(np.asarray(radix, dtype=float))) < 2.0**62:
        combined = np.zeros(a.shape[0], dtype=np.int64)
        for (u, inv), r in zip(cols, radix):
            combined = combined * r + inv.reshape(-1)
        return np.unique(combined, return_inverse=True)[1].reshape(-1)
    return np.unique(a, axis=0, return_inverse=True)[1].reshape(-1)


def entropy_bits(c: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Plug-in entropy (bits) of integer codes ``c`` (equally weighted unless ``weights``)."""
    w = np.ones(len(c)) if weights is None else np.asarray(weights, dtype=float)
    p = np.bincount(c, weights=w)
    p = p[p > 0] / w.sum()
    return float(-(p * np.log2(p)).sum())


def discrete_mi(ca: np.ndarray, cb: np.ndarray) -> tuple[float, int, int, int]:
    """Plug-in I(A;B) in bits of integer codes and the numbers of occupied cells K_A, K_B, K_AB."""
    ca = np.asarray(ca).reshape(-1)
    cb = np.asarray(cb).reshape(-1)
    joint = ca.astype(np.int64) * (int(cb.max()) + 1) + cb
    cj = np.unique(joint, return_inverse=True)[1]
    ha, hb, hab = entropy_bits(ca), entropy_bits(cb), entropy_bits(cj)
    return ha + hb - hab, len(np.unique(ca)), len(np.unique(cb)), int(cj.max()) + 1


# -- binning --------------------------------------------------------------------------------------
def fixed_bins(t: np.ndarray, bins: int, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Bin index (0..bins−1) of every value: ``bins`` equal-width bins over [lo, hi] (default:
    the data's range); values outside are put in the end bins."""
    t = np.asarray(t, dtype=float)
    lo = float(np.min(t)) if lo is None else float(lo)
    hi = float(np.max(t)) if hi is None else float(hi)
    if not hi > lo:
        return np.zeros(t.shape, dtype=np.int64)
    idx = np.floor((t - lo) / (hi - lo) * bins).astype(np.int64)
    return np.clip(idx, 0, bins - 1)


def adaptive_bins(t: np.ndarray, bins: int) -> np.ndarray:
    """Bin index of every value with equal-mass bins: edges at the quantiles k/bins of all values
    pooled (ties stay in one bin, so a bin may hold more than its share)."""
    t = np.asarray(t, dtype=float)
    edges = np.quantile(t.reshape(-1), np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, t, side="right").astype(np.int64)


def _discretize(a: np.ndarray, discrete: bool, strategy: str, bins: int, value_range) -> np.ndarray:
    a = _as_2d(a, "a")
    if discrete:
        return codes(a)
    if strategy == "fixed":
        lo, hi = (None, None) if value_range is None else value_range
        return codes(fixed_bins(a, bins, lo, hi))
    return codes(adaptive_bins(a, bins))


def _halves(estimate: Callable[[np.ndarray], float], n: int, repeats: int, seed: int, full: float) -> tuple[float, float]:
    """(bias, stderr) of ``estimate`` from ``repeats`` random halves (see the module docstring)."""
    if repeats < 2 or n < 4:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    vals = np.array([estimate(rng.choice(n, n // 2, replace=False)) for _ in range(repeats)])
    return float(vals.mean() - full), float(vals.std(ddof=1))


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_2d(a, "a"), _as_2d(b, "b")
    if a.shape[0] != b.shape[0]:
        raise InputError(f"a and b: need the same number of rows, got {a.shape[0]} and {b.shape[0]}")
    return a, b


def binned_mi(
    a: np.ndarray,
    b: np.ndarray,
    *,
    bins: int = 30,
    strategy: str = "fixed",
    a_range: tuple[float, float] | None = None,
    b_range: tuple[float, float] | None = None,
    a_discrete: bool = False,
    b_discrete: bool = False,
    population: bool = False,
    repeats: int = 20,
    seed: int = 0,
) -> MIResult:
    """I(A;B) in bits by binning each continuous side (``strategy`` "fixed" over ``*_range``, or
    "adaptive" equal-mass) and the plug-in MI of the resulting codes. A ``*_discrete`` side is
    used as is (rows are its values). ``population=True``: the rows are the whole, uniformly
    weighted distribution, so the value is exact for the binned variables (bias and error 0)."""
    if strategy not in ("fixed", "adaptive"):
        raise InputError(f"strategy: allowed 'fixed' or 'adaptive', got {strategy!r}")
    if bins < 1:
        raise InputError(f"bins: must be >= 1, got {bins}")
    a, b = _check_pair(a, b)
    ca = _discretize(a, a_discrete, strategy, bins, a_range)
    cb = _discretize(b, b_discrete, strategy, bins, b_range)
    value, ka, kb, kab = discrete_mi(ca, cb)
    n = a.shape[0]
    method = f"binned-{strategy}({bins})"
    if population:
        return MIResult(value, 0.0, 0.0, method, n)
    mm = (kab - ka - kb + 1) / (2.0 * n * LOG2)

    def on(idx: np.ndarray) -> float:  # bins are re-derived on the half (the estimator applied to it)
        return discrete_mi(
            _discretize(a[idx], a_discrete, strategy, bins, a_range), _discretize(b[idx], b_discrete, strategy, bins, b_range)
        )[0]

    bias, se = _halves(on, n, repeats, seed, value)
    return MIResult(value, bias, se, method, n, miller_madow=mm)


# -- kernel density ---------------------------------------------------------------------------------
def scott_bandwidth(x: np.ndarray) -> np.ndarray:
    """Scott's rule per coordinate: h_k = σ̂_k · N^(−1/(d+4)) (Scott 1992, Eq. 6.42)."""
    n, d = x.shape
    return np.std(x, axis=0, ddof=1) * n ** (-1.0 / (d + 4))


def kde_entropy(x: np.ndarray, bandwidth: np.ndarray | None = None) -> float:
    """Leave-one-out resubstitution estimate of the differential entropy (bits) with a Gaussian
    product kernel of per-coordinate widths ``bandwidth`` (default: Scott's rule)."""
    x = _as_2d(np.asarray(x, dtype=float), "x")
    n, d = x.shape
    if n < 2:
        raise InputError(f"x: the KDE entropy needs at least 2 rows, got {n}")
    h = scott_bandwidth(x) if bandwidth is None else np.asarray(bandwidth, dtype=float).reshape(-1)
    h = np.where(h > 0, h, 1e-12)
    z = x / h
    sq = (z**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    logk = -0.5 * d2
    np.fill_diagonal(logk, -np.inf)
    m = logk.max(1, keepdims=True)
    lse = (m + np.log(np.exp(logk - m).sum(1, keepdims=True))).reshape(-1)
    log_norm = -0.5 * d * math.log(2 * math.pi) - np.log(h).sum() - math.log(n - 1)
    return float(-(lse + log_norm).mean() / LOG2)


def kde_mi(
    a: np.ndarray,
    b: np.ndarray,
    *,
    b_discrete: bool = False,
    repeats: int = 20,
    seed: int = 0,
) -> MIResult:
    """I(A;B) in bits by Gaussian-kernel density estimates with Scott's bandwidth (computed on
    each sample the entropy is taken of): H(A)+H(B)−H(A,B), or H(A) − Σ_y p(y) H(A|Y=y) for a
    discrete ``b``."""
    a, b = _check_pair(np.asarray(a, dtype=float), b)

    def est(idx: np.ndarray) -> float:
        aa, bb = a[idx], b[idx]
        if b_discrete:
            cb = codes(bb)
            h_cond = 0.0
            for c in np.unique(cb):
                sel = cb == c
                if sel.sum() >= 2:
                    h_cond += sel.mean() * kde_entropy(aa[sel])
            return kde_entropy(aa) - h_cond
        return kde_entropy(aa) + kde_entropy(bb) - kde_entropy(np.hstack([aa, bb]))

    n = a.shape[0]
    value = est(np.arange(n))
    bias, se = _halves(est, n, repeats, seed, value)
    return MIResult(value, bias, se, "kde-scott", n)


# -- noisy output (Saxe et al. 2018) ------------------------------------------------------------------
def _pairwise_entropy_terms(t: np.ndarray, noise_var: float, scale: float) -> float:
    """−(1/N)Σ_i log2 (1/N)Σ_j exp(−‖t_i − t_j‖²/(scale·σ²))."""
    sq = (t**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * t @ t.T, 0.0)
    logk = -d2 / (scale * noise_var)
    m = logk.max(1, keepdims=True)
    lse = (m + np.log(np.exp(logk - m).mean(1, keepdims=True))).reshape(-1)
    return float(-lse.mean() / LOG2)


def noisy_mi(
    t: np.ndarray,
    y: np.ndarray | None = None,
    *,
    noise_var: float = 0.1,
    bound: str = "upper",
) -> MIResult:
    """I(X;T') (``y`` None) or I(T';Y) in bits for T' = T + N(0, σ²I), σ² = ``noise_var``, the rows
    of ``t`` being the representations of N equally likely inputs (Saxe et al. 2018, Sec. 2; the
    pairwise bounds of Kolchinsky & Tracey 2017). ``value`` is the ``bound`` ("upper": KL, the one
    Saxe et al. plot; "lower": Bhattacharyya); ``lower`` always holds the lower bound. The inputs
    are the population, so there is no sampling error: ``stderr`` 0; ``bias`` is the width of the
    bracket (upper − lower), an upper limit on the error of either bound."""
    if not noise_var > 0:
        raise InputError(f"noise_var: must be > 0, got {noise_var}")
    if bound not in ("upper", "lower"):
        raise InputError(f"bound: allowed 'upper' or 'lower', got {bound!r}")
    t = _as_2d(np.asarray(t, dtype=float), "t")

    def mi(scale: float) -> float:
        h = _pairwise_entropy_terms(t, noise_var, scale)
        if y is None:
            return h
        cy = codes(_check_pair(t, y)[1])
        cond = sum((cy == c).mean() * _pairwise_entropy_terms(t[cy == c], noise_var, scale) for c in np.unique(cy))
        return h - cond

    up, lo = mi(2.0), mi(8.0)
    value = up if bound == "upper" else lo
    return MIResult(value, up - lo, 0.0, f"noisy-{bound}(σ²={noise_var:g})", t.shape[0], lower=lo)


__all__ = [
    "MIResult",
    "binned_mi",
    "kde_mi",
    "noisy_mi",
    "kde_entropy",
    "scott_bandwidth",
    "fixed_bins",
    "adaptive_bins",
    "discrete_mi",
    "entropy_bits",
    "codes",
]
