"""Feature-noise patch data of Lu, Wu, Yang & Zou 2023 ("Benign oscillation of stochastic gradient
descent with large learning rates", arXiv 2310.17074, ICLR 2024, §2 data model).

Each example has ``patches`` patches of dimension ``dim`` and a label y ∈ {−1, +1}:
(i) a *weak* feature y·v (small ℓ₂ norm) in every example (patch 0); (ii) a *strong* feature y·u
(larger norm) in a ``strong_fraction`` of the examples (patch 1; a noise patch in the others);
(iii) noise patches ξ ~ N(0, σ²(I − v̂v̂ᵀ − ûûᵀ)), orthogonal to both features. v and u are
orthogonal (v = ‖v‖e₁, u = ‖u‖e₂). ``strong_fraction=0`` gives the paper's weak-feature-only
test inputs. The patch positions are fixed; a convolution shared over patches with sum pooling
does not see the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genlab.errors import InputError


@dataclass(frozen=True)
class FeatureNoiseData:
    """``x`` (n, patches, dim) float, ``y`` (n,) in {−1, +1} float, ``strong`` (n,) bool: which
    examples carry the strong feature; ``weak``/``strong_feature`` the feature vectors v, u."""

    x: torch.Tensor
    y: torch.Tensor
    strong: torch.Tensor
    weak: torch.Tensor
    strong_feature: torch.Tensor


def feature_noise(
    n: int,
    *,
    patches: int = 3,
    dim: int = 16,
    weak_norm: float = 0.2,
    strong_norm: float = 1.0,
    strong_fraction: float = 0.8,
    noise_std: float = 0.1,
    seed: int = 0,
) -> FeatureNoiseData:
    """``n`` examples of the feature-noise model (see the module docstring), from ``seed``."""
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    if patches < 2:
        raise InputError(f"patches must be >= 2 (a weak and a strong/noise patch), got {patches}")
    if dim < 3:
        raise InputError(f"dim must be >= 3 (two feature directions and noise), got {dim}")
    if not 0.0 <= strong_fraction <= 1.0:
        raise InputError(f"strong_fraction must be in [0, 1], got {strong_fraction}")
    if weak_norm <= 0 or strong_norm <= 0 or noise_std < 0:
        raise InputError("weak_norm and strong_norm must be > 0 and noise_std >= 0")
    g = torch.Generator().manual_seed(seed)
    v = torch.zeros(dim)
    v[0] = weak_norm
    u = torch.zeros(dim)
    u[1] = strong_norm
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    strong = torch.rand(n, generator=g) < strong_fraction
    x = noise_std * torch.randn(n, patches, dim, generator=g)
    x[:, :, :2] = 0.0  # noise orthogonal to both features
    x[:, 0] = y[:, None] * v
    x[strong, 1] = y[strong, None] * u
    return FeatureNoiseData(x=x, y=y, strong=strong, weak=v, strong_feature=u)
