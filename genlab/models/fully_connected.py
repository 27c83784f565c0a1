"""Fully-connected networks x → [Linear → activation]×depth → Linear, seeded, in a given dtype."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


def fully_connected(
    d_in: int,
    widths: list[int],
    d_out: int,
    activation: str = "tanh",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """PyTorch's default (Kaiming-uniform) initialization, drawn from a generator seeded by ``seed``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    dims = [d_in, *widths]
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    layers.append(nn.Linear(dims[-1], d_out))
    net = nn.Sequential(*layers)
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                bound = 1.0 / m.in_features**0.5
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.uniform_(-bound, bound, generator=g)
    return net.to(dtype)
