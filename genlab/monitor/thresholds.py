"""The stability threshold of the optimizer in use, read from its param groups at each measurement.

Formulas and citations are in :mod:`genlab.theory.thresholds`; this module only maps a
``torch.optim`` optimizer's current hyperparameters onto them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genlab.theory import thresholds as th


@dataclass(frozen=True)
class Threshold:
    """The sharpness an optimizer can be stable at; ``value`` is None for an unknown optimizer."""

    value: float | None
    quantity: str  # "sharpness" (λ_max(H)) or "preconditioned_sharpness" (λ_max(P⁻¹H))
    rule: str  # the formula used, or why there is none
    lr: float | None


def optimizer_threshold(optimizer: torch.optim.Optimizer | None) -> Threshold:
    """Threshold from the first param group (lr, momentum, betas as they are now: schedules change them)."""
    if optimizer is None:
        return Threshold(None, "sharpness", "no optimizer given: measurement only, no verdict", None)
    g = optimizer.param_groups[0]
    lr = float(g["lr"])
    if lr <= 0:
        return Threshold(None, "sharpness", f"lr = {lr}: no threshold", lr)
    if type(optimizer) is torch.optim.SGD:
        beta = float(g.get("momentum", 0.0) or 0.0)
        damp = float(g.get("dampening", 0.0) or 0.0)
        if beta == 0.0:
            return Threshold(th.gd_sharpness_threshold(lr), "sharpness", "2/η (GD/SGD)", lr)
        if damp != 0.0:
            return Threshold(None, "sharpness", f"SGD with dampening {damp}: no known threshold", lr)
        if g.get("nesterov", False):
            return Threshold(th.nesterov_sharpness_threshold(lr, beta), "sharpness", "2(1+β)/((1+2β)η) (Nesterov)", lr)
        return Threshold(th.heavy_ball_sharpness_threshold(lr, beta), "sharpness", "2(1+β)/η (heavy ball)", lr)
    if type(optimizer) in (torch.optim.Adam, torch.optim.AdamW):
        beta1 = float(g["betas"][0])
        return Threshold(th.adam_sharpness_threshold(lr, beta1), "preconditioned_sharpness",
                         "(2+2β₁)/((1−β₁)η) on λ_max(P⁻¹H) (Adam, Cohen et al. 2022)", lr)
    return Threshold(None, "sharpness", f"{type(optimizer).__name__}: no known threshold, measurement only", lr)
