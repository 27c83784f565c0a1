"""Fully connected networks: ``[Linear → activation] × len(widths) → Linear``."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def mlp(
    in_dim: int,
    widths: Sequence[int],
    out_dim: int,
    *,
    activation: str = "relu",
    bias: bool = True,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """A fully connected network with PyTorch's default initialization, drawn from ``seed``
    (the global generator is forked, so it is left as it was)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    dims = [in_dim, *widths]
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b, bias=bias), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(dims[-1], out_dim, bias=bias))
        net = nn.Sequential(*layers)
    return net.to(dtype)
