"""Directional sharpness gᵀHg/‖g‖² of a minibatch along its own gradient: one sample of Batch Sharpness.

Andreyev & Beneventano 2024 ("Edge of stochastic stability: revisiting the edge of stability
for SGD", arXiv 2412.20553) define Batch Sharpness as E_B[g_Bᵀ H_B g_B / ‖g_B‖²], the expected
curvature of minibatch Hessians H_B along their own gradients g_B, and observe that SGD with step
η trains with it hovering at 2/η ("edge of stochastic stability") while λ_max of the full-batch
Hessian stays below. One minibatch gives one sample of the expectation (one gradient and one
Hessian-vector product); the Monitor averages the samples of successive steps' minibatches.

Not :func:`genlab.probes.curvature.batch_sharpness`, which is E_B[λ_max(H_B)] (≥ this quantity).
Same data conventions, dtype and mode as :mod:`genlab.probes.curvature`; the model is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genlab.probes._functional import Data, LossFn
from genlab.probes._operators import Symmetry, curvature_call
from genlab.probes._setup import ProbeInfo


@dataclass
class DirectionalSharpness:
    """gᵀHg/‖g‖² on the data (the mean loss over all of it), with ‖g‖ and the loss."""

    value: float
    grad_norm: float
    loss: float
    info: ProbeInfo | None = None

    def scalars(self) -> dict[str, float]:
        return {"batch_sharpness": self.value, "grad_norm": self.grad_norm}


def directional_sharpness(model: torch.nn.Module, loss_fn: LossFn, data: Data, *, mode: str = "eval", seed: int = 0,
                          output_fn: Any = None, batch_size_fn: Any = None, symmetry: Symmetry = "raise") -> DirectionalSharpness:
    """gᵀ H g / ‖g‖² of the mean loss over ``data`` (g its gradient, H its Hessian); nan when g = 0.

    ``symmetry`` is the curvature probes' check of the Hessian operator on a random pair (two more
    products): "raise" refuses a model whose second derivatives are wrong (e.g. weight_norm), as
    every curvature probe does; "warn" measures anyway with a warning; "off" skips the check."""
    with curvature_call(model, loss_fn, data, "hessian", mode=mode, seed=seed, output_fn=output_fn,
                        batch_size_fn=batch_size_fn, symmetry=symmetry) as (op, info):
        loss, g = op.loss_and_grad()
        gg = float(torch.dot(g, g))
        value = float(torch.dot(g, op.matvec(g))) / gg if gg > 0 else float("nan")
    return DirectionalSharpness(value, gg**0.5, loss, info)
