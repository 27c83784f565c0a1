"""Two-layer ReLU network on ℝ^d: f(x) = Σ_k a_k·relu(w_kᵀx + b_k) [+ vᵀx] + c.

The model of the multivariate function-space results: the R-norm (Ongie, Willett, Soudry &
Srebro 2020, arXiv 1910.01635, with the unregularized linear unit vᵀx) and minima stability
(Nacson, Mulayoff, Ongie, Michaeli & Soudry 2023, arXiv 2306.17499, without it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class ShallowReLU(nn.Module):
    """Parameters ``w`` (width, d), ``b`` (width,), ``a`` (width,), ``c`` () and, with
    ``linear=True``, ``v`` (d,). Init (seeded by ``generator``): w ~ N(0, in_scale²/d),
    b ~ N(0, in_scale²), a ~ N(0, out_scale²/width), v = 0, c = 0. Inputs (n, d); output (n,)."""

    def __init__(
        self,
        d: int,
        width: int,
        generator: torch.Generator | None = None,
        in_scale: float = 1.0,
        out_scale: float = 1.0,
        linear: bool = False,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        if d < 1 or width < 1:
            raise ValueError(f"d and width must be >= 1, got {d}, {width}")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(width, d, generator=g, dtype=dtype) * (in_scale / math.sqrt(d)))
        self.b = nn.Parameter(torch.randn(width, generator=g, dtype=dtype) * in_scale)
        self.a = nn.Parameter(torch.randn(width, generator=g, dtype=dtype) * (out_scale / math.sqrt(width)))
        self.c = nn.Parameter(torch.zeros((), dtype=dtype))
        self.v = nn.Parameter(torch.zeros(d, dtype=dtype)) if linear else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        out = torch.relu(x @ self.w.T + self.b) @ self.a + self.c
        return out + x @ self.v if self.v is not None else out

    def weight_cost(self) -> torch.Tensor:
        """½Σ_k (a_k² + ‖w_k‖²): the regularized cost (biases and the linear unit excluded)."""
        return 0.5 * (self.a.pow(2).sum() + self.w.pow(2).sum())

    def units(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(w, b, a) as float64 numpy arrays, for :mod:`genlab.theory.r_norm`."""
        return tuple(p.detach().double().numpy().copy() for p in (self.w, self.b, self.a))  # type: ignore[return-value]
