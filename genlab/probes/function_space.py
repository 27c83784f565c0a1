"""Function-space measurements of a two-layer univariate ReLU network, exact for that model.

For f(x) = Σ_k v_k·relu(w_k x + b_k) + c, neuron k (w_k ≠ 0) has its knot at t_k = −b_k/w_k,
where f' jumps by v_k·|w_k|; so f'' = Σ_k v_k|w_k|·δ(x − t_k) and ∫|f''| and the weighted
variation ∫|f''|g (Mulayoff, Michaeli & Soudry 2021, eq. 21) are finite sums over the knots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genlab.theory.stability import stability_weight


@dataclass(frozen=True)
class Knots:
    """Knot positions (ascending) and the signed jump of f' at each."""

    positions: np.ndarray
    jumps: np.ndarray

    def merged(self, tol: float) -> "Knots":
        """Knots closer than ``tol`` merged into one (jumps added, position jump-weighted)."""
        if self.positions.size == 0:
            return self
        groups: list[list[int]] = [[0]]
        for i in range(1, self.positions.size):
            if self.positions[i] - self.positions[groups[-1][-1]] <= tol:
                groups[-1].append(i)
            else:
                groups.append([i])
        pos, jmp = [], []
        for g in groups:
            w = np.abs(self.jumps[g])
            pos.append(float(np.average(self.positions[g], weights=w)) if w.sum() > 0 else float(self.positions[g].mean()))
            jmp.append(float(self.jumps[g].sum()))
        return Knots(np.asarray(pos), np.asarray(jmp))

    def within(self, lo: float, hi: float) -> "Knots":
        keep = (self.positions >= lo) & (self.positions <= hi)
        return Knots(self.positions[keep], self.jumps[keep])


def relu1d_knots(model: torch.nn.Module) -> Knots:
    """Knots −b_k/w_k and slope jumps v_k·|w_k| of a :class:`~genlab.models.TwoLayerReLU1D`
    (neurons with w_k = 0 are constant in x and have no knot)."""
    w = model.w.detach().double().numpy()
    b = model.b.detach().double().numpy()
    v = model.v.detach().double().numpy()
    live = w != 0
    pos = -b[live] / w[live]
    jumps = v[live] * np.abs(w[live])
    order = np.argsort(pos)
    return Knots(pos[order], jumps[order])


def slope_total_variation(knots: Knots, lo: float, hi: float) -> float:
    """∫_[lo, hi] |f''(x)| dx = Σ over knots in [lo, hi] of |jump| (after merging coincident knots)."""
    k = knots.merged(1e-12 * max(hi - lo, 1.0)).within(lo, hi)
    return float(np.abs(k.jumps).sum())


def weighted_total_variation(knots: Knots, x_train: np.ndarray) -> float:
    """∫|f''(x)| g(x) dx = Σ_knots |jump|·g(knot), g from :func:`genlab.theory.stability_weight`
    (Mulayoff et al. 2021, eqs. 21–23). g vanishes outside the data range."""
    xs = np.asarray(x_train, dtype=float)
    k = knots.merged(1e-12 * max(float(xs.max() - xs.min()), 1.0))
    if k.positions.size == 0:
        return 0.0
    return float(np.sum(np.abs(k.jumps) * stability_weight(xs, k.positions)))


def effective_knots(knots: Knots, lo: float, hi: float, merge_tol: float, rel_threshold: float = 0.01) -> int:
    """Number of kinks the function visibly has in [lo, hi]: knots merged within ``merge_tol``,
    counted when their |jump| is at least ``rel_threshold`` times the total ∫_[lo,hi]|f''|."""
    k = knots.merged(merge_tol).within(lo, hi)
    total = float(np.abs(k.jumps).sum())
    if total == 0.0:
        return 0
    return int(np.sum(np.abs(k.jumps) >= rel_threshold * total))
