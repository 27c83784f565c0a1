"""What single units have learned: Fourier concentration of neurons on a group-arithmetic task,
and clustering of convolution filters around the data's patterns.

- Fourier concentration (for grokking on Z_{m₁}×…×Z_{m_k}; Tian 2025, arXiv 2509.21519, §5: the
  features that emerge are irreducible representations, i.e. single Fourier frequencies on an
  abelian group; Nanda et al. 2023, arXiv 2301.05217, observed it for modular addition). A neuron's
  input weights over the M group elements are a function w on the group; its power at frequency
  k is |ŵ(k)|² with ŵ the n-dimensional DFT over ``shape``. Real weights have |ŵ(k)| = |ŵ(−k)|,
  so k and −k are one real frequency. Concentration = (power of the strongest real frequency) /
  (total power without the constant k = 0): 1 for a pure sinusoid, about 2/(M−1) for white noise.
- Filter clustering (Brutzkus & Globerson 2019, arXiv 1810.03037, §5–6: over-parameterized
  networks' filters cluster around the patterns, and every pattern is "explored" by some filter):
  a filter is aligned with a pattern when their cosine similarity is ≥ ``threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genlab.errors import InputError


@dataclass(frozen=True)
class FourierConcentration:
    """Per neuron: ``concentration`` in [0, 1], ``frequency`` (the dominant real frequency as an
    index tuple over ``shape``, the representative with the smaller ravelled index of ±k), and
    ``power`` (units, M) the normalized power spectrum without the constant."""

    concentration: np.ndarray
    frequency: list[tuple[int, ...]]
    power: np.ndarray
    shape: tuple[int, ...]

    def fraction_concentrated(self, level: float = 0.5) -> float:
        """Fraction of neurons whose concentration is ≥ ``level``."""
        return float(np.mean(self.concentration >= level))

    def scalars(self) -> dict[str, float]:
        c = self.concentration
        return {"fourier_concentration_mean": float(c.mean()), "fourier_concentration_median": float(np.median(c)),
                "fourier_concentrated_fraction": self.fraction_concentrated()}


def fourier_concentration(weights: np.ndarray, shape: tuple[int, ...] | int) -> FourierConcentration:
    """Fourier concentration of each row of ``weights`` (units, M), a function on the abelian
    group with cyclic factors ``shape`` (prod(shape) = M; element index = ravelled coordinates)."""
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != int(np.prod(shape)):
        raise InputError(f"weights must be (units, M) with M = prod(shape) = {int(np.prod(shape))}, got {w.shape}")
    M = w.shape[1]
    spec = np.abs(np.fft.fftn(w.reshape(len(w), *shape), axes=tuple(range(1, len(shape) + 1)))) ** 2
    spec = spec.reshape(len(w), M)
    spec[:, 0] = 0.0
    # fold each frequency k onto the representative of {k, −k}
    coords = np.array(np.unravel_index(np.arange(M), shape))
    neg = np.ravel_multi_index(tuple((-coords) % np.array(shape)[:, None]), shape)
    rep = np.minimum(np.arange(M), neg)
    folded = np.zeros_like(spec)
    np.add.at(folded, (slice(None), rep), spec)
    total = folded.sum(1)
    safe = np.where(total > 0, total, 1.0)
    power = folded / safe[:, None]
    best = power.argmax(1)
    conc = np.where(total > 0, power[np.arange(len(w)), best], 0.0)
    freqs = [tuple(int(c) for c in np.unravel_index(int(b), shape)) for b in best]
    return FourierConcentration(conc, freqs, power, shape)


@dataclass(frozen=True)
class FilterClustering:
    """``aligned`` (filters, patterns) bool; ``fraction`` per pattern: the fraction of filters aligned
    with it; ``covered`` per pattern: some filter is aligned; ``cosine`` the similarity matrix."""

    cosine: np.ndarray
    aligned: np.ndarray
    fraction: np.ndarray
    covered: np.ndarray
    threshold: float

    @property
    def all_covered(self) -> bool:
        return bool(self.covered.all())

    def scalars(self) -> dict[str, float]:
        out = {f"filters_aligned_with_pattern_{i}": float(f) for i, f in enumerate(self.fraction)}
        out["patterns_covered"] = float(self.covered.mean())
        out["filters_aligned_any"] = float(self.aligned.any(1).mean())
        return out


def filter_clustering(filters: np.ndarray, patterns: np.ndarray, threshold: float = 0.9) -> FilterClustering:
    """Cosine similarity of each filter (k, dim) with each pattern (m, dim); aligned when ≥
    ``threshold``. Zero filters align with nothing."""
    f = np.asarray(filters, dtype=np.float64)
    p = np.asarray(patterns, dtype=np.float64)
    if f.ndim != 2 or p.ndim != 2 or f.shape[1] != p.shape[1]:
        raise InputError(f"filters (k, dim) and patterns (m, dim) must share dim, got {f.shape} and {p.shape}")
    if not -1.0 <= threshold <= 1.0:
        raise InputError(f"threshold must be a cosine in [-1, 1], got {threshold}")
    fn = np.linalg.norm(f, axis=1, keepdims=True)
    pn = np.linalg.norm(p, axis=1, keepdims=True)
    cos = (f / np.where(fn > 0, fn, 1.0)) @ (p / np.where(pn > 0, pn, 1.0)).T
    aligned = (cos >= threshold) & (fn > 0)
    return FilterClustering(cos, aligned, aligned.mean(0), aligned.any(0), float(threshold))
