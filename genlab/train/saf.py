"""Sharpness-aware training for free (SAF; Du, Zhou, Feng, Tan & Wu 2022, NeurIPS, arXiv 2205.14083, §3).

SAF replaces SAM's second gradient evaluation by a "trajectory loss": the KL divergence between the
softened outputs this example had ``delay_epochs`` = Ẽ epochs ago and its softened outputs now,

    L = L_CE + λ · (1/|B|) Σ_i KL( softmax(z_i^{(e−Ẽ)}/τ) ‖ softmax(z_i^{(e)}/τ) ),

active from epoch Ẽ on; the old outputs are remembered per example (one forward pass per step, so a
step costs about what SGD's does). Defaults λ = 0.3, τ = 5, Ẽ = 3 as recalled from the paper's
CIFAR setting (not re-checked against its text here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class TrajectoryMemory:
    """Outputs of every training example at each of the last Ẽ + 1 epochs."""

    def __init__(self, n: int, num_outputs: int, delay_epochs: int = 3, weight: float = 0.3, temperature: float = 5.0):
        if delay_epochs < 1:
            raise ValueError(f"delay_epochs must be >= 1, got {delay_epochs}")
        self.delay = int(delay_epochs)
        self.weight = float(weight)
        self.temperature = float(temperature)
        self.bank = torch.zeros(self.delay + 1, n, num_outputs)

    def loss(self, logits: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        """λ·KL(old ‖ now) for the examples ``idx`` (0 before epoch Ẽ); records ``logits`` for this epoch."""
        self.bank[epoch % (self.delay + 1), idx] = logits.detach().to(self.bank.dtype)
        if epoch < self.delay:
            return logits.new_zeros(())
        old = self.bank[(epoch - self.delay) % (self.delay + 1), idx].to(logits.dtype)
        t = self.temperature
        return self.weight * F.kl_div(F.log_softmax(logits / t, -1), F.log_softmax(old / t, -1), log_target=True, reduction="batchmean")
