"""Minimize fit + λ·penalty along a decreasing path of λ, each stage warm-started.

The minimizer of (1/2n)Σ(f(x_j) − y_j)² + λ·C(θ) approaches, as λ → 0, the least-cost
interpolant (the representation-cost experiments: `r-norm`, `min-norm-denoiser`). From scratch at
small λ the balancing directions relax on a time scale ~1/λ; a continuation path from large λ down,
each stage by Adam with a cosine-annealed step, reaches it in a few thousand steps per stage.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from genlab.train.losses import half_squared_loss


def weight_decay_path(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    penalty: Callable[[], torch.Tensor],
    lambdas: list[float],
    steps: int,
    lr: float,
    log: Callable[[float, int, float, float], None] | None = None,
    log_every: int = 250,
    advance: Callable[[int], None] | None = None,
) -> Iterator[float]:
    """Train ``model`` on ``½·mean((f(x) − y)²) + λ·penalty()`` for each λ of ``lambdas`` in
    decreasing order (``steps`` Adam steps each, step ``lr`` cosine-annealed to 0); yields each λ
    after its stage so the caller can measure the model there. ``log(λ, step, objective, fit)``
    every ``log_every`` steps; ``advance(1)`` after every step (a progress bar)."""
    for lam in sorted(lambdas, reverse=True):
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for step in range(steps):
            opt.zero_grad()
            fit = half_squared_loss(model(x), y)
            obj = fit + lam * penalty()
            obj.backward()
            opt.step()
            sched.step()
            if log is not None and step % log_every == 0:
                log(lam, step, float(obj.detach()), float(fit.detach()))
            if advance is not None:
                advance(1)
        yield lam
