"""Large-batch training recipes: regime adaptation (Hoffer, Hubara & Soudry 2017) and batch
augmentation (Hoffer, Ben-Nun, Hubara, Giladi, Hoefler & Soudry 2019)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch


@dataclass(frozen=True)
class Regime:
    """A training regime: epochs, lr milestones (in epochs), learning rate, batch size."""

    epochs: float
    milestones: tuple[float, ...]
    lr: float
    batch_size: int


def adapt_regime(small: Regime, large_batch: int, sqrt_lr: bool = True, match_updates: bool = True) -> Regime:
    """The regime for batch B_L from one tuned at B_S (Hoffer et al. 2017, arXiv 1705.08741, §4–5):
    lr × √(B_L/B_S) (``sqrt_lr``) and epochs and milestones × B_L/B_S so the number of updates is
    the same (``match_updates``, "regime adaptation")."""
    if large_batch < 1:
        raise ValueError(f"large_batch must be >= 1, got {large_batch}")
    r = large_batch / small.batch_size
    k = r if match_updates else 1.0
    return Regime(
        epochs=small.epochs * k,
        milestones=tuple(m * k for m in small.milestones),
        lr=small.lr * (math.sqrt(r) if sqrt_lr else 1.0),
        batch_size=int(large_batch),
    )


def augmented_batch(
    x: torch.Tensor, y: torch.Tensor, copies: int, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch augmentation (Hoffer et al. 2019, arXiv 1901.09335, §3): every example of the batch
    appears ``copies`` = M times, each copy augmented independently; the batch grows to M·B."""
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    xs = x.repeat((copies,) + (1,) * (x.dim() - 1))
    return augment(xs, generator), y.repeat(copies)


def shift_scale_noise(max_shift: int = 3, scale: float = 0.1, noise: float = 0.05) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Augmentation of 1-D signals (N, L) in the spirit of MNIST-1D's generator (Greydanus 2020):
    a random circular shift of up to ``max_shift`` samples, an amplitude scale 1 ± ``scale`` and
    Gaussian noise of std ``noise`` — each drawn per example."""

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, length = x.shape[0], x.shape[-1]
        shifts = torch.randint(-max_shift, max_shift + 1, (n,), generator=g)
        idx = (torch.arange(length).unsqueeze(0) - shifts.unsqueeze(1)) % length
        out = torch.gather(x.reshape(n, length), 1, idx).reshape(x.shape)
        amp = 1 + scale * (2 * torch.rand((n,) + (1,) * (x.dim() - 1), generator=g, dtype=x.dtype) - 1)
        return out * amp + noise * torch.randn(x.shape, generator=g, dtype=x.dtype)

    return augment
