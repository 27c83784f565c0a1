"""Fully connected ReLU networks for the classification experiments."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def mlp(
    in_dim: int,
    widths: Sequence[int],
    out_dim: int,
    *,
    bias: bool = True,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """``Linear → ReLU`` for each hidden width, then a linear read-out; PyTorch's default
    initialization drawn from ``seed`` (the global generator is restored afterwards)."""
    dims = [in_dim, *widths]
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b, bias=bias), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], out_dim, bias=bias))
        net = nn.Sequential(*layers)
    return net.to(dtype)
