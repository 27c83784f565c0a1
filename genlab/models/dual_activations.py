"""Normalized activations (E[φ(z)²] = 1 for z ~ N(0, 1)) whose duals are in
:mod:`genlab.theory.dual_kernels`: ``relu`` (√2·relu), ``erf`` (erf/c), ``sine`` (sin(√a·z)/c)
and ``hermite`` (Σ √c_k·He_k/√(k!)), as torch functions for :class:`genlab.models.ntk_mlp.NTKMLP`
(``activation=``, with ``sigma_w2=1``). Radhakrishnan, Belkin & Uhler 2023 (arXiv 2204.14126)
classify deep networks by these duals."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from genlab.errors import InputError

__all__ = ["activation"]


def _hermite(coefficients: Sequence[float]) -> Callable[[torch.Tensor], torch.Tensor]:
    c = [float(v) for v in coefficients]
    if len(c) < 2 or any(v < 0 or not math.isfinite(v) for v in c) or abs(sum(c) - 1) > 1e-9:
        raise InputError(f"coefficients: got {coefficients!r}; need c_k >= 0 (k = 0, 1, …) with sum 1")
    weights = [math.sqrt(v / math.factorial(k)) for k, v in enumerate(c)]

    def phi(z: torch.Tensor) -> torch.Tensor:
        # probabilists' Hermite polynomials: He_0 = 1, He_1 = z, He_{k+1} = z·He_k − k·He_{k−1}
        prev, cur = torch.ones_like(z), z
        out = weights[0] * prev + weights[1] * cur
        for k in range(1, len(weights) - 1):
            prev, cur = cur, z * cur - k * prev
            out = out + weights[k + 1] * cur
        return out

    return phi


def activation(name: str, **params) -> Callable[[torch.Tensor], torch.Tensor]:
    """The normalized activation ``name`` (``relu``, ``erf``, ``sine`` with ``a=``, ``hermite``
    with ``coefficients=``), matching :func:`genlab.theory.dual_kernels.dual_activation`."""
    if name == "relu":
        return lambda z: math.sqrt(2.0) * torch.relu(z)
    if name == "erf":
        c = math.sqrt(2.0 / math.pi * math.asin(2.0 / 3.0))
        return lambda z: torch.erf(z) / c
    if name == "sine":
        a = float(params.get("a", 1.0))
        if not (math.isfinite(a) and 0 < a <= 50):
            raise InputError(f"a: got {a!r}; the sine activation's parameter must be in (0, 50]")
        b, c = math.sqrt(a), math.sqrt(math.exp(-a) * math.sinh(a))
        return lambda z: torch.sin(b * z) / c
    if name == "hermite":
        return _hermite(params.get("coefficients", [0.0, 1.0]))
    raise InputError(f"activation: got {name!r}; allowed: 'relu', 'erf', 'sine', 'hermite'")
