"""Ghost batch normalization (Hoffer, Hubara & Soudry 2017, "Train longer, generalize better",
arXiv 1705.08741, §4 and Algorithm 1).

In training, a large batch B_L is split into ghost batches of ``ghost_size`` B_S examples; each is
normalized with its own mean and (biased) variance, and the running statistics are updated once per
ghost batch, in order, exactly as ``nn.BatchNorm1d`` would on that ghost batch alone. In evaluation
the running statistics are used (plain batch norm). A batch not divisible by B_S ends with a smaller
ghost batch.
"""

from __future__ import annotations

import torch
from torch import nn


class GhostBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training-mode statistics are those of ghost batches of ``ghost_size``."""

    def __init__(self, num_features: int, ghost_size: int, **kwargs):
        if ghost_size < 1:
            raise ValueError(f"ghost_size must be >= 1, got {ghost_size}")
        super().__init__(num_features, **kwargs)
        self.ghost_size = int(ghost_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= self.ghost_size:
            return super().forward(x)
        return torch.cat([super(GhostBatchNorm1d, self).forward(chunk) for chunk in x.split(self.ghost_size, 0)], 0)
