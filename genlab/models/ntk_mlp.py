"""Fully connected ReLU network in the NTK parameterization.

Jacot, Gabriel & Hongler 2018 (arXiv 1806.07572, §2) and Arora, Du, Hu, Li, Salakhutdinov &
Wang 2019 (arXiv 1904.11955, §3): every weight and bias is N(0, 1) and the layer map is

    h¹ = sqrt(σ_w²/d₀)·W¹x + σ_b·b¹,   h^{l+1} = sqrt(σ_w²/n_l)·W^{l+1} relu(h^l) + σ_b·b^{l+1},

with ``depth`` hidden layers of width ``width`` and a linear read-out h^{depth+1} (scaled by
sqrt(σ_w²/n) too, as in Jacot et al.). Its infinite-width NNGP/NTK are
:func:`genlab.theory.kernels.nngp_relu` / :func:`genlab.theory.kernels.ntk_relu` with the same
``sigma_w2`` and ``sigma_b2``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


class NTKMLP(nn.Module):
    """ReLU MLP ``d_in → width (×depth) → d_out`` in the NTK parameterization.

    Inputs (n, d_in); output (n,) when ``d_out == 1`` else (n, d_out). ``sigma_b2 = 0`` builds
    the network without biases. ``activation`` replaces ReLU (e.g. a normalized activation of
    :mod:`genlab.models.dual_activations` with ``sigma_w2=1``, whose kernels are
    :func:`genlab.theory.dual_kernels.deep_dual_kernels`)."""

    def __init__(
        self,
        d_in: int,
        width: int,
        depth: int = 1,
        d_out: int = 1,
        *,
        sigma_w2: float = 2.0,
        sigma_b2: float = 0.0,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__()
        if min(d_in, width, depth, d_out) < 1:
            raise ValueError("d_in, width, depth and d_out must all be >= 1")
        if sigma_w2 <= 0 or sigma_b2 < 0:
            raise ValueError(f"need sigma_w2 > 0 and sigma_b2 >= 0, got {sigma_w2}, {sigma_b2}")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        dims = [d_in] + [width] * depth + [d_out]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(dims[i + 1], dims[i], generator=g, dtype=dtype)) for i in range(len(dims) - 1)
        )
        self.use_bias = sigma_b2 > 0
        self.biases = nn.ParameterList(
            nn.Parameter(torch.randn(dims[i + 1], generator=g, dtype=dtype)) for i in range(len(dims) - 1)
        ) if self.use_bias else nn.ParameterList()
        self.scales = [math.sqrt(sigma_w2 / dims[i]) for i in range(len(dims) - 1)]
        self.sigma_b = math.sqrt(sigma_b2)
        self.d_out = d_out
        self.activation = activation if activation is not None else torch.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            h = self.scales[i] * (h @ w.T)
            if self.use_bias:
                h = h + self.sigma_b * self.biases[i]
            if i < last:
                h = self.activation(h)
        return h[:, 0] if self.d_out == 1 else h
