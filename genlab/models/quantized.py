"""Deep fully connected networks with N-level quantized activations, for signal propagation.

The activation is the N-level uniform quantization of the hard tanh on [−1, 1] used by
:mod:`genlab.theory.signal_propagation` (N = 2 is the sign function); its backward pass is the
straight-through estimator of the hard tanh (gradient 1 on [−1, 1], 0 outside), the usual choice
for training quantized networks (Hubara et al. 2016, arXiv 1609.07061)."""

from __future__ import annotations

import math

import torch
from torch import nn


class _QuantizeSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, n_levels: int) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        step = 2.0 / (n_levels - 1)
        # level index = number of thresholds −1 + step(j + ½) that x exceeds (ties go up)
        idx = torch.clamp(torch.floor((x + 1.0) / step + 0.5), 0, n_levels - 1)
        return -1.0 + step * idx

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype), None


class QuantizedHardTanh(nn.Module):
    """φ_N(x): the level of {−1 + 2i/(N−1)} nearest to clip(x, −1, 1); straight-through backward."""

    def __init__(self, n_levels: int):
        super().__init__()
        if int(n_levels) != n_levels or n_levels < 2:
            raise ValueError(f"n_levels must be an integer >= 2, got {n_levels}")
        self.n_levels = int(n_levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _QuantizeSTE.apply(x, self.n_levels)

    def extra_repr(self) -> str:
        return f"n_levels={self.n_levels}"


def quantized_mlp(
    d_in: int,
    width: int,
    depth: int,
    n_levels: int,
    sigma_w: float,
    sigma_b: float = 0.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """Linear(d_in, width) followed by ``depth − 1`` blocks [φ_N, Linear(width, width)]: the
    mean-field network h^l = W^l φ(h^{l−1}) + b^l with W_ij ~ N(0, σ_w²/fan_in), b_i ~ N(0, σ_b²)
    (the first layer sees the raw input). Outputs the last pre-activation h^depth."""
    if depth < 1 or width < 1 or d_in < 1:
        raise ValueError(f"depth, width and d_in must be >= 1, got {depth}, {width}, {d_in}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    layers: list[nn.Module] = []
    fan_in = d_in
    for layer in range(depth):
        if layer > 0:
            layers.append(QuantizedHardTanh(n_levels))
        lin = nn.Linear(fan_in, width, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(width, fan_in, generator=g, dtype=dtype) * (sigma_w / math.sqrt(fan_in)))
            lin.bias.copy_(torch.randn(width, generator=g, dtype=dtype) * sigma_b)
        layers.append(lin)
        fan_in = width
    return nn.Sequential(*layers)
