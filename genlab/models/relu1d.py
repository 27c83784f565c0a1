"""Two-layer univariate ReLU network f(x) = Σ_k v_k·relu(w_k·x + b_k) + c.

The model of minima-stability theory in function space (Mulayoff, Michaeli & Soudry 2021,
"The implicit bias of minima stability: a view from function space", eq. 20; Qiao, Zhang,
Singh, Soudry & Wang 2024, arXiv 2406.06838).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TwoLayerReLU1D(nn.Module):
    """f(x) = Σ_k v_k·relu(w_k x + b_k) + c with parameters ``w, b, v`` (width,) and ``c`` ().

    Initialization (seeded by ``generator``): w_k, b_k ~ N(0, ``in_scale``²),
    v_k ~ N(0, ``out_scale``²/width), c = 0. Small scales keep the initial sharpness
    (≈ 1 + Σ_k mean_j relu(w_k x_j + b_k)², the output bias contributing the 1) well below
    2/η for the large step sizes of the experiments. Inputs (n,) or (n, 1); output (n,).
    """

    def __init__(
        self,
        width: int,
        generator: torch.Generator | None = None,
        in_scale: float = 1.0,
        out_scale: float = 1.0,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(width, generator=g, dtype=dtype) * in_scale)
        self.b = nn.Parameter(torch.randn(width, generator=g, dtype=dtype) * in_scale)
        self.v = nn.Parameter(torch.randn(width, generator=g, dtype=dtype) * (out_scale / math.sqrt(width)))
        self.c = nn.Parameter(torch.zeros((), dtype=dtype))

    @property
    def width(self) -> int:
        return self.w.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1)
        return torch.relu(x * self.w + self.b) @ self.v + self.c
