"""The XOR-detection (XORD) pattern data of Brutzkus & Globerson 2019 ("Why do larger models
generalize better? A theoretical perspective via the XOR problem", ICML 2019, arXiv 1810.03037, §3).

An input is ``d`` patches, each one of four patterns in {±1}²: the *positive* patterns
p₁ = (1, 1), p₃ = (−1, −1) (XOR of the signs is 0) and the *negative* patterns p₂ = (1, −1),
p₄ = (−1, 1). The label is +1 iff at least one patch is a positive pattern. The distribution puts
probability ½ on each label, uniform over the inputs of that label: negatives are the 2^d inputs
made of negative patterns only, positives the 4^d − 2^d others. Because the support is finite, the
test error of a classifier is computed exactly by :func:`xord_distribution` (no test sample).
"""

from __future__ import annotations

import itertools

import torch

from genlab.errors import InputError

# rows: p1, p3 (positive), p2, p4 (negative)
XORD_PATTERNS = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
POSITIVE = (0, 1)
NEGATIVE = (2, 3)


def _check_d(d: int) -> None:
    if not 1 <= d <= 8:
        raise InputError(f"d (patches per input) must be in 1..8, got {d}")


def xord_sample(n: int, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` i.i.d. inputs: ``x`` (n, d, 2), labels ``y`` (n,) in {−1, +1}, pattern indices (n, d)
    into :data:`XORD_PATTERNS`. Positives are drawn uniformly among inputs with ≥ 1 positive patch
    (rejection from uniform patches), negatives uniformly among all-negative inputs."""
    _check_d(d)
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    g = torch.Generator().manual_seed(seed)
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    idx = torch.empty(n, d, dtype=torch.int64)
    for i in range(n):
        if y[i] < 0:
            idx[i] = 2 + torch.randint(0, 2, (d,), generator=g)
        else:
            while True:
                cand = torch.randint(0, 4, (d,), generator=g)
                if (cand < 2).any():
                    idx[i] = cand
                    break
    return XORD_PATTERNS[idx], y, idx


def xord_distribution(d: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every input of the support with its label and probability: ``x`` (4^d, d, 2), ``y``, ``p``."""
    _check_d(d)
    idx = torch.tensor(list(itertools.product(range(4), repeat=d)), dtype=torch.int64)
    pos = (idx < 2).any(1)
    y = torch.where(pos, 1.0, -1.0)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    p = torch.where(pos, torch.tensor(0.5 / n_pos, dtype=torch.float64), torch.tensor(0.5 / n_neg, dtype=torch.float64))
    return XORD_PATTERNS[idx], y, p
