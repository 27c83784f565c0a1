"""A model centred at its initialization and scaled: F(x) = α·[f(x; θ) − f(x; θ0)].

Chizat, Oyallon & Bach 2019 ("On lazy training in differentiable programming", arXiv 1812.07956,
§2.2): subtracting the initial function removes the random offset f(·; θ0) so the output starts at
0, and the scale α controls laziness — with the step size η0/α² the function moves at an
α-independent rate while the parameters move by O(1/α). The initial copy is frozen (its
parameters have ``requires_grad=False``), so probes see only θ as trainable.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class Centered(nn.Module):
    """``α·(model(x) − model₀(x))`` with ``model₀`` a frozen copy of ``model`` at construction."""

    def __init__(self, model: nn.Module, alpha: float = 1.0):
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.model = model
        self.initial = copy.deepcopy(model)
        for p in self.initial.parameters():
            p.requires_grad_(False)
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * (self.model(x) - self.initial(x))
