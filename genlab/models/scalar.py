"""Scalar (depth-D, width-1) linear networks f(x) = (Π_i w_i)·x.

The model on which Kreisler, Nacson, Soudry & Carmon 2023 (arXiv 2305.13064, §4) prove that GD at
the edge of stability monotonically decreases the sharpness of the gradient-flow solution.
"""

from __future__ import annotations

import torch
from torch import nn


class ScalarNetwork(nn.Module):
    """f(x) = (Π_i w_i)·x with one parameter vector ``w`` of length depth (inputs (n,) or (n, 1); output (n,))."""

    def __init__(self, weights: list[float] | torch.Tensor, dtype: torch.dtype = torch.float64):
        super().__init__()
        w = torch.as_tensor(weights, dtype=dtype).reshape(-1).clone()
        if w.numel() < 1:
            raise ValueError("a scalar network needs at least one weight")
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.prod(self.w) * x.reshape(x.shape[0])
